-- The area of an order's seats and of a ticket's seat, stored (issue 17): the saga, the
-- sold-seats read of a partition and the quota count read it as a column instead of
-- cutting it out of seat ids. Rows written before this migration get it from their
-- seats, once, here.
--
-- Upgrading: run `openticket migrate`, then restart every process. A process of an
-- earlier version writes orders and tickets without an area, which the NOT NULL
-- columns refuse.

ALTER TABLE orders ADD COLUMN area_id varchar(16);
UPDATE orders o SET area_id = (
    SELECT split_part(i.seat_id, '-', 1) FROM order_items i
    WHERE i.order_id = o.order_id ORDER BY i.position LIMIT 1
);
ALTER TABLE orders ALTER COLUMN area_id SET NOT NULL;

-- all_tickets selects * from both tables: drop it while their columns change.
DROP VIEW all_tickets;
ALTER TABLE tickets ADD COLUMN area_id varchar(16);
UPDATE tickets SET area_id = split_part(seat_id, '-', 1);
ALTER TABLE tickets ALTER COLUMN area_id SET NOT NULL;
ALTER TABLE voided_tickets ADD COLUMN area_id varchar(16);
UPDATE voided_tickets SET area_id = split_part(seat_id, '-', 1);
ALTER TABLE voided_tickets ALTER COLUMN area_id SET NOT NULL;
CREATE VIEW all_tickets AS
    SELECT * FROM tickets
    UNION ALL
    SELECT * FROM voided_tickets;

-- A partition's sold seats (PostgresTicketRepository.sold_seats, read when it loads).
CREATE INDEX tickets_area_idx ON tickets (session_id, area_id);

-- The seats counted against a quota, by the order's area.
CREATE INDEX orders_counted_area_idx ON orders (session_id, area_id)
    WHERE status IN ('created', 'payment_pending', 'completed');

-- As in 0004, but a quota counts the seats of orders in its areas by the orders' area.
CREATE OR REPLACE FUNCTION order_limits_check(
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
              AND o.area_id = ANY (p_quota_areas);
        IF taken + p_quota_seats > p_quota THEN
            RAISE EXCEPTION USING ERRCODE = 'OTL02', MESSAGE = 'quota_exhausted',
                DETAIL = p_quota || ' ' || taken;
        END IF;
    END IF;
END
$$;
