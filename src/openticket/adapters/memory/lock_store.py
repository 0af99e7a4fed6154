"""The seat lock store in process memory: for the embedded profile, tests and benchmarks."""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from datetime import datetime

import attrs

from openticket.application.ports.clock import Clock
from openticket.application.ports.lock_store import (
    AcquireHold,
    Done,
    ExtendHold,
    Granted,
    LockOp,
    LockResult,
    MarkSold,
    Refused,
    ReleaseHold,
    ReleaseSold,
    RestoreHold,
)
from openticket.domain.seating import InventorySnapshot, SeatHold
from openticket.domain.shared import AreaId, HoldId, OrderId, SeatId, SessionId


class MemoryLockStore:
    """A ``LockStore`` in a dict. Atomic because nothing in ``execute`` awaits.

    Expiry is read from the injected clock; locks past their expiry are purged as
    time passes, so a long-running process does not keep every hold it ever saw.
    """

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._locks: dict[SessionId, dict[SeatId, SeatHold]] = {}
        """Locks per session, then per seat (one UUID hash per operation, not per seat)."""
        self._sold: dict[SessionId, dict[SeatId, tuple[OrderId, AreaId]]] = {}
        """Sold seats per session: the order and the area the ``MarkSold`` named."""
        self._expiry: list[tuple[datetime, int, SessionId, tuple[SeatId, ...]]] = []
        self._token = 0

    async def execute(self, ops: Sequence[LockOp]) -> list[LockResult]:
        """Apply ``ops`` in order; one result per op."""
        now = self._clock.now()
        self._purge(now)
        results: list[LockResult] = []
        append = results.append
        for op in ops:
            if type(op) is AcquireHold:
                append(self._acquire(op, now))
            elif type(op) is ReleaseHold:
                append(self._release(op))
            elif type(op) is ExtendHold:
                append(self._extend(op, now))
            elif type(op) is MarkSold:
                append(self._mark_sold(op, now))
            elif type(op) is ReleaseSold:
                append(self._release_sold(op))
            elif type(op) is RestoreHold:
                append(self._restore(op.hold, now))
            else:
                raise TypeError(f"not a lock operation: {op!r}")
        return results

    async def load(self, session_id: SessionId, area_id: AreaId) -> InventorySnapshot:
        """Live holds and sold seats of one session's area, and the last token issued."""
        now = self._clock.now()
        holds: dict[HoldId, SeatHold] = {}
        for hold in self._locks.get(session_id, {}).values():
            if hold.area_id == area_id and now < hold.expires_at:
                holds[hold.hold_id] = hold
        sold = {
            seat: order
            for seat, (order, area) in self._sold.get(session_id, {}).items()
            if area == area_id
        }
        return InventorySnapshot(
            holds=tuple(holds.values()), sold=sold, last_fencing_token=self._token
        )

    def forget_everything(self) -> None:
        """Lose every lock, sale and the token counter.

        As a Redis restarted without persistence would: for tests and simulations of it.
        """
        self._locks.clear()
        self._sold.clear()
        self._expiry.clear()
        self._token = 0

    # --- one operation each ----------------------------------------------------------

    def _acquire(self, op: AcquireHold, now: datetime) -> LockResult:
        session = op.session_id
        sold = self._sold.get(session, ())
        locks = self._locks.get(session)
        if locks is None:
            locks = self._locks[session] = {}
        taken = tuple(
            s
            for s in op.seat_ids
            if s in sold or ((h := locks.get(s)) is not None and now < h.expires_at)
        )
        if taken:
            return Refused(taken)
        self._token = max(self._token, op.after_token) + 1
        hold = SeatHold(
            hold_id=op.hold_id,
            session_id=session,
            area_id=op.area_id,
            holder_id=op.holder_id,
            order_id=op.order_id,
            seat_ids=op.seat_ids,
            fencing_token=self._token,
            expires_at=op.expires_at,
        )
        for seat in op.seat_ids:
            locks[seat] = hold
        heapq.heappush(self._expiry, (op.expires_at, self._token, session, op.seat_ids))
        return Granted(hold)

    def _release(self, op: ReleaseHold) -> LockResult:
        released = []
        locks = self._locks.get(op.session_id, {})
        for seat in op.seat_ids:
            hold = locks.get(seat)
            if hold is not None and hold.hold_id == op.hold_id:
                del locks[seat]
                released.append(seat)
        return Done(tuple(released))

    def _owned(
        self, session: SessionId, hold_id: HoldId, seats: tuple[SeatId, ...], now: datetime
    ) -> tuple[SeatId, ...]:
        """The seats of ``seats`` that ``hold_id`` does *not* hold live."""
        locks = self._locks.get(session, {})
        return tuple(
            s
            for s in seats
            if (h := locks.get(s)) is None or h.hold_id != hold_id or not now < h.expires_at
        )

    def _extend(self, op: ExtendHold, now: datetime) -> LockResult:
        missing = self._owned(op.session_id, op.hold_id, op.seat_ids, now)
        if missing:
            return Refused(missing)
        locks = self._locks[op.session_id]
        extended = attrs.evolve(locks[op.seat_ids[0]], expires_at=op.expires_at)
        for seat in op.seat_ids:
            locks[seat] = extended
        heapq.heappush(
            self._expiry, (op.expires_at, extended.fencing_token, op.session_id, op.seat_ids)
        )
        return Done(op.seat_ids)

    def _mark_sold(self, op: MarkSold, now: datetime) -> LockResult:
        missing = self._owned(op.session_id, op.hold_id, op.seat_ids, now)
        locks = self._locks.get(op.session_id, {})
        stale = tuple(
            s
            for s in op.seat_ids
            if s not in missing and locks[s].fencing_token != op.fencing_token
        )
        if missing or stale:
            return Refused(missing + stale)
        sold = self._sold.setdefault(op.session_id, {})
        area = op.area_id
        for seat in op.seat_ids:
            sold[seat] = (locks.pop(seat).order_id, area)
        return Done(op.seat_ids)

    def _restore(self, hold: SeatHold, now: datetime) -> LockResult:
        session = hold.session_id
        sold = self._sold.get(session, ())
        locks = self._locks.setdefault(session, {})
        in_way = tuple(
            s
            for s in hold.seat_ids
            if s in sold
            or (
                (h := locks.get(s)) is not None
                and now < h.expires_at
                and (h.hold_id != hold.hold_id or h.fencing_token != hold.fencing_token)
            )
        )
        if in_way:
            return Refused(in_way)
        self._token = max(self._token, hold.fencing_token)
        if now < hold.expires_at:
            for seat in hold.seat_ids:
                locks[seat] = hold
            heapq.heappush(
                self._expiry, (hold.expires_at, hold.fencing_token, session, hold.seat_ids)
            )
        return Done(hold.seat_ids)

    def _release_sold(self, op: ReleaseSold) -> LockResult:
        sold = self._sold.get(op.session_id, {})
        released = tuple(s for s in op.seat_ids if s in sold)
        for seat in released:
            del sold[seat]
        return Done(released)

    def _purge(self, now: datetime) -> None:
        queue, by_session = self._expiry, self._locks
        while queue and queue[0][0] <= now:
            _, _, session, seats = heapq.heappop(queue)
            locks = by_session.get(session, {})
            for seat in seats:
                hold = locks.get(seat)
                if hold is not None and hold.expires_at <= now:
                    del locks[seat]
