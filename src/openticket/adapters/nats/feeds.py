"""Live feeds between processes: workers put seat events on SEATS, API processes follow.

Partition actors run in ``openticket worker`` processes and so does the saga's
durable work, but the seat-map and order feeds (WebSockets) are served by the API
processes. :class:`SeatEventForwarder` publishes every seat event a worker's actors
decide to the SEATS stream (order events reach ORDERS through the outbox);
:class:`LiveFeedFollower` gives an API process each seat and order event stored from
now on, in order per stream, through one ordered (ephemeral) consumer per stream.

That is the notification fan-out when no Redis carries it: every API process sees
every event, its own included, exactly as the streams keep them. It is a live view,
not a durable duty, so it needs no durable consumer: a process that was down has
nothing to catch up on, its clients reconnect to a fresh snapshot.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from typing import Final

import structlog
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.api import DeliverPolicy

from openticket.adapters.nats.envelope import MalformedEnvelope, decode
from openticket.adapters.nats.publisher import NatsEventPublisher
from openticket.adapters.nats.streams import ORDERS, SEATS, stream_name, subject_name
from openticket.adapters.serialization import UnknownEventType
from openticket.application.ports.errors import AdapterUnavailable
from openticket.domain.shared import DomainEvent

_log = structlog.get_logger("openticket.nats")

Handle = Callable[[DomainEvent], Awaitable[None]]


class SeatEventForwarder:
    """A bus handler of a worker: each seat event also goes to the SEATS stream."""

    def __init__(self, publisher: NatsEventPublisher) -> None:
        self._publisher = publisher

    async def __call__(self, event: DomainEvent) -> None:
        """Publish one seat event (the bus retries it if NATS is away)."""
        await self._publisher.publish([event])


FOLLOWED: Final = ((SEATS, "seat.>"), (ORDERS, "order.>"))
"""The streams a live feed follows, each with its subject filter (prefix not included)."""


class LiveFeedFollower:
    """Hands every seat and order event stored from now on to ``handle``, in stream order.

    ``handle`` is the notifications role's (:meth:`LiveNotifications.role`): it turns
    events into what watchers see. A handler that fails is logged; the feed goes on
    (a watcher that missed a change gets it right with the next snapshot).
    """

    def __init__(self, js: JetStreamContext, handle: Handle, *, prefix: str = "") -> None:
        self._js = js
        self._handle = handle
        self._followed = [
            (stream_name(stream, prefix), subject_name(subject, prefix))
            for stream, subject in FOLLOWED
        ]
        self._subscriptions: list[Subscription] = []

    async def start(self) -> None:
        """Begin following (idempotent)."""
        if self._subscriptions:
            return
        try:
            for stream, subject in self._followed:
                self._subscriptions.append(
                    await self._js.subscribe(
                        subject,
                        stream=stream,
                        cb=self._received,
                        ordered_consumer=True,
                        deliver_policy=DeliverPolicy.NEW,
                    )
                )
        except (NatsError, OSError, TimeoutError) as e:
            await self.stop()
            raise AdapterUnavailable(f"cannot follow the live feeds' events: {e}") from e

    async def stop(self) -> None:
        """Stop following (idempotent)."""
        subscriptions, self._subscriptions = self._subscriptions, []
        for subscription in subscriptions:
            with contextlib.suppress(NatsError, OSError, TimeoutError):
                await subscription.unsubscribe()

    async def _received(self, message: Msg) -> None:
        try:
            event, _ = decode(message.data)
        except (MalformedEnvelope, UnknownEventType) as e:
            _log.warning("feed_event_unreadable", subject=message.subject, error=str(e))
            return
        try:
            await self._handle(event)
        except Exception as e:  # one lost notification, not a stopped feed
            _log.warning(
                "feed_event_not_delivered", event_type=event.event_type, error=repr(e)
            )
