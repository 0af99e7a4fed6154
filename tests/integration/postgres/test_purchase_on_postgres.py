"""The whole purchase on PostgreSQL: the saga, the final fence, and the outbox behind them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from uuid import uuid4

import pytest

from openticket.adapters.memory import FakeClock, MemoryPasswordHasher
from openticket.application.facade import OpenTicket
from openticket.application.saga import SaleRefusedAtFinalFence
from openticket.domain.ordering import OrderStatus
from openticket.domain.payment import PaymentStatus
from openticket.domain.shared import AreaId, DomainEvent, Money, OrderId, SeatId, TicketId, UserId
from openticket.domain.ticketing import Ticket
from openticket.entrypoints.bootstrap import build_container
from openticket.entrypoints.container import Container
from openticket.entrypoints.settings import Settings
from openticket.testing.world import World, build_world

pytestmark = pytest.mark.postgres


@pytest.fixture
async def container(database_url: str, schema: str) -> AsyncIterator[Container]:
    """A platform storing everything in the test's schema, started, with a fake clock."""
    built = build_container(
        Settings(
            database_url=database_url,
            database_schema=schema,
            partitions=2,
            hold_ttl_seconds=600,
        ),
        clock=FakeClock(),
        password_hasher=MemoryPasswordHasher(),
    )
    app: OpenTicket = built.app()
    await app.start(sweeper=False)
    try:
        yield built
    finally:
        await app.stop()


@pytest.fixture
async def world(container: Container) -> World:
    """A session on sale."""
    return await build_world(container.app(), container.clock())


async def _live_tickets_of(container: Container, world: World, seat: SeatId) -> list[Ticket]:
    async with container.postgres_database().unit_of_work() as uow:
        sold = await uow.tickets.sold_seats(world.session_id)
        if seat not in sold:
            return []
        return [t for t in await uow.tickets.list_for_order(sold[seat]) if t.seat_id == seat]


async def test_a_purchase_on_postgres_ends_in_tickets_and_announces_through_the_outbox(
    container: Container, world: World
) -> None:
    """Order, pay, tickets: stored in PostgreSQL, every committed event marked published."""
    app: OpenTicket = container.app()
    buyer = world.buyer(1)
    order = await app.place_order(buyer, world.session_id, ["A-1-1", "A-1-2"])
    await app.pay(buyer, order.order_id)
    done = await app.get_order(buyer, order.order_id)
    assert done.status is OrderStatus.COMPLETED
    tickets = await app.list_tickets(buyer)
    assert sorted(t.seat_id for t in tickets.items) == ["A-1-1", "A-1-2"]
    relay = container.outbox_relay()
    await relay.flush()
    async with container.postgres_database().unit_of_work() as uow:
        rows = await uow.fetch_all(
            "SELECT event_type, published_at IS NOT NULL FROM outbox ORDER BY seq"
        )
    types = [event_type for event_type, _ in rows]
    assert {"OrderCreated", "PaymentSucceeded", "TicketIssued", "OrderCompleted"} <= set(types)
    assert all(published for _, published in rows), rows


async def test_a_seat_ticketed_elsewhere_sends_the_saga_to_the_refund_not_a_second_ticket(
    container: Container, world: World
) -> None:
    """The unique seat key is the last fence: the paid order is refunded, one ticket stands.

    Another process sold the seat (its ticket is in the table) although this process's
    locks still let a buyer hold and pay for it.
    """
    app: OpenTicket = container.app()
    fenced: list[DomainEvent] = []

    async def record(event: DomainEvent) -> None:
        fenced.append(event)

    app.bus.subscribe(SaleRefusedAtFinalFence, "test_fence", record)
    buyer = world.buyer(2)
    seat = SeatId("A-2-3")
    order = await app.place_order(buyer, world.session_id, [seat])
    elsewhere = Ticket.issue(
        ticket_id=TicketId(uuid4()),
        order_id=OrderId(uuid4()),
        session_id=world.session_id,
        area_id=AreaId("A"),
        seat_id=seat,
        user_id=UserId(uuid4()),
        price=Money("1200.00", "TWD"),
        qr_code=f"elsewhere-{uuid4()}",
        now=world.clock.now(),
        ids=uuid4,
    )
    async with container.postgres_database().unit_of_work() as uow:
        await uow.tickets.add(elsewhere)
        await uow.commit()

    payment = await app.pay(buyer, order.order_id)

    after = await app.get_order(buyer, order.order_id)
    assert after.status is not OrderStatus.COMPLETED
    async with container.postgres_database().unit_of_work() as uow:
        stored = await uow.payments.get(payment.payment_id)
    assert stored is not None
    assert stored.status is PaymentStatus.REFUNDED
    assert [t.ticket_id for t in await _live_tickets_of(container, world, seat)] == [
        elsewhere.ticket_id
    ]
    assert (await app.list_tickets(buyer)).items == ()
    assert [type(e) for e in fenced] == [SaleRefusedAtFinalFence]
