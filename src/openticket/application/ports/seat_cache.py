"""The seat-status cache: what every seat of a session shows now, readable by any process.

The partition actors that decide seat holds live in some process; the seat map
(``GET /api/sessions/{id}/seats``, the WebSocket snapshot) is served by every API
process. The cache is kept current from seat status changes and answers "what is
the status of each seat of this session" in one read.

Only seats whose status is not *available* need to be stored: a seat the cache does
not mention is available (never changed, or changed back). A cache starts empty (or is
flushed): it answers for an area only once that area's full state was written and the
area marked complete (an actor does so when it loads the partition); for the other
areas the reader asks the actors.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

from openticket.application.ports.messaging import SeatStatusChanged
from openticket.domain.seating import SeatStatus
from openticket.domain.shared import AreaId, SeatId, SessionId


@runtime_checkable
class SeatStatusCache(Protocol):
    """Seat statuses per session, kept current from ``SeatStatusChanged``.

    Writes are applied in the order given; the last write for a seat wins. The cache
    does not reorder by ``at``: whoever feeds it applies a seat's changes in the order
    they happened (one partition's changes are produced in order). Raises
    ``AdapterUnavailable`` when the backing store cannot be reached.
    """

    async def apply(self, changes: Sequence[SeatStatusChanged]) -> None:
        """Record ``changes`` in order (of any sessions); the last one per seat wins."""
        ...

    async def statuses(self, session_id: SessionId) -> Mapping[SeatId, SeatStatus]:
        """The status of every seat of the session that is not available.

        A seat that is absent is available. The mapping is a snapshot: later changes
        do not alter it.
        """
        ...

    async def mark_complete(self, session_id: SessionId, area_id: AreaId) -> None:
        """Say that the cache now holds the whole state of one area of the session."""
        ...

    async def complete_areas(self, session_id: SessionId) -> frozenset[AreaId]:
        """The areas of the session whose whole state the cache holds."""
        ...

    async def clear(self, session_id: SessionId) -> None:
        """Forget every seat and complete area of the session."""
        ...
