"""The seat lock store: where seat holds live outside a partition actor's memory.

The actor decides holds in memory and writes them through to the store in one
batched call per drained queue. The store is a speed-up and a fence between actors
that briefly own the same partition (failover): each operation is atomic in the
store, and a hold's fencing token comes from the store and only ever grows. The
database's unique ticket per seat stays the final word on who owns a seat.

Every operation names its partition: the session and the area (``session_id`` and
``area_id``; a ``RestoreHold`` takes both from its hold). A store files a lock, a sold
mark and its indexes under the area the op names and never works the area out of a seat
id: to the store a seat id is an opaque name, whatever its form.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol, runtime_checkable

import attrs

from openticket.domain.seating import InventorySnapshot, SeatHold
from openticket.domain.shared import AreaId, HoldId, OrderId, SeatId, SessionId, UserId


@attrs.frozen(kw_only=True)
class AcquireHold:
    """Lock every seat of ``seat_ids`` for this hold until ``expires_at``, or none.

    ``after_token`` is the newest token the caller has seen from this store for the
    session: the token granted is greater. A store that lost its state (a Redis
    restarted without persistence) starts counting again from there instead of from
    one, so its tokens keep growing for everyone who saw the old ones.
    """

    hold_id: HoldId
    session_id: SessionId
    area_id: AreaId
    holder_id: UserId
    order_id: OrderId
    seat_ids: tuple[SeatId, ...]
    expires_at: datetime
    after_token: int = 0


@attrs.frozen(kw_only=True)
class ReleaseHold:
    """Unlock the seats that this hold still locks (compare-and-delete by hold id)."""

    session_id: SessionId
    area_id: AreaId
    hold_id: HoldId
    seat_ids: tuple[SeatId, ...]


@attrs.frozen(kw_only=True)
class ExtendHold:
    """Move the hold's expiry to ``expires_at`` if it still locks every one of its seats."""

    session_id: SessionId
    area_id: AreaId
    hold_id: HoldId
    seat_ids: tuple[SeatId, ...]
    expires_at: datetime


@attrs.frozen(kw_only=True)
class MarkSold:
    """Turn the hold's live locks into permanent sold marks; the token must match."""

    session_id: SessionId
    area_id: AreaId
    hold_id: HoldId
    seat_ids: tuple[SeatId, ...]
    fencing_token: int


@attrs.frozen(kw_only=True)
class ReleaseSold:
    """Remove the sold marks of refunded seats so they can be held again."""

    session_id: SessionId
    area_id: AreaId
    seat_ids: tuple[SeatId, ...]


@attrs.frozen(kw_only=True)
class RestoreHold:
    """Lock the seats of a hold the store lost, as they were: same hold, token, expiry.

    The partition's owner knows the hold is live (it granted it, the buyer holds it);
    the store forgot it (a restart without persistence, a flush). Applied only where the
    store has nothing in the way: a seat locked live by another hold or token, or sold,
    refuses the whole restore and nothing changes. Seats this very hold already locks
    count as restored (a retry). The store's token counter is raised to at least the
    hold's token, so later holds still get larger ones.
    """

    hold: SeatHold

    @property
    def session_id(self) -> SessionId:
        """The hold's session (every op names its session)."""
        return self.hold.session_id

    @property
    def area_id(self) -> AreaId:
        """The hold's area (every op names its area)."""
        return self.hold.area_id

    @property
    def seat_ids(self) -> tuple[SeatId, ...]:
        """The hold's seats."""
        return self.hold.seat_ids


LockOp = AcquireHold | ReleaseHold | ExtendHold | MarkSold | ReleaseSold | RestoreHold
"""One step of a batch sent to the lock store."""


@attrs.frozen
class Granted:
    """An ``AcquireHold`` succeeded: the hold, with the fencing token the store issued."""

    hold: SeatHold


@attrs.frozen
class Refused:
    """The operation changed nothing; ``seat_ids`` are the seats that stood in the way."""

    seat_ids: tuple[SeatId, ...]


@attrs.frozen
class Done:
    """The operation was applied to ``seat_ids`` (for a release: the seats it unlocked)."""

    seat_ids: tuple[SeatId, ...]


LockResult = Granted | Refused | Done
"""The answer to one ``LockOp``; an ``AcquireHold`` gets ``Granted`` or ``Refused``, a
``RestoreHold`` ``Done`` or ``Refused``."""


@runtime_checkable
class LockStore(Protocol):
    """Atomic seat locks with fencing tokens, written in batches.

    Rules every adapter keeps (``openticket.testing.contracts.LockStoreContract`` checks them):

    - ``execute`` applies ``ops`` in order and answers one result per op; each op is
      atomic and sees the effect of the ops before it in the same batch.
    - A seat has at most one live lock. A lock past its ``expires_at`` is gone.
    - Fencing tokens of granted holds strictly increase, across batches and processes,
      and exceed the ``after_token`` of the acquire and the token of every restored hold.
    - Only the matching hold id releases, extends or sells a lock; a stale or expired
      holder's call changes nothing of the next holder's lock.
    - A sold seat is never acquired again until ``ReleaseSold``.

    Raises ``AdapterUnavailable`` when the backing service cannot be reached; then no
    result of the batch is known and the caller must treat every op as undecided.
    """

    async def execute(self, ops: Sequence[LockOp]) -> list[LockResult]:
        """Apply ``ops`` in order; one result per op."""
        ...

    async def load(self, session_id: SessionId, area_id: AreaId) -> InventorySnapshot:
        """The partition's live holds, sold seats and highest token, for an actor's rebuild."""
        ...
