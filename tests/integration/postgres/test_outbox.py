"""The outbox and its relay: every committed event reaches the bus, crashes included.

A "process" is a ``PostgresDatabase`` (its own pool) on the test's schema; a crash is a
process that stops before doing its next step. The downstream ``publish`` here is a list
that records what the bus received.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime, timedelta
from uuid import UUID, uuid4

import pytest

from openticket.adapters.postgres import OutboxRelay, PostgresDatabase
from openticket.adapters.serialization import EventCodec
from openticket.application.correlation import correlated, correlation_id
from openticket.domain.shared import DomainEvent, SessionId
from openticket.testing.contracts._builders import new_order, new_ticket, seat
from openticket.testing.contracts._uow import let_others_run

pytestmark = pytest.mark.postgres

NO_GRACE = timedelta(0)


class Bus:
    """A downstream ``publish`` that records every event it receives, in order.

    ``fail_on`` makes the n-th event it is handed (1-based) raise instead of arriving,
    as if the process died there.
    """

    def __init__(self, *, fail_on: int | None = None) -> None:
        self.received: list[DomainEvent] = []
        self.correlations: list[str | None] = []
        self.handed = 0
        self.fail_on = fail_on

    async def publish(self, events: Sequence[DomainEvent]) -> None:
        """Receive ``events`` (yielding to the loop first, as a network call would)."""
        for event in events:
            self.handed += 1
            if self.handed == self.fail_on:
                raise ConnectionError("the process died while publishing")
            await let_others_run()
            self.received.append(event)
            self.correlations.append(correlation_id.get())

    @property
    def ids(self) -> list[UUID]:
        """Ids of the events received, in order."""
        return [e.event_id for e in self.received]


async def outbox(database: PostgresDatabase) -> list[tuple[UUID, datetime | None]]:
    """``(event_id, published_at)`` of every outbox row, in the order they were stored."""
    return [
        (row[0], row[1])
        for row in await database.query("SELECT event_id, published_at FROM outbox ORDER BY seq")
    ]


async def commit_orders(
    database: PostgresDatabase, count: int, *, correlation: str | None = None
) -> list[DomainEvent]:
    """Commit ``count`` new orders, one unit each; their events in commit order."""
    events: list[DomainEvent] = []
    with correlated(correlation):
        for _ in range(count):
            async with database.unit_of_work() as uow:
                await uow.orders.add(new_order())
                await uow.commit()
            events.extend(uow.collect_new_events())
    assert len(events) == count
    return events


def ids(events: Sequence[DomainEvent]) -> list[UUID]:
    """The events' ids, in order."""
    return [e.event_id for e in events]


# --- what a commit stores -------------------------------------------------------------------


async def test_committed_events_are_stored_in_the_outbox_and_decode_back(
    pg_database: PostgresDatabase,
) -> None:
    """Same ids, types and payloads: each stored row decodes back to an equal event."""
    session_id = SessionId(uuid4())
    order = new_order(session_id=session_id, seat_ids=(seat("A", 1, 1),))
    ticket = new_ticket(session_id=session_id, seat_id=seat("A", 1, 1), order_id=order.order_id)
    async with pg_database.unit_of_work() as uow:
        await uow.orders.add(order)
        await uow.tickets.add(ticket)
        await uow.commit()
    events = uow.collect_new_events()
    assert [e.event_type for e in events] == ["OrderCreated", "TicketIssued"]

    stored = await pg_database.query(
        "SELECT event_id, event_type, payload FROM outbox ORDER BY seq"
    )

    assert [(row[0], row[1]) for row in stored] == [(e.event_id, e.event_type) for e in events]
    codec = EventCodec()
    assert [codec.decode(row[1], row[2]) for row in stored] == events


async def test_a_rolled_back_unit_leaves_no_outbox_rows(pg_database: PostgresDatabase) -> None:
    """Events of a unit that did not commit are never stored, explicitly rolled back or not."""
    async with pg_database.unit_of_work() as uow:
        await uow.orders.add(new_order())
        await uow.rollback()
        await uow.orders.add(new_order())
    assert uow.collect_new_events() == []
    assert await outbox(pg_database) == []


# --- the at-once path ---------------------------------------------------------------------------


async def test_publish_hands_the_events_on_and_flush_marks_them_published(
    pg_database: PostgresDatabase,
) -> None:
    """The committing process publishes at once; ``flush`` then stamps the rows published."""
    bus = Bus()
    relay = OutboxRelay(pg_database, bus.publish)
    events = await commit_orders(pg_database, 3)

    await relay.publish(events)

    assert bus.received == events
    assert await relay.flush() == len(events)
    stored = await outbox(pg_database)
    assert [event_id for event_id, _ in stored] == ids(events)
    assert all(published_at is not None for _, published_at in stored), stored
    assert await relay.relay_once(grace=NO_GRACE) == 0
    assert bus.received == events, "an event published at once was published again"


# --- recovery -------------------------------------------------------------------------------------


async def test_events_of_a_process_that_died_before_publishing_are_relayed_once_in_order(
    pg_database: PostgresDatabase, other_database: PostgresDatabase
) -> None:
    """Commit, then die before publishing: another process's relay publishes them all.

    In commit order, exactly once, with the correlation id they were committed under;
    a second round publishes nothing.
    """
    events = await commit_orders(pg_database, 2, correlation="req-1")
    events += await commit_orders(pg_database, 2, correlation="req-2")
    await pg_database.stop()  # the process died before its relay published anything

    bus = Bus()
    relay = OutboxRelay(other_database, bus.publish)

    assert await relay.relay_once(grace=NO_GRACE) == len(events)
    assert bus.ids == ids(events)
    assert bus.received == events
    assert bus.correlations == ["req-1", "req-1", "req-2", "req-2"]
    assert await relay.relay_once(grace=NO_GRACE) == 0
    assert bus.ids == ids(events)
    assert all(published_at is not None for _, published_at in await outbox(other_database))


