"""Two processes on one database: two ``PostgresDatabase`` pools on the same schema.

The contract suites race units of one pool; these race two pools, and look at the
tables themselves to see what was stored.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from uuid import uuid4

import pytest

from openticket.adapters.postgres import PostgresDatabase
from openticket.application.ports.errors import (
    ConcurrencyError,
    DuplicateError,
    PortError,
    SeatAlreadyTicketed,
)
from openticket.domain.ordering import Order, OrderStatus
from openticket.domain.shared import PaymentId, SessionId, UserId
from openticket.domain.ticketing import TicketStatus
from openticket.testing.contracts._builders import (
    T0,
    new_id,
    new_order,
    new_ticket,
    new_user,
    seat,
)
from openticket.testing.contracts._uow import in_unit, let_others_run, read, wait_for_each_other

pytestmark = pytest.mark.postgres


async def outbox_types(database: PostgresDatabase) -> list[str]:
    """The event types in the outbox, in the order they were stored."""
    return [
        str(row[0]) for row in await database.query("SELECT event_type FROM outbox ORDER BY seq")
    ]


async def test_two_processes_saving_one_order_let_exactly_one_commit(
    pg_database: PostgresDatabase, other_database: PostgresDatabase
) -> None:
    """Both load version 1 and change it; one commits, the other gets ``ConcurrencyError``.

    The stored order is the winner's, at version 2, and only the winner's event is in
    the outbox.
    """
    order = new_order()
    await in_unit(pg_database.unit_of_work, lambda uow: uow.orders.add(order))
    barrier = asyncio.Barrier(2)

    def cancel(o: Order) -> None:
        o.cancel(now=T0 + timedelta(seconds=30), ids=new_id)

    def start_payment(o: Order) -> None:
        o.start_payment(PaymentId(uuid4()), now=T0 + timedelta(seconds=30), ids=new_id)

    async def writer(database: PostgresDatabase, change: Callable[[Order], None]) -> None:
        async with database.unit_of_work() as uow:
            loaded = await uow.orders.get(order.order_id)
            assert loaded is not None
            assert loaded.version == 1
            await wait_for_each_other(barrier)
            change(loaded)
            await uow.orders.save(loaded)
            await let_others_run()
            await uow.commit()

    outcomes = await asyncio.gather(
        writer(pg_database, cancel), writer(other_database, start_payment), return_exceptions=True
    )

    assert sum(o is None for o in outcomes) == 1, outcomes
    assert all(isinstance(o, ConcurrencyError) for o in outcomes if o is not None), outcomes
    cancelled_won = outcomes[0] is None
    for database in (pg_database, other_database):
        stored = await read(database.unit_of_work, lambda uow: uow.orders.get(order.order_id))
        assert stored is not None
        assert stored.status is (
            OrderStatus.CANCELLED if cancelled_won else OrderStatus.PAYMENT_PENDING
        )
        assert stored.version == 2
    winner_event = "OrderCancelled" if cancelled_won else "OrderPaymentStarted"
    assert await outbox_types(pg_database) == ["OrderCreated", winner_event]


async def test_two_processes_ticketing_one_seat_store_exactly_one_ticket(
    pg_database: PostgresDatabase, other_database: PostgresDatabase
) -> None:
    """Each process sells the seat in its own unit with its own order: one ticket is stored.

    The loser gets ``SeatAlreadyTicketed`` and stores nothing, not even its order; the
    ``tickets`` table holds one row for the seat.
    """
    session_id = SessionId(uuid4())
    s = seat("A", 1, 1)
    orders = [new_order(session_id=session_id, seat_ids=(s,)) for _ in range(2)]
    tickets = [
        new_ticket(session_id=session_id, seat_id=s, order_id=o.order_id, user_id=o.user_id)
        for o in orders
    ]
    barrier = asyncio.Barrier(2)

    async def sell(database: PostgresDatabase, racer: int) -> None:
        async with database.unit_of_work() as uow:
            await wait_for_each_other(barrier)
            await uow.orders.add(orders[racer])
            await uow.tickets.add(tickets[racer])
            await let_others_run()
            await uow.commit()

    outcomes = await asyncio.gather(
        sell(pg_database, 0), sell(other_database, 1), return_exceptions=True
    )

    assert sum(o is None for o in outcomes) == 1, outcomes
    assert all(isinstance(o, SeatAlreadyTicketed) for o in outcomes if o is not None), outcomes
    won = outcomes.index(None)
    stored = await pg_database.query(
        "SELECT ticket_id, order_id FROM tickets WHERE session_id = %s AND seat_id = %s",
        (session_id, s),
    )
    assert stored == [(tickets[won].ticket_id, orders[won].order_id)]
    stored_orders = await other_database.query(
        "SELECT order_id FROM orders WHERE order_id = ANY(%s)",
        ([o.order_id for o in orders],),
    )
    assert stored_orders == [(orders[won].order_id,)]


async def test_a_voided_ticket_frees_its_seat_and_stays_findable(
    pg_database: PostgresDatabase, other_database: PostgresDatabase
) -> None:
    """Voiding moves the row to ``voided_tickets``; it is still found by id, QR code and user.

    A new ticket for the seat can then be stored, and the user's list holds both,
    the voided one first (it keeps its place).
    """
    session_id = SessionId(uuid4())
    user_id = UserId(uuid4())
    s = seat("A", 1, 2)
    first = new_ticket(session_id=session_id, seat_id=s, user_id=user_id)
    await in_unit(pg_database.unit_of_work, lambda uow: uow.tickets.add(first))

    async with other_database.unit_of_work() as uow:
        loaded = await uow.tickets.get(first.ticket_id)
        assert loaded is not None
        loaded.void(now=T0 + timedelta(days=1), ids=new_id)
        await uow.tickets.save(loaded)
        await uow.commit()

    live = await pg_database.query("SELECT 1 FROM tickets WHERE ticket_id = %s", (first.ticket_id,))
    voided = await pg_database.query(
        "SELECT status, qr_code, voided_at FROM voided_tickets WHERE ticket_id = %s",
        (first.ticket_id,),
    )
    assert live == []
    assert voided == [("voided", first.qr_code, T0 + timedelta(days=1))]

    async with pg_database.unit_of_work() as uow:
        by_id = await uow.tickets.get(first.ticket_id)
        by_qr = await uow.tickets.get_by_qr_code(first.qr_code)
        page = await uow.tickets.list_for_user(user_id)
    for found in (by_id, by_qr):
        assert found is not None
        assert found.ticket_id == first.ticket_id
        assert found.status is TicketStatus.VOIDED
        assert found.version == 2
    assert [(t.ticket_id, t.status) for t in page.items] == [(first.ticket_id, TicketStatus.VOIDED)]

    second = new_ticket(session_id=session_id, seat_id=s, user_id=user_id)
    await in_unit(other_database.unit_of_work, lambda uow: uow.tickets.add(second))

    seat_rows = await pg_database.query(
        "SELECT ticket_id FROM tickets WHERE session_id = %s AND seat_id = %s",
        (session_id, s),
    )
    assert seat_rows == [(second.ticket_id,)]
    page = await read(pg_database.unit_of_work, lambda uow: uow.tickets.list_for_user(user_id))
    assert [(t.ticket_id, t.status) for t in page.items] == [
        (first.ticket_id, TicketStatus.VOIDED),
        (second.ticket_id, TicketStatus.ISSUED),
    ]


async def test_a_unit_that_hit_a_unique_violation_cannot_commit_anything(
    pg_database: PostgresDatabase, other_database: PostgresDatabase
) -> None:
    """The seat was sold by another process; the unit catches the refusal and tries to go on.

    Neither more writes nor ``commit`` succeed afterwards, and nothing of the unit —
    its order, its user, their events — is stored.
    """
    session_id = SessionId(uuid4())
    s = seat("B", 1, 3)
    sold = new_ticket(session_id=session_id, seat_id=s)
    await in_unit(other_database.unit_of_work, lambda uow: uow.tickets.add(sold))
    outbox_before = await outbox_types(pg_database)

    user = new_user()
    order = new_order(user_id=user.user_id, session_id=session_id, seat_ids=(s,))
    late = new_order(user_id=user.user_id, session_id=session_id, seat_ids=(s,))
    async with pg_database.unit_of_work() as uow:
        await uow.users.add(user)
        await uow.orders.add(order)
        await uow.tickets.add(new_ticket(session_id=session_id, seat_id=s))
        with pytest.raises(SeatAlreadyTicketed):  # the ticket travels with the next statement
            await uow.orders.get(order.order_id)
        with pytest.raises(PortError):
            await uow.orders.add(late)
        with pytest.raises(DuplicateError):
            await uow.commit()
        assert uow.collect_new_events() == []

    for database in (pg_database, other_database):
        assert await database.query("SELECT 1 FROM users WHERE user_id = %s", (user.user_id,)) == []
        assert (
            await database.query(
                "SELECT 1 FROM orders WHERE order_id = ANY(%s)",
                ([order.order_id, late.order_id],),
            )
            == []
        )
        assert await outbox_types(database) == outbox_before
    tickets = await pg_database.query(
        "SELECT ticket_id FROM tickets WHERE session_id = %s AND seat_id = %s",
        (session_id, s),
    )
    assert tickets == [(sold.ticket_id,)]
