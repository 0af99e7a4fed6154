"""Domain events to JSON-ready dicts and back: what the outbox and the event streams carry.

Every ``DomainEvent`` subclass is known by its class name (``event_type``). Values map
to JSON without loss: UUIDs and decimals as strings, times as ISO 8601 with offset,
tuples and frozensets as lists, ``Money`` as ``{"amount": "12.50", "currency": "EUR"}``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import cattrs

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


def _converter() -> cattrs.Converter:
    converter = cattrs.Converter()
    converter.register_unstructure_hook(UUID, str)
    converter.register_structure_hook(UUID, lambda value, _: UUID(value))
    converter.register_unstructure_hook(datetime, datetime.isoformat)
    converter.register_structure_hook(datetime, lambda value, _: datetime.fromisoformat(value))
    converter.register_unstructure_hook(Decimal, str)
    converter.register_structure_hook(Decimal, lambda value, _: Decimal(value))
    return converter


class EventCodec:
    """Encodes domain events to ``(event_type, payload)`` and decodes them back."""

    def __init__(self) -> None:
        self._converter = _converter()
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
        payload: dict[str, Any] = self._converter.unstructure(event)
        return event.event_type, payload

    def decode(self, event_type: str, payload: Mapping[str, Any]) -> DomainEvent:
        """The event of ``event_type`` with the fields in ``payload``."""
        cls = self._types.get(event_type)
        if cls is None:
            raise UnknownEventType(f"unknown event type {event_type!r}")
        try:
            return self._converter.structure(dict(payload), cls)
        except (cattrs.BaseValidationError, ValueError, TypeError, KeyError) as e:
            raise UnknownEventType(f"{event_type} payload does not fit its class: {e}") from e
