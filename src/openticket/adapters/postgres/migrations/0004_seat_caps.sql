-- Per-buyer seat caps and enforced price-category quotas (issue 16).

-- The seats one buyer may have in live and completed orders of the session; NULL: the
-- session's max_seats_per_order.
ALTER TABLE sessions ADD COLUMN max_seats_per_user integer
    CHECK (max_seats_per_user IS NULL OR max_seats_per_user >= 1);

-- The orders that count against caps and quotas, by session and buyer.
CREATE INDEX orders_counted_idx ON orders (session_id, user_id)
    WHERE status IN ('created', 'payment_pending', 'completed');

-- Refuses the order about to be inserted in this transaction if it would pass the
-- buyer's cap or its category's quota; called just before the insert, in the same
-- transaction (PostgresOrderRepository.add). The advisory locks, held until the
-- transaction ends, make the count and the insert one step for every transaction that
-- adds an order of the same buyer (or of the same quota) in the session: the next one
-- waits here and counts after this one committed. A VOLATILE function takes a fresh
-- snapshot for each statement, so the counts see what committed while it waited.
-- Locks are taken buyer first, quota second, so two orders never wait on each other.
-- Refusals carry SQLSTATE OTL01 (cap) or OTL02 (quota) and "<limit> <taken>" as detail.
CREATE FUNCTION order_limits_check(
    p_session      uuid,
    p_user         uuid,
    p_order        uuid,
    p_seats        integer,
    p_cap          integer,
    p_quota        integer,
    p_quota_areas  text[],
    p_quota_seats  integer
) RETURNS void LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    taken integer;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('seats of ' || p_session || ' ' || p_user, 0));
    IF p_quota IS NOT NULL AND p_quota_seats > 0 THEN
        PERFORM pg_advisory_xact_lock(
            hashtextextended('quota of ' || p_session || ' ' || array_to_string(p_quota_areas, ','), 0)
        );
    END IF;
    SELECT count(*) INTO taken
        FROM orders o JOIN order_items i ON i.order_id = o.order_id
        WHERE o.session_id = p_session AND o.user_id = p_user AND o.order_id <> p_order
          AND o.status IN ('created', 'payment_pending', 'completed');
    IF taken + p_seats > p_cap THEN
        RAISE EXCEPTION USING ERRCODE = 'OTL01', MESSAGE = 'user_limit_reached',
            DETAIL = p_cap || ' ' || taken;
    END IF;
    IF p_quota IS NOT NULL AND p_quota_seats > 0 THEN
        SELECT count(*) INTO taken
            FROM orders o JOIN order_items i ON i.order_id = o.order_id
            WHERE o.session_id = p_session AND o.order_id <> p_order
              AND o.status IN ('created', 'payment_pending', 'completed')
              AND split_part(i.seat_id, '-', 1) = ANY (p_quota_areas);
        IF taken + p_quota_seats > p_quota THEN
            RAISE EXCEPTION USING ERRCODE = 'OTL02', MESSAGE = 'quota_exhausted',
                DETAIL = p_quota || ' ' || taken;
        END IF;
    END IF;
END
$$;
