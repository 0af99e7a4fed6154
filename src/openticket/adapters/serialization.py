"""Domain events to JSON-ready dicts and back: what the outbox and the event streams carry.

Every ``DomainEvent`` subclass is known by its class name (``event_type``). Values map
to JSON without loss: UUIDs and decimals as strings, times as RFC 3339 with their offset
(``Z`` for UTC), tuples and frozensets as lists, ``Money`` as
``{"amount": "12.50", "currency": "EUR"}``.

msgspec does both directions, from the attrs classes themselves: a seat event costs
about 2 µs to encode and 3 µs to decode here, against 8.5 and 13 µs with cattrs, and
every seat decision of a flash sale is encoded once and decoded by every API process
(``docs/performance.md``). Times written as ``+00:00`` by earlier releases read the same.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from typing import Any

import msgspec

# Imported for their event classes: the registry is every subclass loaded.
import openticket.application.saga
import openticket.domain.ordering
import openticket.domain.payment
import openticket.domain.seating
import openticket.domain.ticketing  # noqa: F401
from openticket.domain.shared import DomainEvent


class UnknownEventType(ValueError):
    """A stored or received event whose type this process does not know."""


def _subclasses(cls: type[DomainEvent]) -> Iterator[type[DomainEvent]]:
    for sub in cls.__subclasses__():
        # attrs replaces a slotted class by a new one; the discarded original may linger
        if getattr(sys.modules.get(sub.__module__), sub.__qualname__, None) is sub:
            yield sub
        yield from _subclasses(sub)


_to_json = msgspec.json.Encoder()
_to_json_values = msgspec.json.Decoder()


class EventCodec:
    """Encodes domain events to ``(event_type, payload)`` and decodes them back."""

    def __init__(self) -> None:
        self._types: dict[str, type[DomainEvent]] = {}
        for cls in _subclasses(DomainEvent):
            known = self._types.setdefault(cls.__name__, cls)
            if known is not cls:
                raise TypeError(f"two event classes are named {cls.__name__}")

    @property
    def event_types(self) -> Mapping[str, type[DomainEvent]]:
        """Every event class this codec knows, by name."""
        return self._types

    def encode(self, event: DomainEvent) -> tuple[str, dict[str, Any]]:
        """The event's type name and its fields as JSON-ready values."""
        # to JSON and back: plain JSON values (lists, not tuples), faster than to_builtins
        payload: dict[str, Any] = _to_json_values.decode(_to_json.encode(event))
        return event.event_type, payload

    def decode(self, event_type: str, payload: Mapping[str, Any]) -> DomainEvent:
        """The event of ``event_type`` with the fields in ``payload``."""
        cls = self._types.get(event_type)
        if cls is None:
            raise UnknownEventType(f"unknown event type {event_type!r}")
        try:
            return msgspec.convert(payload, cls, strict=False)
        except (msgspec.ValidationError, ValueError, TypeError, KeyError) as e:
            raise UnknownEventType(f"{event_type} payload does not fit its class: {e}") from e
