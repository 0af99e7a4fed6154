"""Where time, ids and secret codes come from. The domain never makes its own."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol, runtime_checkable
from uuid import UUID


@runtime_checkable
class Clock(Protocol):
    """The current time, timezone-aware UTC. Tests use a clock they can move."""

    def now(self) -> datetime:
        """The current moment."""
        ...


@runtime_checkable
class IdGenerator(Protocol):
    """Fresh unique ids for aggregates, holds and events."""

    def new_id(self) -> UUID:
        """A new id no one has seen."""
        ...


@runtime_checkable
class TicketCodeGenerator(Protocol):
    """Unguessable codes printed as a ticket's QR code."""

    def new_code(self) -> str:
        """A new code of at least 16 URL-safe characters that no one can predict."""
        ...
