"""The waiting-room store: a fair queue in front of a session's sale.

Buyers of a session with ``queue_enabled`` join its queue, watch their place, and are
admitted a few at a time (``admit_next``), in queue order. Who joins before the sale
opens enters the *pre-queue*: the store draws them a secret random ticket, and the
pre-queue stands ahead of everyone who comes later, in ticket order, so refreshing at
09:59:59.9 gives no advantage over arriving at 09:30. Who joins later queues first
come, first served behind the pre-queue. Admission is what entitles a buyer to order
(the API turns it into an admission token); it runs out after the store's admission
TTL, so a buyer who was let in but never bought does not keep a slot of the sale
forever.

One admitter per session lets buyers in; it finds the sessions with a queue through
``rooms`` and holds the session's admitter lease (``lease``), so that of many API
processes exactly one admits a session at a time.

The store decides places and admissions atomically, so API processes on many
machines can share one queue (the Redis adapter) without two of them admitting the
same buyer or handing out the same place.
"""

from __future__ import annotations

from datetime import datetime, timedelta
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
    ``pre_queue`` is true for a waiting buyer who joined before the sale opened (and
    so stands in the pre-queue, placed by a random ticket); false once admitted.
    Stores keep times to the whole millisecond.
    """

    position: int
    joined_at: datetime
    admitted_until: datetime | None = None
    pre_queue: bool = False

    @property
    def admitted(self) -> bool:
        """Whether the buyer has been let in (and the admission had not run out when read)."""
        return self.admitted_until is not None


@runtime_checkable
class WaitingRoomStore(Protocol):
    """The queues of every session's waiting room, and who has been admitted.

    Rules every adapter keeps (``openticket.testing.contracts.WaitingRoomStoreContract``
    checks them):

    - Places are ranks in one order; no two waiting buyers share a place.
    - The pre-queue: a buyer who is not in the room and joins while the store's clock
      is before the join's ``pre_queue_until`` gets a ticket, a float in [0, 1) from
      the ``draw`` source given to the adapter's constructor. Pre-queue buyers stand
      ahead of every buyer who joined without one, and among themselves in ticket
      order: uniformly random, whatever the order they came in. (A store may draw a
      ticket for a join that turns out to be a repeat and throw it away.)
    - Behind the pre-queue, places are first come, first served: a buyer who joined
      earlier is always ahead of one who joined later, across processes.
    - Joining is idempotent: joining again keeps the original place, ticket,
      ``pre_queue`` and ``joined_at``; an admitted buyer who joins again stays
      admitted. Behind the pre-queue a place never moves back; it moves up when
      someone ahead is admitted or leaves. While the pre-queue is open, places move
      back as pre-queue buyers with lower tickets arrive: the caller shows no
      positions until the pre-queue closes.
    - ``admit_next`` is atomic: concurrent calls never admit the same buyer twice and
      never skip a waiting buyer.
    - An admission lasts the store's admission TTL from the moment of ``admit_next``
      (``admission_ttl``, given to the adapter's constructor). After that the buyer
      is neither admitted nor waiting: a new join puts them at the back of the queue.
    - Sessions are independent of each other.
    - The admitter lease of a session has one holder at a time, across processes:
      ``lease`` answers true to one holder until its TTL runs out by the store's
      clock or it is released; its holder may renew it.

    Every method raises ``AdapterUnavailable`` when the backing service cannot be
    reached. Then the call's outcome is unknown: a join or an admission may have
    happened, and ``position`` tells the truth once the service is back.
    """

    async def join(
        self, session_id: SessionId, user_id: UserId, *, pre_queue_until: datetime | None = None
    ) -> QueueTicket:
        """Put the buyer in the session's queue, or answer where they stand.

        A new buyer goes to the back of the queue, or into the pre-queue (at the place
        of a freshly drawn ticket) if the store's clock is before ``pre_queue_until``.
        ``pre_queue_until`` must be timezone-aware (``ValueError``).
        """
        ...

    async def position(self, session_id: SessionId, user_id: UserId) -> QueueTicket | None:
        """Where the buyer stands; ``None`` if neither waiting nor (still) admitted."""
        ...

    async def admit_next(self, session_id: SessionId, count: int) -> list[UserId]:
        """Admit the first ``count`` waiting buyers, in queue order; who was admitted.

        The pre-queue goes first, in ticket order; then the others in join order.

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

    async def admitted_count(self, session_id: SessionId) -> int:
        """How many of the session's admissions still run (not run out, not removed)."""
        ...

    async def rooms(self) -> list[SessionId]:
        """The sessions where somebody waits, in no particular order: what the admitter walks.

        May also name a session whose queue has just emptied; a session nobody has
        joined for the store's idle time (or whose room was dropped) is forgotten.
        """
        ...

    async def lease(self, session_id: SessionId, holder: str, ttl: timedelta) -> bool:
        """Take or renew the session's admitter lease for ``holder``; whether it is theirs.

        True when ``holder`` now holds the lease until the store's now + ``ttl``: it
        was free, had run out, or was already theirs (renewed). False, and nothing
        changed, while another holder's lease runs. ``holder`` must not be empty and
        ``ttl`` must be at least a millisecond (``ValueError``).
        """
        ...

    async def release_lease(self, session_id: SessionId, holder: str) -> None:
        """Give up the session's admitter lease if ``holder`` holds it; otherwise nothing."""
        ...
