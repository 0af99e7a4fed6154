"""Getting word out: domain events to the bus, live status changes to watchers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Protocol

import attrs

from openticket.domain.ordering import OrderStatus
from openticket.domain.seating import SeatStatus
from openticket.domain.shared import DomainEvent, OrderId, SeatId, SessionId, UserId


class EventPublisher(Protocol):
    """Publishes domain events to the event bus (in-process, NATS JetStream...).

    Publishing the same event twice must be harmless: the bus or its consumers drop
    the duplicate by ``event_id``. Raises ``AdapterUnavailable`` when the bus cannot
    be reached; the caller (the outbox relay) tries again later.
    """

    async def publish(self, events: Sequence[DomainEvent]) -> None:
        """Publish ``events`` in order."""
        ...


@attrs.frozen(kw_only=True)
class SeatStatusChanged:
    """A seat of a session changed status (what the seat-map feed shows)."""

    session_id: SessionId
    seat_id: SeatId
    status: SeatStatus
    at: datetime


@attrs.frozen(kw_only=True)
class OrderStatusChanged:
    """One of a user's orders changed status (what the order feed shows)."""

    user_id: UserId
    order_id: OrderId
    status: OrderStatus
    at: datetime


Notification = SeatStatusChanged | OrderStatusChanged
"""A change someone may be watching live."""


class Notifier(Protocol):
    """Fans status changes out to live watchers (WebSockets), in order per channel.

    A subscriber receives every notification published after its subscription began,
    in publish order. Subscriptions end when their context exits.
    """

    async def publish(self, notifications: Sequence[Notification]) -> None:
        """Deliver ``notifications`` to everyone watching their session or user."""
        ...

    def watch_seats(
        self, session_id: SessionId
    ) -> AbstractAsyncContextManager[AsyncIterator[SeatStatusChanged]]:
        """Subscribe to seat changes of one session."""
        ...

    def watch_orders(
        self, user_id: UserId
    ) -> AbstractAsyncContextManager[AsyncIterator[OrderStatusChanged]]:
        """Subscribe to order changes of one user."""
        ...
