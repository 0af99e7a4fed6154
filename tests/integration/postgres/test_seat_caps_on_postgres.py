"""Reliability check 35 on PostgreSQL: caps and quotas hold across processes.

Two ``PostgresDatabase`` pools on one schema stand for two API processes; orders of
one buyer (or of one quota) in several areas, that is several partitions, are added
at once through both. What the tables hold afterwards is the judge.
"""

from __future__ import annotations

import asyncio
import random
from uuid import UUID, uuid4

import pytest

from openticket.adapters.postgres import PostgresDatabase
from openticket.domain.catalog import QuotaExhausted, UserLimitReached
from openticket.domain.ordering import Order, OrderLimits
from openticket.domain.shared import AreaId, SessionId, UserId
from openticket.testing.contracts._builders import new_order, seat
from openticket.testing.contracts._uow import let_others_run, wait_for_each_other

pytestmark = pytest.mark.postgres

ROUNDS = 5


async def race(
    databases: list[PostgresDatabase], orders: list[Order], limits: OrderLimits
) -> list[BaseException | None]:
    """Add each order through the databases in turn, all at once; what each raised."""
    barrier = asyncio.Barrier(len(orders))

    async def place(database: PostgresDatabase, order: Order) -> None:
        async with database.unit_of_work() as uow:
            await wait_for_each_other(barrier)
            await uow.orders.add(order, limits)
            await let_others_run()
            await uow.commit()

    return await asyncio.gather(
        *(place(databases[n % len(databases)], o) for n, o in enumerate(orders)),
        return_exceptions=True,
    )


async def stored_seats(database: PostgresDatabase, session_id: UUID, areas: str) -> int:
    rows = await database.query(
        "SELECT count(*) FROM orders o JOIN order_items i ON i.order_id = o.order_id"
        " WHERE o.session_id = %s AND split_part(i.seat_id, '-', 1) = ANY (%s)",
        (session_id, list(areas)),
    )
    return int(rows[0][0])


async def test_one_buyer_across_many_orders_never_passes_the_cap(
    pg_database: PostgresDatabase, other_database: PostgresDatabase
) -> None:
    """12 orders of 1-3 seats in 6 areas through two processes, cap 5, five rounds.

    Never more than 5 seats stored; every refusal was due (the seats stored plus the
    refused order's pass the cap), and refusals are ``UserLimitReached``.
    """
    rng = random.Random(35)
    for _ in range(ROUNDS):
        session_id, buyer = SessionId(uuid4()), UserId(uuid4())
        limits = OrderLimits(seats_per_user=5)
        orders = [
            new_order(
                user_id=buyer,
                session_id=session_id,
                seat_ids=[seat("ABCDEF"[n % 6], n, k) for k in range(1, rng.randint(1, 3) + 1)],
            )
            for n in range(12)
        ]
        outcomes = await race([pg_database, other_database], orders, limits)
        assert all(isinstance(o, UserLimitReached) for o in outcomes if o is not None), outcomes
        stored = await stored_seats(pg_database, session_id, "ABCDEF")
        assert stored == sum(
            len(o.items) for o, r in zip(orders, outcomes, strict=True) if r is None
        )
        assert 0 < stored <= 5
        for o, refused in zip(orders, outcomes, strict=True):
            if refused is not None:
                assert stored + len(o.items) > 5


async def test_a_quota_over_two_areas_is_never_oversold_by_many_buyers(
    pg_database: PostgresDatabase, other_database: PostgresDatabase
) -> None:
    """20 buyers add 1-2 seats in areas A and B (one quota of 7) through two processes."""
    rng = random.Random(350)
    for _ in range(ROUNDS):
        session_id = SessionId(uuid4())
        limits = OrderLimits(
            seats_per_user=4, quota=7, quota_areas=frozenset({AreaId("A"), AreaId("B")})
        )
        orders = [
            new_order(
                session_id=session_id,
                seat_ids=[seat("AB"[n % 2], n, k) for k in range(1, rng.randint(1, 2) + 1)],
            )
            for n in range(20)
        ]
        outcomes = await race([pg_database, other_database], orders, limits)
        assert all(isinstance(o, QuotaExhausted) for o in outcomes if o is not None), outcomes
        stored = await stored_seats(pg_database, session_id, "AB")
        assert stored == sum(
            len(o.items) for o, r in zip(orders, outcomes, strict=True) if r is None
        )
        assert 0 < stored <= 7
        for o, refused in zip(orders, outcomes, strict=True):
            if refused is not None:
                assert stored + len(o.items) > 7
