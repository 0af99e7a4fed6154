"""The in-memory outbox relay: what a lost publish leaves behind comes back, once, in order."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import pytest

from openticket.adapters.memory import FakeClock, MemoryDatabase, MemoryOutboxRelay
from openticket.application.ports.errors import AdapterUnavailable
from openticket.domain.shared import DomainEvent
from openticket.testing.contracts._builders import new_order


class Bus:
    """A downstream ``publish`` that records what arrived; ``away`` makes it refuse."""

    def __init__(self) -> None:
        self.received: list[DomainEvent] = []
        self.away = False

    async def publish(self, events: Sequence[DomainEvent]) -> None:
        """Receive ``events``, or raise ``AdapterUnavailable`` while away."""
        if self.away:
            raise AdapterUnavailable("the bus is away")
        self.received.extend(events)


async def commit_order(database: MemoryDatabase) -> list[DomainEvent]:
    """Commit one new order; its events."""
    async with database.unit_of_work() as uow:
        await uow.orders.add(new_order())
        await uow.commit()
    return uow.collect_new_events()


async def test_events_whose_publish_was_lost_are_relayed_once_after_the_grace_in_order() -> None:
    clock, database, bus = FakeClock(), MemoryDatabase(), Bus()
    relay = MemoryOutboxRelay(database, bus.publish, clock=clock)
    published = await commit_order(database)
    await relay.publish(published)
    bus.away = True
    lost = [*await commit_order(database), *await commit_order(database)]
    await relay.publish(lost)  # deferred, not raised: the commits stand
    bus.away = False

    clock.advance(9)
    assert await relay.relay_once() == 0, "relayed before its publisher's grace ran out"
    clock.advance(1)
    assert await relay.relay_once() == 2
    assert await relay.relay_once() == 0

    assert bus.received == [*published, *lost]
    assert relay.unpublished == []


async def test_events_committed_and_never_handed_to_publish_are_relayed() -> None:
    """The committing process died between its commit and its publish."""
    clock, database, bus = FakeClock(), MemoryDatabase(), Bus()
    relay = MemoryOutboxRelay(database, bus.publish, clock=clock)
    orphaned = await commit_order(database)

    clock.advance(10)
    await relay.relay_once()

    assert bus.received == orphaned


async def test_a_relay_pass_that_fails_marks_nothing_and_the_next_one_publishes_it_all() -> None:
    clock, database, bus = FakeClock(), MemoryDatabase(), Bus()
    relay = MemoryOutboxRelay(database, bus.publish, clock=clock)
    lost = [*await commit_order(database), *await commit_order(database)]
    clock.advance(10)
    bus.away = True
    with pytest.raises(AdapterUnavailable):
        await relay.relay_once()
    bus.away = False

    assert relay.unpublished == lost
    assert await relay.relay_once(grace=timedelta(0)) == 2
    assert bus.received == lost
