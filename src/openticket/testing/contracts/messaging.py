"""Contracts of the messaging ports: the event publisher and the live-status notifier."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta
from typing import TypeVar
from uuid import uuid4

from openticket.application.ports.messaging import (
    EventPublisher,
    Notifier,
    OrderStatusChanged,
    SeatStatusChanged,
)
from openticket.domain.ordering import OrderStatus
from openticket.domain.seating import SeatStatus
from openticket.domain.shared import DomainEvent, OrderId, SessionId, UserId
from openticket.testing.contracts._builders import T0, new_id, new_order, new_payment, seat

N = TypeVar("N")


def _some_events() -> list[DomainEvent]:
    """A few real domain events of different kinds, in the order they happened."""
    order = new_order()
    payment = new_payment(order)
    order.start_payment(payment.payment_id, now=T0 + timedelta(seconds=1), ids=new_id)
    payment.mark_pending("tx-1")
    payment.succeed(now=T0 + timedelta(seconds=2), ids=new_id)
    order.complete(payment.payment_id, now=T0 + timedelta(seconds=3), ids=new_id)
    events = [*order.collect_events(), *payment.collect_events()]
    return sorted(events, key=lambda e: e.occurred_at)


class EventPublisherContract:
    """What every ``EventPublisher`` must do.

    Subclasses define the fixture ``publisher`` and override :meth:`published_events`
    to read back what reached the bus (e.g. the memory adapter's ``published`` list,
    or the messages of a JetStream stream decoded into domain events).
    """

    async def published_events(self, publisher: EventPublisher) -> Sequence[DomainEvent]:
        """Every event the bus holds now, in the order it was stored."""
        raise NotImplementedError("subclasses read back what the publisher delivered")

    async def _mine(
        self, publisher: EventPublisher, events: Sequence[DomainEvent]
    ) -> list[DomainEvent]:
        """What the bus holds of ``events`` (a shared bus holds other tests' events too)."""
        wanted = {e.event_id for e in events}
        return [e for e in await self.published_events(publisher) if e.event_id in wanted]

    async def test_published_events_arrive_in_order(self, publisher: EventPublisher) -> None:
        """Events of one and of several calls are stored in publish order, unchanged."""
        events = _some_events()
        await publisher.publish(events[:3])
        await publisher.publish(events[3:])
        assert await self._mine(publisher, events) == events

    async def test_publishing_an_event_twice_is_harmless(self, publisher: EventPublisher) -> None:
        """A repeated event (outbox retry) is stored once, in its first place."""
        events = _some_events()
        first, second, *rest = events
        await publisher.publish([first])
        await publisher.publish([first, second])
        await publisher.publish([second, *rest, first])
        assert await self._mine(publisher, events) == events

    async def test_publishing_nothing_is_harmless(self, publisher: EventPublisher) -> None:
        """An empty batch stores nothing and does not disturb the next one."""
        events = _some_events()
        await publisher.publish([])
        await publisher.publish(events)
        assert await self._mine(publisher, events) == events


async def _next(feed: AsyncIterator[N], within: float) -> N:
    """The next notification of ``feed``; fail after ``within`` seconds instead of hanging."""
    return await asyncio.wait_for(anext(feed), within)


def _seat_changes(session_id: SessionId, count: int, *, offset: int = 0) -> list[SeatStatusChanged]:
    statuses = (SeatStatus.HELD, SeatStatus.SOLD, SeatStatus.AVAILABLE)
    return [
        SeatStatusChanged(
            session_id=session_id,
            seat_id=seat("A", 1, offset + n + 1),
            status=statuses[n % len(statuses)],
            at=T0 + timedelta(seconds=offset + n),
        )
        for n in range(count)
    ]


def _order_changes(user_id: UserId, count: int, *, offset: int = 0) -> list[OrderStatusChanged]:
    statuses = (OrderStatus.CREATED, OrderStatus.PAYMENT_PENDING, OrderStatus.COMPLETED)
    order_id = OrderId(uuid4())
    return [
        OrderStatusChanged(
            user_id=user_id,
            order_id=order_id,
            status=statuses[n % len(statuses)],
            at=T0 + timedelta(seconds=offset + n),
        )
        for n in range(count)
    ]


class NotifierContract:
    """What every ``Notifier`` must do. Subclasses define the fixture ``notifier``."""

    receive_timeout: float = 2.0
    """Seconds a watcher waits for a notification that should arrive."""
    hears_only_what_follows_its_join: bool = True
    """False: a message published just before a watch began may still reach it (on a
    Redis Cluster a PUBLISH reaches the subscribing node over the cluster bus, after
    the publisher's answer). Such a message is never out of order, and never lost."""

    async def test_a_seat_watcher_gets_its_sessions_changes_in_order(
        self, notifier: Notifier
    ) -> None:
        """Everything published for the session after subscribing, in publish order."""
        session_id = SessionId(uuid4())
        changes = _seat_changes(session_id, 5)
        async with notifier.watch_seats(session_id) as feed:
            await notifier.publish(changes[:2])
            await notifier.publish(changes[2:])
            received = [await _next(feed, self.receive_timeout) for _ in changes]
        assert received == changes

    async def test_a_seat_watcher_gets_nothing_of_other_sessions(self, notifier: Notifier) -> None:
        """Changes of another session never reach the watcher, nor order changes."""
        session_id, other = SessionId(uuid4()), SessionId(uuid4())
        mine = _seat_changes(session_id, 2)
        theirs = _seat_changes(other, 2)
        orders = _order_changes(UserId(uuid4()), 1)
        async with notifier.watch_seats(session_id) as feed:
            await notifier.publish([theirs[0], mine[0], *orders, theirs[1]])
            await notifier.publish([mine[1]])
            received = [await _next(feed, self.receive_timeout) for _ in mine]
        assert received == mine

    async def test_a_watcher_gets_nothing_published_before_it_subscribed(
        self, notifier: Notifier
    ) -> None:
        """A subscription starts now: earlier changes are not replayed."""
        session_id = SessionId(uuid4())
        before = _seat_changes(session_id, 2)
        after = _seat_changes(session_id, 1, offset=10)
        await notifier.publish(before)
        async with notifier.watch_seats(session_id) as feed:
            await notifier.publish(after)
            await self._hears_only_the_latest(feed, before, after[0])

    async def test_two_seat_watchers_both_get_everything(self, notifier: Notifier) -> None:
        """Every watcher of a session gets every change, in order."""
        session_id = SessionId(uuid4())
        changes = _seat_changes(session_id, 4)
        async with (
            notifier.watch_seats(session_id) as first,
            notifier.watch_seats(session_id) as second,
        ):
            await notifier.publish(changes)
            got_first = [await _next(first, self.receive_timeout) for _ in changes]
            got_second = [await _next(second, self.receive_timeout) for _ in changes]
        assert got_first == changes
        assert got_second == changes

    async def test_an_order_watcher_gets_its_users_changes_in_order_and_nothing_else(
        self, notifier: Notifier
    ) -> None:
        """Only the user's own order changes, in publish order; no seat changes."""
        user_id = UserId(uuid4())
        mine = _order_changes(user_id, 4)
        theirs = _order_changes(UserId(uuid4()), 2)
        seats_changed = _seat_changes(SessionId(uuid4()), 1)
        async with notifier.watch_orders(user_id) as feed:
            await notifier.publish([theirs[0], mine[0], mine[1], *seats_changed, theirs[1]])
            await notifier.publish(mine[2:])
            received = [await _next(feed, self.receive_timeout) for _ in mine]
        assert received == mine

    async def test_two_order_watchers_both_get_everything(self, notifier: Notifier) -> None:
        """Two tabs of one buyer both see every change of their orders."""
        user_id = UserId(uuid4())
        changes = _order_changes(user_id, 3)
        async with (
            notifier.watch_orders(user_id) as first,
            notifier.watch_orders(user_id) as second,
        ):
            await notifier.publish(changes)
            got_first = [await _next(first, self.receive_timeout) for _ in changes]
            got_second = [await _next(second, self.receive_timeout) for _ in changes]
        assert got_first == changes
        assert got_second == changes

    async def test_publishing_to_nobody_and_after_a_watch_ended_is_harmless(
        self, notifier: Notifier
    ) -> None:
        """No watchers, or only ended ones: publish succeeds; a new watcher starts afresh."""
        session_id = SessionId(uuid4())
        user_id = UserId(uuid4())
        await notifier.publish([*_seat_changes(session_id, 1), *_order_changes(user_id, 1)])
        async with notifier.watch_seats(session_id), notifier.watch_orders(user_id):
            pass
        earlier = _seat_changes(session_id, 3, offset=5)
        await notifier.publish(earlier)
        await notifier.publish(_order_changes(user_id, 3, offset=5))
        latest = _seat_changes(session_id, 1, offset=20)
        async with notifier.watch_seats(session_id) as feed:
            await notifier.publish(latest)
            await self._hears_only_the_latest(feed, earlier, latest[0])

    async def _hears_only_the_latest(
        self,
        feed: AsyncIterator[SeatStatusChanged],
        earlier: list[SeatStatusChanged],
        latest: SeatStatusChanged,
    ) -> None:
        """``feed``, begun after ``earlier`` was published, hears ``latest`` next.

        Where ``hears_only_what_follows_its_join`` is False, at most a tail of
        ``earlier`` may come first, in order.
        """
        heard = [await _next(feed, self.receive_timeout)]
        while heard[-1] != latest and len(heard) <= len(earlier):
            heard.append(await _next(feed, self.receive_timeout))
        if self.hears_only_what_follows_its_join:
            assert heard == [latest]
        else:
            assert heard[-1] == latest
            assert heard[:-1] == earlier[len(earlier) - len(heard) + 1 :]
