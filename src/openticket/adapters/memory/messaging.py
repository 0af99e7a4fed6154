"""In-process event bus and live-notification fan-out."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TypeVar
from uuid import UUID

from openticket.application.ports.messaging import (
    Notification,
    OrderStatusChanged,
    SeatStatusChanged,
)
from openticket.domain.shared import DomainEvent, SessionId, UserId

EventHandler = Callable[[DomainEvent], Awaitable[None]]
N = TypeVar("N", SeatStatusChanged, OrderStatusChanged)


class MemoryEventPublisher:
    """An ``EventPublisher`` that keeps what it published and hands it to subscribers.

    Like JetStream's duplicate window, an event id seen before is dropped, so a relay
    that publishes twice after a crash delivers once.
    """

    def __init__(self) -> None:
        self.published: list[DomainEvent] = []
        self._seen: set[UUID] = set()
        self._subscribers: list[EventHandler] = []

    def subscribe(self, handler: EventHandler) -> None:
        """Call ``handler`` with every event published from now on, in order."""
        self._subscribers.append(handler)

    async def publish(self, events: Sequence[DomainEvent]) -> None:
        """Publish ``events`` in order; duplicates by event id are dropped."""
        for event in events:
            if event.event_id in self._seen:
                continue
            self._seen.add(event.event_id)
            self.published.append(event)
            for handler in self._subscribers:
                await handler(event)


class MemoryNotifier:
    """A ``Notifier`` fanning out to per-subscriber queues in this process."""

    def __init__(self) -> None:
        self._seat_watchers: dict[SessionId, set[asyncio.Queue[SeatStatusChanged]]] = {}
        self._order_watchers: dict[UserId, set[asyncio.Queue[OrderStatusChanged]]] = {}

    async def publish(self, notifications: Sequence[Notification]) -> None:
        """Deliver each notification to every watcher of its session or user."""
        for notification in notifications:
            if isinstance(notification, SeatStatusChanged):
                for seat_queue in self._seat_watchers.get(notification.session_id, ()):
                    seat_queue.put_nowait(notification)
            else:
                for order_queue in self._order_watchers.get(notification.user_id, ()):
                    order_queue.put_nowait(notification)

    def watch_seats(
        self, session_id: SessionId
    ) -> AbstractAsyncContextManager[AsyncIterator[SeatStatusChanged]]:
        """Subscribe to seat changes of one session."""
        return _watch(self._seat_watchers, session_id)

    def watch_orders(
        self, user_id: UserId
    ) -> AbstractAsyncContextManager[AsyncIterator[OrderStatusChanged]]:
        """Subscribe to order changes of one user."""
        return _watch(self._order_watchers, user_id)


K = TypeVar("K")


@asynccontextmanager
async def _watch(
    registry: dict[K, set[asyncio.Queue[N]]], key: K
) -> AsyncIterator[AsyncIterator[N]]:
    queue: asyncio.Queue[N] = asyncio.Queue()
    registry.setdefault(key, set()).add(queue)

    async def drain() -> AsyncIterator[N]:
        while True:
            yield await queue.get()

    try:
        yield drain()
    finally:
        watchers = registry.get(key)
        if watchers is not None:
            watchers.discard(queue)
            if not watchers:
                del registry[key]
