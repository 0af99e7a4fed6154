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

from collections.abc import Sequence

import nats.errors
from nats.js import JetStreamContext

from openticket.adapters.nats.envelope import encode
from openticket.adapters.nats.streams import route_of, stream_name
from openticket.adapters.serialization import EventCodec
from openticket.application.correlation import correlation_id
from openticket.application.ports.errors import AdapterUnavailable
from openticket.domain.shared import DomainEvent


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
    ) -> None:
        if timeout <= 0:
            raise ValueError("the acknowledgement timeout must be positive")
        stream_name("", prefix)  # refuses a prefix that cannot name streams and subjects
        self._js = js
        self._prefix = prefix
        self._codec = codec or EventCodec()
        self._timeout = timeout
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
        for event in events:
            subject, body, headers = encode(
                event, correlation, prefix=self._prefix, codec=self._codec
            )
            stream = stream_name(route_of(event).stream, self._prefix)
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
