"""The seat-status cache of a single process: a dict per session."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from openticket.application.ports.messaging import SeatStatusChanged
from openticket.domain.seating import SeatStatus
from openticket.domain.shared import AreaId, SeatId, SessionId


class MemorySeatStatusCache:
    """A ``SeatStatusCache`` in this process's memory.

    Like the Redis cache it stores only seats that are not available, so a session's
    entry stays as small as the number of held and sold seats.
    """

    def __init__(self) -> None:
        self._sessions: dict[SessionId, dict[SeatId, SeatStatus]] = {}
        self._complete: dict[SessionId, set[AreaId]] = {}

    async def apply(self, changes: Sequence[SeatStatusChanged]) -> None:
        """Record ``changes`` in order; the last one per seat wins."""
        for change in changes:
            if change.status is SeatStatus.AVAILABLE:
                seats = self._sessions.get(change.session_id)
                if seats is not None:
                    seats.pop(change.seat_id, None)
                    if not seats:
                        del self._sessions[change.session_id]
            else:
                self._sessions.setdefault(change.session_id, {})[change.seat_id] = change.status

    async def statuses(self, session_id: SessionId) -> Mapping[SeatId, SeatStatus]:
        """A copy of the session's non-available seats; absent seats are available."""
        return dict(self._sessions.get(session_id, {}))

    async def mark_complete(self, session_id: SessionId, area_id: AreaId) -> None:
        """Say that the cache holds the whole state of the area."""
        self._complete.setdefault(session_id, set()).add(area_id)

    async def complete_areas(self, session_id: SessionId) -> frozenset[AreaId]:
        """The areas whose whole state the cache holds."""
        return frozenset(self._complete.get(session_id, ()))

    async def clear(self, session_id: SessionId) -> None:
        """Forget every seat and complete area of the session."""
        self._sessions.pop(session_id, None)
        self._complete.pop(session_id, None)
