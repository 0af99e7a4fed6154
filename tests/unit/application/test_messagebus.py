"""The message bus: every subscriber gets every event; failures are retried, then parked."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

import attrs
import pytest
import structlog
from structlog.testing import capture_logs

from openticket.adapters.memory import FakeClock
from openticket.application.messagebus import Command, MessageBus, SettledHere, UnknownCommand
from openticket.application.roles import EventRole
from openticket.domain.shared import DomainEvent

T0 = datetime(2030, 1, 1, tzinfo=UTC)


@attrs.frozen(kw_only=True)
class Rang(DomainEvent):
    n: int


@attrs.frozen(kw_only=True)
class RangTwice(Rang):
    pass


def rang(n: int, kind: type[Rang] = Rang) -> Rang:
    return kind(event_id=UUID(int=n), occurred_at=T0, n=n)


def make_bus(clock: FakeClock, attempts: int = 3) -> MessageBus:
    return MessageBus(
        clock=clock,
        logger=structlog.get_logger("test"),
        max_attempts=attempts,
        retry_base_delay=timedelta(seconds=1),
    )


async def test_every_subscriber_gets_events_of_its_type_and_subtypes_in_order() -> None:
    bus = make_bus(FakeClock(T0))
    seen: list[tuple[str, int]] = []

    async def base(event: Rang) -> None:
        seen.append(("base", event.n))

    async def sub(event: RangTwice) -> None:
        seen.append(("sub", event.n))

    bus.subscribe(Rang, "base", base)
    bus.subscribe(RangTwice, "sub", sub)
    await bus.publish([rang(1), rang(2, RangTwice)])
    assert seen == [("base", 1), ("base", 2), ("sub", 2)]


async def test_events_published_by_a_handler_run_before_publish_returns_in_order() -> None:
    bus = make_bus(FakeClock(T0))
    seen: list[int] = []

    async def cascade(event: Rang) -> None:
        seen.append(event.n)
        if event.n < 3:
            await bus.publish([rang(event.n + 10), rang(event.n + 1)])

    bus.subscribe(Rang, "cascade", cascade)
    await bus.publish([rang(1)])
    assert seen == [1, 11, 2, 12, 3]


async def test_a_failing_handler_is_retried_after_its_backoff_and_others_still_run() -> None:
    clock = FakeClock(T0)
    bus = make_bus(clock)
    calls: list[int] = []
    others: list[int] = []

    async def flaky(event: Rang) -> None:
        calls.append(event.n)
        if len(calls) < 2:
            raise RuntimeError("database down")

    async def steady(event: Rang) -> None:
        others.append(event.n)

    bus.subscribe(Rang, "flaky", flaky)
    bus.subscribe(Rang, "steady", steady)
    with capture_logs() as logs:
        await bus.publish([rang(7)])
    assert others == [7]
    assert bus.pending_retries == 1
    assert logs[0]["event"] == "event_handler_failed"
    assert logs[0]["handler"] == "flaky"
    assert await bus.retry_due() == 0  # backoff not over
    clock.advance(1)
    assert await bus.retry_due() == 1
    assert calls == [7, 7]
    assert bus.pending_retries == 0
    assert bus.dead_letters == []


async def test_a_handler_that_keeps_failing_is_parked_and_logged_not_dropped() -> None:
    clock = FakeClock(T0)
    bus = make_bus(clock, attempts=3)

    async def broken(event: Rang) -> None:
        raise ValueError(f"poison {event.n}")

    bus.subscribe(Rang, "broken", broken)
    with capture_logs() as logs:
        await bus.publish([rang(9)])
        for _ in range(5):
            clock.advance(60)
            await bus.retry_due()
    assert [d.event.event_id for d in bus.dead_letters] == [UUID(int=9)]
    assert bus.dead_letters[0].attempts == 3
    assert [entry["event"] for entry in logs] == [
        "event_handler_failed",
        "event_handler_failed",
        "event_handler_gave_up",
    ]
    assert logs[-1]["log_level"] == "error"


@attrs.frozen
class Double(Command[int]):
    n: int


@attrs.frozen
class Nobody(Command[None]):
    pass


async def test_a_command_goes_to_its_one_handler_and_its_error_reaches_the_caller() -> None:
    bus = make_bus(FakeClock(T0))

    async def double(command: Double) -> int:
        if command.n < 0:
            raise ValueError("negative")
        return command.n * 2

    bus.register(Double, double)
    assert await bus.execute(Double(21)) == 42
    with pytest.raises(ValueError, match="negative"):
        await bus.execute(Double(-1))
    with pytest.raises(UnknownCommand):
        await bus.execute(Nobody())
    with pytest.raises(ValueError, match="already"):
        bus.register(Double, double)


# --- roles tried once: what they settled ---------------------------------------------


async def test_a_role_tried_once_records_the_events_its_step_handled_and_no_others() -> None:
    """What the API ran inline is recorded for its publisher (and taken once); a step
    that failed, and a role run with retries in one process, record nothing."""
    bus = make_bus(FakeClock(datetime(2030, 1, 1, tzinfo=UTC)))

    async def step(event: Rang) -> None:
        if event.n == 2:
            raise RuntimeError("the step failed")

    EventRole("ticketing", {Rang: ("ticketing.rang", step)}).subscribe(bus, retry=False)
    EventRole("local", {RangTwice: ("local.rang", step)}).subscribe(bus)
    handled, failed, elsewhere = rang(1), rang(2), rang(3, RangTwice)
    with capture_logs():
        await bus.publish([handled, failed, elsewhere])

    assert bus.settled_here.take(handled.event_id) == ["ticketing"]
    assert bus.settled_here.take(handled.event_id) == [], "taken once"
    assert bus.settled_here.take(failed.event_id) == []
    assert bus.settled_here.take(elsewhere.event_id) == ["ticketing"], "a Rang too, not 'local'"


def test_settled_here_forgets_the_oldest_beyond_its_capacity() -> None:
    settled = SettledHere(capacity=2)
    first, second, third = (rang(n).event_id for n in range(3))
    for event_id in (first, second, third):
        settled.record(event_id, "ticketing")
    settled.record(third, "ticketing")
    settled.record(third, "payments")
    assert settled.take(first) == []
    assert settled.take(second) == ["ticketing"]
    assert settled.take(third) == ["ticketing", "payments"]
