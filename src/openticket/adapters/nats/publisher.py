"""The ``EventPublisher`` over NATS JetStream: domain events into the event streams.

Each event becomes one message (see :mod:`.envelope`) on its subject (see
:mod:`.streams`), with ``Nats-Msg-Id`` = its event id and ``Nats-Expected-Stream`` =
the stream its subject belongs to, so that a subject captured by some other stream is
refused rather than stored in the wrong place. The correlation id is the one of the
current context (:data:`openticket.application.correlation.correlation_id`) when
``publish`` is called; the outbox relay sets it to the stored one for each event.

One acknowledgement at a time
    ``publish`` sends an event only once the stream acknowledged the one before, and
    stops at the first failure. The events of a call are therefore stored as a prefix
    of the call, in order, whatever streams and servers they go to: when event *k* is
    refused or lost, nothing after it was stored, and the caller's retry puts *k*
    before *k+1*, as a consumer keeping a seat map or an order's status needs.
    A window of acknowledgements in flight would be faster, but a lost message in the
    middle of it lets later ones be stored first; a retry then stores them out of
    order (and across streams, on a cluster, there is no common order at all). On
    loopback one acknowledgement takes well under a millisecond, and the outbox relay
    of every process publishes in parallel with the others.

A window, for the live seat feed only
    :meth:`NatsEventPublisher.publish_window` sends a worker's seat events in order as
    plain messages, without waiting between them, and only the last with an
    acknowledgement: one wait for a batch, and none of the per-message bookkeeping of
    an acknowledged publish. It is for the ``SEATS`` stream, which only live feeds
    read. The acknowledgement of the last says the server took the window (it handles
    one connection's messages in order); a message the stream refused on the way (a
    full stream; SEATS discards old messages instead) would go unreported, and a
    window sent again after a lost acknowledgement is dropped as repeats. A watcher's
    seat map would show a stale status until that seat's next change or its next
    snapshot. Decisions never read that stream.

Steps already taken
    With ``settled`` (the bus's :class:`~openticket.application.messagebus.SettledHere`),
    an event whose durable roles already ran in this process carries their names in
    ``Openticket-Settled-By``, and those roles' consumers acknowledge it without running
    the step again (it would find its work done). A paid order completed by the request
    that paid it is thus not read again by a worker. The outbox's recovery path
    publishes without the header: a worker then checks, as it always may.

Traces
    While the process traces (:mod:`openticket.adapters.tracing`), each acknowledged
    publish is a producer span whose context goes in the message's ``traceparent``
    header: the consumer that handles the event continues the request's trace. The
    seat feed's windows carry none (only live feeds read them).

Repeats
    An event published again within the stream's duplicate window is acknowledged as a
    duplicate and not stored again: that is success (an outbox retry), counted in
    :attr:`NatsEventPublisher.duplicates`. After the window a repeat is stored again,
    and consumers skip it by its event id.

Failures
    Any error of the client or the server (timeout, no stream answering, a closed or
    reconnecting connection, an API error) raises ``AdapterUnavailable`` from it: the
    outbox keeps the events and its relay tries again later.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import nats.errors
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import Header

from openticket.adapters import tracing
from openticket.adapters.nats.envelope import SETTLED_BY_HEADER, encode
from openticket.adapters.nats.streams import route_of, stream_name
from openticket.adapters.serialization import EventCodec
from openticket.application.correlation import correlation_id
from openticket.application.messagebus import SettledHere
from openticket.application.ports.errors import AdapterUnavailable
from openticket.domain.shared import DomainEvent

YIELD_EVERY = 16
"""Events a window encodes and sends before it lets the event loop run other work."""


class NatsEventPublisher:
    """Publishes domain events to the JetStream streams of the deployment ``prefix``.

    The streams must exist (:func:`~openticket.adapters.nats.streams.ensure_streams`);
    ``timeout`` is the seconds to wait for each acknowledgement.
    """

    def __init__(
        self,
        js: JetStreamContext,
        *,
        prefix: str = "",
        codec: EventCodec | None = None,
        timeout: float = 5.0,
        client: Client | None = None,
        settled: SettledHere | None = None,
    ) -> None:
        if timeout <= 0:
            raise ValueError("the acknowledgement timeout must be positive")
        stream_name("", prefix)  # refuses a prefix that cannot name streams and subjects
        self._js = js
        self._prefix = prefix
        self._codec = codec or EventCodec()
        self._timeout = timeout
        self._client = client
        self._settled = settled
        """Which roles ran an event here already (see "Steps already taken")."""
        """The core client, for windows of plain messages (:meth:`publish_window`)."""
        self.duplicates = 0
        """Events the server acknowledged as already stored (repeats within the window)."""

    @property
    def prefix(self) -> str:
        """The deployment prefix of the streams and subjects published to."""
        return self._prefix

    async def publish(self, events: Sequence[DomainEvent]) -> None:
        """Publish ``events`` in order, each once its predecessor is stored.

        Raises ``AdapterUnavailable`` at the first event JetStream does not acknowledge
        (the ones before it are stored, the ones after it are not sent).
        """
        correlation = correlation_id.get()
        settled = self._settled
        for event in events:
            subject, body, headers = encode(
                event, correlation, prefix=self._prefix, codec=self._codec
            )
            if settled is not None and (roles := settled.take(event.event_id)):
                headers[SETTLED_BY_HEADER] = ",".join(roles)
            stream = stream_name(route_of(event).stream, self._prefix)
            if not tracing.enabled():
                await self._store(event, subject, body, stream, headers)
                continue
            with tracing.span(
                f"publish {event.event_type}",
                tracing.SpanKind.PRODUCER,
                attributes={
                    "messaging.system": "nats",
                    "messaging.destination.name": subject,
                    "messaging.message.id": str(event.event_id),
                },
            ):
                tracing.inject(headers)  # the consumer's span is this one's child
                await self._store(event, subject, body, stream, headers)

    async def _store(
        self, event: DomainEvent, subject: str, body: bytes, stream: str, headers: dict[str, str]
    ) -> None:
        """Publish one event's message and wait until its stream stored it."""
        try:
            ack = await self._js.publish(
                subject, body, timeout=self._timeout, stream=stream, headers=headers
            )
        except (nats.errors.Error, OSError) as e:
            raise AdapterUnavailable(
                f"JetStream did not store {event.event_type} {event.event_id}"
                f" on {subject}: {e!r}"
            ) from e
        if ack.duplicate:
            self.duplicates += 1

    async def publish_window(self, events: Sequence[tuple[DomainEvent, str | None]]) -> None:
        """Publish ``events`` (each with its correlation id) in order; the last acknowledged.

        All but the last go as plain messages, one after the other without waiting, and
        the stream stores them as it stores any message on its subjects; the last is
        published with an acknowledgement. The server handles one connection's
        messages in order, so that acknowledgement says the window reached the stream.
        Raises ``AdapterUnavailable`` if it does not come within the timeout: send the
        window again, and what was stored is dropped as a repeat (``Nats-Msg-Id``).
        Needs the ``client`` the publisher was made with.
        """
        if not events:
            return
        client = self._client
        if client is None:
            raise ValueError("publish_window needs the NATS client (NatsEventPublisher(client=))")
        prefix, codec = self._prefix, self._codec
        *sent, (last, last_correlation) = events
        try:
            for n, (event, correlation) in enumerate(sent, 1):
                subject, body, headers = encode(event, correlation, prefix=prefix, codec=codec)
                headers[Header.EXPECTED_STREAM] = stream_name(route_of(event).stream, prefix)
                await client.publish(subject, body, headers=headers)
                if not n % YIELD_EVERY:  # let the loop answer requests meanwhile
                    await asyncio.sleep(0)
            subject, body, headers = encode(last, last_correlation, prefix=prefix, codec=codec)
            ack = await self._js.publish(
                subject,
                body,
                timeout=self._timeout,
                stream=stream_name(route_of(last).stream, prefix),
                headers=headers,
            )
        except (nats.errors.Error, OSError) as e:
            raise AdapterUnavailable(
                f"JetStream did not acknowledge a window of {len(events)} events: {e!r}"
            ) from e
        if ack.duplicate:
            self.duplicates += 1
