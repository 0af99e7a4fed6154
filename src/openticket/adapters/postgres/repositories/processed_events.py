"""Which consumer handled which event, in PostgreSQL."""

from __future__ import annotations

from typing import Final, LiteralString
from uuid import UUID

from openticket.adapters.postgres.executor import Executor

_RECORD: Final[LiteralString] = (
    "INSERT INTO processed_events (consumer, event_id) VALUES (%(consumer)s, %(event_id)s)"
)
_RECORD_ONCE: Final[LiteralString] = _RECORD + " ON CONFLICT DO NOTHING RETURNING 1"
_FIND: Final[LiteralString] = (
    "SELECT 1 FROM processed_events WHERE consumer = %(consumer)s AND event_id = %(event_id)s"
)


class PostgresProcessedEventRepository:
    """Which consumer handled which event, in ``processed_events``."""

    def __init__(self, uow: Executor) -> None:
        self._uow = uow

    async def add(self, consumer: str, event_id: UUID) -> bool:
        """Record the event as handled; False if it was before (waits for a racing unit)."""
        row = await self._uow.write_returning(
            _RECORD_ONCE, {"consumer": consumer, "event_id": event_id}
        )
        return row is not None

    async def claim(self, consumer: str, event_id: UUID) -> None:
        """Record the event as handled with the unit's next statement or its commit.

        The primary key refuses a second record (``DuplicateError``, the unit rolls back);
        a racing unit's record makes this one wait for its end, as ``add`` does.
        """
        self._uow.require_active()
        self._uow.defer(_RECORD, {"consumer": consumer, "event_id": event_id})

    async def contains(self, consumer: str, event_id: UUID) -> bool:
        """Whether the consumer handled the event."""
        row = await self._uow.fetch_one(_FIND, {"consumer": consumer, "event_id": event_id})
        return row is not None
