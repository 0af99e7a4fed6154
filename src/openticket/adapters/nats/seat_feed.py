"""Seat events between processes: workers put them on SEATS, API processes follow it.

Partition actors run in ``openticket worker`` processes, but the seat-map feeds
(WebSockets) are served by the API processes. :class:`SeatEventForwarder` publishes
every seat event a worker's actors decide to the SEATS stream; :class:`SeatEventFollower`
gives an API process each seat event stored from now on, in order, through an ordered
(ephemeral) consumer — a live view, not a durable duty: a process that was down has
nothing to catch up on, its clients reconnect to a fresh snapshot.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Sequence

import structlog
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.api import DeliverPolicy

from openticket.adapters.nats.envelope import MalformedEnvelope, decode
from openticket.adapters.nats.publisher import NatsEventPublisher
from openticket.adapters.nats.streams import stream_name, subject_name
from openticket.adapters.serialization import UnknownEventType
from openticket.application.ports.errors import AdapterUnavailable
from openticket.domain.shared import DomainEvent

_log = structlog.get_logger("openticket.nats")

Publish = Callable[[Sequence[DomainEvent]], Awaitable[None]]


class SeatEventForwarder:
    """A bus handler of a worker: each seat event also goes to the SEATS stream."""

    def __init__(self, publisher: NatsEventPublisher) -> None:
        self._publisher = publisher

    async def __call__(self, event: DomainEvent) -> None:
        """Publish one seat event (the bus retries it if NATS is away)."""
        await self._publisher.publish([event])


class SeatEventFollower:
    """Hands every seat event stored from now on to ``publish`` (the local bus), in order."""

    def __init__(self, js: JetStreamContext, publish: Publish, *, prefix: str = "") -> None:
        self._js = js
        self._publish = publish
        self._subject = subject_name("seat.>", prefix)
        self._stream = stream_name("SEATS", prefix)
        self._subscription: Subscription | None = None

    async def start(self) -> None:
        """Begin following (idempotent)."""
        if self._subscription is not None:
            return
        try:
            self._subscription = await self._js.subscribe(
                self._subject,
                stream=self._stream,
                cb=self._received,
                ordered_consumer=True,
                deliver_policy=DeliverPolicy.NEW,
            )
        except (NatsError, OSError, TimeoutError) as e:
            raise AdapterUnavailable(f"cannot follow the seat events: {e}") from e

    async def stop(self) -> None:
        """Stop following (idempotent)."""
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            with contextlib.suppress(NatsError, OSError, TimeoutError):
                await subscription.unsubscribe()

    async def _received(self, message: Msg) -> None:
        try:
            event, _ = decode(message.data)
        except (MalformedEnvelope, UnknownEventType) as e:
            _log.warning("seat_event_unreadable", subject=message.subject, error=str(e))
            return
        await self._publish([event])
