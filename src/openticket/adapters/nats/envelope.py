"""Domain events on the wire: the JSON envelope every event stream message carries.

An envelope is ``{event_id, type, occurred_at, correlation_id, key, payload}``, for
example::

    {"event_id": "9b1d…", "type": "OrderCreated", "occurred_at": "2030-01-01T12:00:00Z",
     "correlation_id": "req-42", "key": "5c0e…", "payload": {"event_id": "9b1d…", …}}

``payload`` is the event exactly as :class:`~openticket.adapters.serialization.EventCodec`
writes it (the outbox holds the same JSON), so decoding it gives back an equal event.
The other fields are copies a consumer can route, log and skip by without decoding the
payload: ``type`` is the event's class name, ``key`` the last token of its subject (see
:mod:`.streams`), ``correlation_id`` the request that caused it (``null`` for none).

The message also carries the header ``Nats-Msg-Id`` = ``event_id``, by which JetStream
drops a repeat published within the stream's duplicate window.
"""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any, Final
from uuid import UUID

import msgspec

from openticket.adapters.nats.streams import route_of
from openticket.adapters.serialization import EventCodec
from openticket.domain.shared import DomainEvent

MSG_ID_HEADER: Final = "Nats-Msg-Id"
"""The header JetStream deduplicates by."""
SETTLED_BY_HEADER: Final = "Openticket-Settled-By"
"""The roles (comma-separated) that already ran the event in the process that committed it.

Their durable consumers acknowledge such a message without running the step again
(:class:`~openticket.application.messagebus.SettledHere`)."""


class MalformedEnvelope(ValueError):
    """A message that is not an OpenTicket event envelope (poison: terminate it).

    A well-formed envelope of an event type this release does not know raises
    ``UnknownEventType`` instead (a newer release may read it).
    """


class Envelope(msgspec.Struct, frozen=True, kw_only=True):
    """The JSON body of an event message."""

    event_id: UUID
    type: str
    occurred_at: datetime
    correlation_id: str | None
    key: str
    payload: dict[str, Any]


_encoder: Final = msgspec.json.Encoder()
_decoder: Final = msgspec.json.Decoder(Envelope)


@functools.cache
def _default_codec() -> EventCodec:
    return EventCodec()


def encode(
    event: DomainEvent,
    correlation_id: str | None,
    *,
    prefix: str = "",
    codec: EventCodec | None = None,
) -> tuple[str, bytes, dict[str, str]]:
    """The subject, body and headers of the message that carries ``event``.

    Raises ``UnroutableEvent`` for an event type without a subject.
    """
    route = route_of(event)
    event_type, payload = (codec or _default_codec()).encode(event)
    envelope = Envelope(
        event_id=event.event_id,
        type=event_type,
        occurred_at=event.occurred_at,
        correlation_id=correlation_id,
        key=route.key(event),
        payload=payload,
    )
    headers = {MSG_ID_HEADER: str(event.event_id)}
    return route.subject(event, prefix), _encoder.encode(envelope), headers


def decode(data: bytes, *, codec: EventCodec | None = None) -> tuple[DomainEvent, Envelope]:
    """The event a message body carries, and its envelope.

    Raises ``MalformedEnvelope`` for a body that is not an envelope or whose payload
    contradicts it, and ``UnknownEventType`` for an event type this release lacks (or a
    payload that does not fit its type).
    """
    try:
        envelope = _decoder.decode(data)
    except msgspec.MsgspecError as e:
        raise MalformedEnvelope(f"not an event envelope: {e}") from e
    event = (codec or _default_codec()).decode(envelope.type, envelope.payload)
    if event.event_id != envelope.event_id:
        raise MalformedEnvelope(
            f"envelope of event {envelope.event_id} carries event {event.event_id}"
        )
    return event, envelope
