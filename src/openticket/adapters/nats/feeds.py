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

import asyncio
import contextlib
import itertools
from collections import deque
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
from openticket.application.correlation import correlation_id
from openticket.application.ports.errors import AdapterUnavailable
from openticket.application.ports.lifecycle import stop_task
from openticket.domain.shared import DomainEvent

_log = structlog.get_logger("openticket.nats")

Handle = Callable[[DomainEvent], Awaitable[None]]


DROPS_PER_WARNING: Final = 10_000
"""A full queue warns at its first dropped event and at every this many more."""

STOP_PATIENCE: Final = 5.0
"""Seconds a stopping worker waits for its last seat events to be acknowledged."""


class SeatEventForwarder:
    """A bus handler of a worker: each seat event also goes to the SEATS stream.

    The handler only queues the event (with its request id); one task sends what
    piled up as one window (:meth:`NatsEventPublisher.publish_window`): in order,
    acknowledged together. So the actors' event pump never waits on JetStream, and a
    flash sale's thousands of seat events a second cost a few round trips, not one
    each. A window JetStream does not acknowledge is sent again (repeats are dropped
    by their ``Nats-Msg-Id``) after a pause, doubling up to ``max_pause`` seconds.
    More than ``max_queued`` events waiting (NATS away for long) drop the oldest:
    the stream is a live view, and watchers take a fresh snapshot when they reconnect.
    """

    def __init__(
        self,
        publisher: NatsEventPublisher,
        *,
        max_window: int = 1_000,
        max_queued: int = 100_000,
        max_pause: float = 5.0,
    ) -> None:
        self._publisher = publisher
        self._max_window = max_window
        self._max_pause = max_pause
        self._queued: deque[tuple[DomainEvent, str | None]] = deque(maxlen=max_queued)
        self._ready = asyncio.Event()
        self._sent = asyncio.Event()
        """Set while nothing waits to be sent."""
        self._task: asyncio.Task[None] | None = None
        self._dropped = 0
        self._stopping = False
        self.forwarded = 0
        """Events the stream acknowledged."""

    async def __call__(self, event: DomainEvent) -> None:
        """Queue one seat event for the stream (it never waits for NATS)."""
        if len(self._queued) == self._queued.maxlen:
            self._dropped += 1  # the oldest goes
            if self._dropped % DROPS_PER_WARNING == 1:
                _log.warning("seat_events_dropped", dropped=self._dropped, queued=len(self._queued))
        self._queued.append((event, correlation_id.get()))
        self._sent.clear()
        self._ready.set()
        if self._task is None:
            self._task = asyncio.create_task(self._forward(), name="seat-event-forwarder")

    async def stop(self) -> None:
        """Send what is queued (waiting at most ``STOP_PATIENCE`` seconds), then stop.

        Events handed over meanwhile are sent too, within the same patience.
        """
        task = self._task
        if task is None:
            return
        try:
            async with asyncio.timeout(STOP_PATIENCE):
                await self._sent.wait()
        except TimeoutError:
            _log.warning("seat_events_not_forwarded_at_stop", events=len(self._queued))
        self._task = None
        self._stopping = True  # (nats-py may turn a cancellation into its own error)
        await stop_task(task)
        self._stopping = False

    async def _forward(self) -> None:
        pause = 0.05
        queued = self._queued
        while True:
            await self._ready.wait()
            self._ready.clear()
            while queued:
                window = list(itertools.islice(queued, self._max_window))
                dropped = self._dropped
                sent = len(window)
                try:
                    await self._publisher.publish_window(window)
                except AdapterUnavailable as e:
                    if self._stopping:
                        return
                    _log.warning("seat_events_not_forwarded", events=len(window), error=str(e))
                    await asyncio.sleep(pause)
                    pause = min(pause * 2, self._max_pause)
                    continue
                except Exception as e:  # a window that can never be sent: dropped, logged
                    if self._stopping:
                        return
                    _log.error("seat_events_dropped", events=len(window), error=repr(e))
                    sent = 0
                pause = 0.05
                # the window is at the head, less what a full queue dropped meanwhile
                for _ in range(len(window) - (self._dropped - dropped)):
                    queued.popleft()
                self.forwarded += sent
            self._sent.set()


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
            _log.warning("feed_event_not_delivered", event_type=event.event_type, error=repr(e))
