"""The waiting-room store: a fair first-come queue in front of a session's sale.

Buyers of a session with ``queue_enabled`` join its queue, watch their place, and are
admitted a few at a time (``admit_next``), in the order they joined. Admission is
what entitles a buyer to order (the API turns it into an admission token); it runs
out after the store's admission TTL, so a buyer who was let in but never bought does
not keep a slot of the sale forever.

The store decides places and admissions atomically, so API processes on many
machines can share one queue (the Redis adapter) without two of them admitting the
same buyer or handing out the same place.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol, runtime_checkable

import attrs

from openticket.domain.shared import SessionId, UserId


@attrs.frozen(kw_only=True)
class QueueTicket:
    """Where one buyer stands in a session's waiting room.

    ``position`` is 1 for the first buyer still waiting, counted among those still
    waiting (admitted and departed buyers no longer count); it is 0 once admitted.
    ``joined_at`` is the time of the first join, kept through admission.
    ``admitted_until`` is when the admission runs out, or ``None`` while waiting.
    Stores keep times to the whole millisecond.
    """

    position: int
    joined_at: datetime
    admitted_until: datetime | None = None

    @property
    def admitted(self) -> bool:
        """Whether the buyer has been let in (and the admission had not run out when read)."""
        return self.admitted_until is not None


@runtime_checkable
class WaitingRoomStore(Protocol):
    """The queues of every session's waiting room, and who has been admitted.

    Rules every adapter keeps (``openticket.testing.contracts.WaitingRoomStoreContract``
    checks them):

    - Places are first come, first served: a buyer who joined earlier is always ahead
      of one who joined later, across processes; no two waiting buyers share a place.
    - Joining is idempotent: joining again keeps the original place (and ``joined_at``);
      an admitted buyer who joins again stays admitted. A place never moves back; it
      moves up when someone ahead is admitted or leaves.
    - ``admit_next`` is atomic: concurrent calls never admit the same buyer twice and
      never skip a waiting buyer.
    - An admission lasts the store's admission TTL from the moment of ``admit_next``
      (``admission_ttl``, given to the adapter's constructor). After that the buyer
      is neither admitted nor waiting: a new join puts them at the back of the queue.
    - Sessions are independent of each other.

    Every method raises ``AdapterUnavailable`` when the backing service cannot be
    reached. Then the call's outcome is unknown: a join or an admission may have
    happened, and ``position`` tells the truth once the service is back.
    """

    async def join(self, session_id: SessionId, user_id: UserId) -> QueueTicket:
        """Put the buyer at the back of the session's queue, or answer where they stand."""
        ...

    async def position(self, session_id: SessionId, user_id: UserId) -> QueueTicket | None:
        """Where the buyer stands; ``None`` if neither waiting nor (still) admitted."""
        ...

    async def admit_next(self, session_id: SessionId, count: int) -> list[UserId]:
        """Admit the first ``count`` waiting buyers, in join order; who was admitted.

        Fewer than ``count`` (or none) when fewer are waiting. ``count`` must not be
        negative (``ValueError``).
        """
        ...

    async def is_admitted(self, session_id: SessionId, user_id: UserId) -> bool:
        """Whether the buyer has been admitted to the session and the admission still runs."""
        ...

    async def remove(self, session_id: SessionId, user_id: UserId) -> bool:
        """Take the buyer out: leave the queue or give up the admission; whether they were in."""
        ...

    async def length(self, session_id: SessionId) -> int:
        """How many buyers are waiting in the session's queue (admitted ones not counted)."""
        ...
