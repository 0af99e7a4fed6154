"""The waiting-room store in process memory: for the embedded profile, tests and benchmarks."""

from __future__ import annotations

import bisect
import heapq
import itertools
from collections import OrderedDict
from datetime import datetime, timedelta

import attrs

from openticket.application.ports.clock import Clock
from openticket.application.ports.waiting_room import QueueTicket
from openticket.domain.shared import SessionId, UserId

DEFAULT_ADMISSION_TTL = timedelta(minutes=10)
"""How long an admission lasts unless the store is told otherwise (api.md: 600 s)."""

_MILLISECOND = timedelta(milliseconds=1)


def _whole_milliseconds(when: datetime) -> datetime:
    """``when`` cut down to the whole millisecond, the precision every store keeps."""
    return when.replace(microsecond=when.microsecond // 1000 * 1000)


def _whole_ttl(ttl: timedelta) -> timedelta:
    """``ttl`` cut down to whole milliseconds; refuses a TTL under one millisecond."""
    whole = ttl // _MILLISECOND * _MILLISECOND
    if whole <= timedelta(0):
        raise ValueError(f"admission_ttl must be at least one millisecond, not {ttl}")
    return whole


@attrs.define
class _Waiting:
    sequence: int
    joined_at: datetime


@attrs.define
class _Admitted:
    joined_at: datetime
    until: datetime


@attrs.define
class _Room:
    """One session's waiting room."""

    waiting: OrderedDict[UserId, _Waiting] = attrs.field(factory=OrderedDict)
    """Waiting buyers in join order (an ``OrderedDict`` pops its front in O(1))."""
    sequences: list[int] = attrs.field(factory=list)
    """The join sequence numbers of ``waiting``, ascending: a place is a bisection."""
    admitted: dict[UserId, _Admitted] = attrs.field(factory=dict)

    def __bool__(self) -> bool:
        return bool(self.waiting) or bool(self.admitted)

    def place(self, entry: _Waiting) -> int:
        return bisect.bisect_left(self.sequences, entry.sequence) + 1

    def leave_queue(self, user_id: UserId) -> _Waiting | None:
        entry = self.waiting.pop(user_id, None)
        if entry is not None:
            del self.sequences[bisect.bisect_left(self.sequences, entry.sequence)]
        return entry


class MemoryWaitingRoomStore:
    """A ``WaitingRoomStore`` in dicts. Atomic because no method awaits.

    Admissions run out by the injected clock; run-out admissions are purged as time
    passes, and a session's room is dropped once nobody waits in it or is admitted.
    """

    def __init__(self, clock: Clock, *, admission_ttl: timedelta = DEFAULT_ADMISSION_TTL) -> None:
        self._clock = clock
        self._admission_ttl = _whole_ttl(admission_ttl)
        self._rooms: dict[SessionId, _Room] = {}
        self._sequence = itertools.count(1)
        self._expiry: list[tuple[datetime, int, SessionId, UserId]] = []
        """Admissions by when they run out (ties broken by a counter, never by ids)."""
        self._tiebreak = itertools.count()

    @property
    def admission_ttl(self) -> timedelta:
        """How long an admission lasts (whole milliseconds)."""
        return self._admission_ttl

    async def join(self, session_id: SessionId, user_id: UserId) -> QueueTicket:
        """Put the buyer at the back of the session's queue, or answer where they stand."""
        now = self._now()
        room = self._rooms.get(session_id)
        if room is None:
            room = self._rooms[session_id] = _Room()
        admitted = room.admitted.get(user_id)
        if admitted is not None:
            return QueueTicket(
                position=0, joined_at=admitted.joined_at, admitted_until=admitted.until
            )
        entry = room.waiting.get(user_id)
        if entry is None:
            entry = room.waiting[user_id] = _Waiting(next(self._sequence), now)
            room.sequences.append(entry.sequence)
        return QueueTicket(position=room.place(entry), joined_at=entry.joined_at)

    async def position(self, session_id: SessionId, user_id: UserId) -> QueueTicket | None:
        """Where the buyer stands; ``None`` if neither waiting nor (still) admitted."""
        self._now()
        room = self._rooms.get(session_id)
        if room is None:
            return None
        admitted = room.admitted.get(user_id)
        if admitted is not None:
            return QueueTicket(
                position=0, joined_at=admitted.joined_at, admitted_until=admitted.until
            )
        entry = room.waiting.get(user_id)
        if entry is None:
            return None
        return QueueTicket(position=room.place(entry), joined_at=entry.joined_at)

    async def admit_next(self, session_id: SessionId, count: int) -> list[UserId]:
        """Admit the first ``count`` waiting buyers, in join order; who was admitted."""
        if count < 0:
            raise ValueError(f"count must not be negative, not {count}")
        now = self._now()
        room = self._rooms.get(session_id)
        if room is None or count == 0:
            return []
        until = now + self._admission_ttl
        chosen: list[UserId] = []
        while room.waiting and len(chosen) < count:
            user_id, entry = room.waiting.popitem(last=False)
            room.admitted[user_id] = _Admitted(entry.joined_at, until)
            heapq.heappush(self._expiry, (until, next(self._tiebreak), session_id, user_id))
            chosen.append(user_id)
        del room.sequences[: len(chosen)]
        return chosen

    async def is_admitted(self, session_id: SessionId, user_id: UserId) -> bool:
        """Whether the buyer has been admitted to the session and the admission still runs."""
        self._now()
        room = self._rooms.get(session_id)
        return room is not None and user_id in room.admitted

    async def remove(self, session_id: SessionId, user_id: UserId) -> bool:
        """Take the buyer out: leave the queue or give up the admission; whether they were in."""
        self._now()
        room = self._rooms.get(session_id)
        if room is None:
            return False
        found = room.leave_queue(user_id) is not None or (
            room.admitted.pop(user_id, None) is not None
        )
        if not room:
            del self._rooms[session_id]
        return found

    async def length(self, session_id: SessionId) -> int:
        """How many buyers are waiting in the session's queue (admitted ones not counted)."""
        room = self._rooms.get(session_id)
        return 0 if room is None else len(room.waiting)

    def _now(self) -> datetime:
        """The current time (to the millisecond), after purging admissions that ran out."""
        now = _whole_milliseconds(self._clock.now())
        queue, rooms = self._expiry, self._rooms
        while queue and queue[0][0] <= now:
            _, _, session_id, user_id = heapq.heappop(queue)
            room = rooms.get(session_id)
            if room is None:
                continue
            admitted = room.admitted.get(user_id)
            # the buyer may have been removed and admitted again since: only a run-out
            # admission goes
            if admitted is not None and admitted.until <= now:
                del room.admitted[user_id]
                if not room:
                    del rooms[session_id]
        return now