async def test_a_crash_between_publish_and_mark_publishes_again_and_consumers_dedupe(
    pg_database: PostgresDatabase, other_database: PostgresDatabase
) -> None:
    """The relay dies at the 2nd event: nothing is marked, the next round sends all again.

    The bus sees the first event twice; a consumer recording event ids in
    ``processed_events`` handles every event exactly once.
    """
    events = await commit_orders(pg_database, 3)
    consumer = f"consumer-{uuid4().hex}"
    handled: list[DomainEvent] = []

    async def consume(received: Sequence[DomainEvent]) -> None:
        for event in received:
            async with other_database.unit_of_work() as uow:
                if await uow.processed_events.add(consumer, event.event_id):
                    await uow.commit()
                    handled.append(event)

    crashing = Bus(fail_on=2)
    with pytest.raises(ConnectionError):
        await OutboxRelay(pg_database, crashing.publish).relay_once(grace=NO_GRACE)
    assert crashing.ids == ids(events[:1])
    assert all(published_at is None for _, published_at in await outbox(pg_database))
    await consume(crashing.received)

    healthy = Bus()
    assert await OutboxRelay(other_database, healthy.publish).relay_once(grace=NO_GRACE) == 3
    assert healthy.ids == ids(events)
    await consume(healthy.received)

    assert crashing.ids + healthy.ids == ids(events[:1]) + ids(events)
    assert ids(handled) == ids(events)
    assert all(published_at is not None for _, published_at in await outbox(pg_database))


async def test_two_relays_at_once_publish_each_event_exactly_once(
    pg_database: PostgresDatabase, other_database: PostgresDatabase
) -> None:
    """Two processes' relays share the unpublished rows: no event is published twice."""
    events = await commit_orders(pg_database, 8)
    bus = Bus()
    relays = [
        OutboxRelay(database, bus.publish, batch=2) for database in (pg_database, other_database)
    ]

    async def drain(relay: OutboxRelay) -> int:
        total = 0
        while published := await relay.relay_once(grace=NO_GRACE):
            total += published
        return total

    counts = await asyncio.gather(*(drain(relay) for relay in relays))

    assert sum(counts) == len(events)
    assert sorted(bus.ids) == sorted(ids(events))
    assert len(bus.ids) == len(events), "an event was published twice"
    assert all(published_at is not None for _, published_at in await outbox(pg_database))


async def test_events_younger_than_the_grace_are_left_to_their_process(
    pg_database: PostgresDatabase, other_database: PostgresDatabase
) -> None:
    """Within ``grace`` the committing process may still publish them: recovery waits."""
    events = await commit_orders(pg_database, 2)
    bus = Bus()
    relay = OutboxRelay(other_database, bus.publish, grace=timedelta(minutes=5))

    assert await relay.relay_once() == 0
    assert await relay.relay_once(grace=timedelta(minutes=5)) == 0
    assert bus.received == []
    assert all(published_at is None for _, published_at in await outbox(pg_database))

    assert await relay.relay_once(grace=NO_GRACE) == len(events)
    assert bus.received == events


async def test_prune_deletes_published_rows_past_retention_and_never_unpublished_ones(
    pg_database: PostgresDatabase,
) -> None:
    """With a retention of zero, every published row goes and every unpublished one stays."""
    bus = Bus()
    relay = OutboxRelay(pg_database, bus.publish, retention=timedelta(0))
    published = await commit_orders(pg_database, 2)
    assert await relay.relay_once(grace=NO_GRACE) == len(published)
    waiting = await commit_orders(pg_database, 3)

    assert await relay.prune() == len(published)

    assert await outbox(pg_database) == [(event_id, None) for event_id in ids(waiting)]
    assert await relay.prune() == 0
    assert await outbox(pg_database) == [(event_id, None) for event_id in ids(waiting)]


async def test_a_relay_leaves_events_of_a_newer_release_for_a_relay_that_can_read_them(
    pg_database: PostgresDatabase,
) -> None:
    """During a rolling upgrade an older relay skips event types it does not know.

    They stay unpublished (nothing is lost); the events it knows are published around them.
    """
    before = await commit_orders(pg_database, 1)
    conn = await pg_database.take()
    try:
        await conn.execute(
            "INSERT INTO outbox (event_id, event_type, payload, occurred_at)"
            " VALUES (%s, 'SeatsTeleported', '{}', now())",
            (uuid4(),),
        )
    finally:
        await pg_database.give_back(conn)
    after = await commit_orders(pg_database, 1)
    bus = Bus()
    relay = OutboxRelay(pg_database, bus.publish)

    assert await relay.relay_once(grace=NO_GRACE) == 2
    assert bus.ids == ids(before + after)
    unpublished = await pg_database.query(
        "SELECT event_type FROM outbox WHERE published_at IS NULL"
    )
    assert unpublished == [("SeatsTeleported",)]


async def test_events_never_published_at_once_are_forgotten_after_the_grace(
    pg_database: PostgresDatabase,
) -> None:
    """The relay does not hold on to ids its process never published: recovery has them."""
    bus = Bus()
    relay = OutboxRelay(pg_database, bus.publish, grace=NO_GRACE)
    events = await commit_orders(pg_database, 3)
    await relay.flush()  # nothing was published at once; the grace is over
    await relay.publish(events)  # too late for the at-once path to mark them
    assert await relay.flush() == 0
    assert await relay.relay_once() == 3  # the recovery path publishes and marks them
    assert all(published_at is not None for _, published_at in await outbox(pg_database))
