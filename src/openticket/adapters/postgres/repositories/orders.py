"""Orders in PostgreSQL, their seats in ``order_items``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final, LiteralString

from openticket.adapters.paging import decode_cursor
from openticket.adapters.postgres.executor import Executor, Row
from openticket.adapters.postgres.repositories.shared import (
    Table,
    checked_limit,
    one_of,
    page,
    save_versioned,
)
from openticket.application.ports.repositories import DEFAULT_PAGE_SIZE, Page
from openticket.domain.ordering import (
    COUNTED_STATUSES,
    OPEN_STATUSES,
    Order,
    OrderItem,
    OrderLimits,
    OrderStatus,
)
from openticket.domain.shared import (
    AreaId,
    HoldId,
    Money,
    OrderId,
    PaymentId,
    SeatId,
    SessionId,
    UserId,
)

# SQL text is built here only from the tables' own column and table names; every value
# is a bound parameter.

ORDERS: Final = Table(
    "orders",
    (
        "order_id",
        "user_id",
        "session_id",
        "area_id",
        "hold_id",
        "fencing_token",
        "total_amount",
        "currency",
        "status",
        "created_at",
        "expires_at",
        "payment_id",
        "completed_at",
        "closed_at",
        "failure_reason",
        "version",
    ),
)

_OPEN: Final[LiteralString] = one_of(OPEN_STATUSES)
_COUNTED: Final[LiteralString] = one_of(COUNTED_STATUSES)

_SELECT: Final[LiteralString] = ORDERS.select(
    "ARRAY(SELECT i.seat_id FROM order_items i WHERE i.order_id = o.order_id"
    " ORDER BY i.position) AS seat_ids",
    "ARRAY(SELECT i.price FROM order_items i WHERE i.order_id = o.order_id"
    " ORDER BY i.position) AS prices",
    "o.seq",
    alias="o",
)
_BY_ID: Final[LiteralString] = _SELECT + " WHERE o.order_id = %(order_id)s"
_OF_USER_AFTER: Final[LiteralString] = (
    _SELECT + " WHERE o.user_id = %(user_id)s AND o.seq > %(after)s ORDER BY o.seq LIMIT %(limit)s"
)
_DUE: Final[LiteralString] = (
    _SELECT + " WHERE o.status IN (" + _OPEN + ") AND o.expires_at <= %(now)s"
    " ORDER BY o.expires_at LIMIT %(limit)s"
)
_SEATS_TAKEN: Final[LiteralString] = (
    "SELECT count(*) AS seats FROM orders o JOIN order_items i ON i.order_id = o.order_id"
    " WHERE o.session_id = %(session_id)s AND o.user_id = %(user_id)s"
    " AND o.status IN (" + _COUNTED + ")"
)
_PLACED_SINCE: Final[LiteralString] = (
    "SELECT count(*) AS placed FROM orders"
    " WHERE session_id = %(session_id)s AND created_at > %(since)s"
)
_LIMITS_CHECK: Final[LiteralString] = (
    "SELECT order_limits_check(%(session_id)s, %(user_id)s, %(order_id)s,"
    " %(seats)s, %(cap)s, %(quota)s, %(areas)s::text[], %(quota_seats)s)"
)
_INSERT: Final[LiteralString] = (
    "WITH stored AS (" + ORDERS.insert() + " RETURNING order_id)"
    " INSERT INTO order_items (order_id, position, seat_id, price, currency)"
    " SELECT stored.order_id, i.n, i.seat, i.price, %(currency)s FROM stored,"
    " unnest(%(seats)s::text[], %(prices)s::numeric[]) WITH ORDINALITY"
    " AS i(seat, price, n)"
)
"""The order and its items in one statement."""
_UPDATE: Final[LiteralString] = ORDERS.update(
    "status", "expires_at", "payment_id", "completed_at", "closed_at", "failure_reason"
)


def _order(row: Row) -> Order:
    currency = row.currency
    payment_id = row.payment_id
    return Order(
        order_id=OrderId(row.order_id),
        user_id=UserId(row.user_id),
        session_id=SessionId(row.session_id),
        area_id=AreaId(row.area_id),
        hold_id=HoldId(row.hold_id),
        fencing_token=row.fencing_token,
        total=Money(row.total_amount, currency),
        status=OrderStatus(row.status),
        created_at=row.created_at,
        expires_at=row.expires_at,
        payment_id=None if payment_id is None else PaymentId(payment_id),
        completed_at=row.completed_at,
        closed_at=row.closed_at,
        failure_reason=row.failure_reason,
        version=row.version,
        items=tuple(
            OrderItem(SeatId(seat), Money(price, currency))
            for seat, price in zip(row.seat_ids, row.prices, strict=True)
        ),
    )


def _order_params(order: Order) -> dict[str, Any]:
    return {
        "order_id": order.order_id,
        "status": order.status.value,
        "expires_at": order.expires_at,
        "payment_id": order.payment_id,
        "completed_at": order.completed_at,
        "closed_at": order.closed_at,
        "failure_reason": order.failure_reason,
    }


class PostgresOrderRepository:
    """Orders in PostgreSQL, their seats in ``order_items``."""

    def __init__(self, uow: Executor) -> None:
        self._uow = uow

    async def add(self, order: Order, limits: OrderLimits | None = None) -> None:
        """Store a new order and its items; with ``limits``, only within them.

        ``order_limits_check`` (migration 0004) goes just before the insert, in the same
        round trip: it takes the buyer's (and the quota's) advisory lock, counts, and
        refuses with an error the unit turns into ``UserLimitReached`` or
        ``QuotaExhausted``. One unit should add one limited order: two in one unit take
        locks in an order another unit may take the other way round (a deadlock the
        server breaks by refusing one, ``ConcurrencyError``).
        """
        version = self._uow.version_to_add(ORDERS.name, order.order_id, order)
        if limits is not None:
            self._uow.defer(
                _LIMITS_CHECK,
                {
                    "session_id": order.session_id,
                    "user_id": order.user_id,
                    "order_id": order.order_id,
                    "seats": len(order.items),
                    "cap": limits.seats_per_user,
                    "quota": limits.quota,
                    "areas": sorted(limits.quota_areas),
                    "quota_seats": limits.seats_in_quota(order),
                },
            )
        # the order and its items in one statement, sent with the commit
        self._uow.defer(
            _INSERT,
            {
                **_order_params(order),
                "user_id": order.user_id,
                "session_id": order.session_id,
                "area_id": order.area_id,
                "hold_id": order.hold_id,
                "fencing_token": order.fencing_token,
                "total_amount": order.total.amount,
                "currency": order.total.currency,
                "created_at": order.created_at,
                "version": version,
                "seats": [item.seat_id for item in order.items],
                "prices": [item.price.amount for item in order.items],
            },
        )
        self._uow.wrote(ORDERS.name, order.order_id, order, 0, version)

    async def get(self, order_id: OrderId) -> Order | None:
        """The order with this id, if any."""
        row = await self._uow.fetch_one(_BY_ID, {"order_id": order_id})
        return None if row is None else _order(row)

    async def save(self, order: Order) -> None:
        """Store changes to a loaded order (its items never change)."""
        await save_versioned(
            self._uow, ORDERS, order.order_id, order, _UPDATE, _order_params(order)
        )

    async def seats_taken(self, session_id: SessionId, user_id: UserId) -> int:
        """The buyer's seats in live and completed orders of the session."""
        row = await self._uow.fetch_one(
            _SEATS_TAKEN, {"session_id": session_id, "user_id": user_id}
        )
        return 0 if row is None else int(row.seats)

    async def placed_since(self, session_id: SessionId, since: datetime) -> int:
        """How many orders of the session were placed after ``since`` (migration 0007's index)."""
        row = await self._uow.fetch_one(_PLACED_SINCE, {"session_id": session_id, "since": since})
        return 0 if row is None else int(row.placed)

    async def list_for_user(
        self, user_id: UserId, *, limit: int = DEFAULT_PAGE_SIZE, cursor: str | None = None
    ) -> Page[Order]:
        """A buyer's orders, oldest first."""
        rows = await self._uow.fetch_all(
            _OF_USER_AFTER,
            {"user_id": user_id, "after": decode_cursor(cursor), "limit": checked_limit(limit) + 1},
        )
        return page(rows, limit, _order)

    async def list_due(self, now: datetime, *, limit: int = DEFAULT_PAGE_SIZE) -> Sequence[Order]:
        """Open orders due at ``now``, soonest due first."""
        rows = await self._uow.fetch_all(_DUE, {"now": now, "limit": checked_limit(limit)})
        return [_order(row) for row in rows]
