"""The waiting-room store in process memory: for the embedded profile, tests and benchmarks."""

from __future__ import annotations

import bisect
import heapq
import itertools
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta

import attrs

from openticket.adapters.waiting_room_input import (
    check_holder,
    check_pre_queue_until,
    checked_ticket,
)
from openticket.application.ports.clock import Clock
from openticket.application.ports.waiting_room import QueueTicket
from openticket.domain.shared import SessionId, UserId

DEFAULT_ADMISSION_TTL = timedelta(minutes=10)
"""How long an admission lasts unless the store is told otherwise (api.md: 600 s)."""

_MILLISECOND = timedelta(milliseconds=1)
_SYSTEM_RANDOM = secrets.SystemRandom()


def _whole_milliseconds(when: datetime) -> datetime:
    """``when`` cut down to the whole millisecond, the precision every store keeps."""
    return when.replace(microsecond=when.microsecond // 1000 * 1000)


def _whole_ttl(ttl: timedelta, name: str = "admission_ttl") -> timedelta:
    """``ttl`` cut down to whole milliseconds; refuses a TTL under one millisecond."""
    whole = ttl // _MILLISECOND * _MILLISECOND
    if whole <= timedelta(0):
        raise ValueError(f"{name} must be at least one millisecond, not {ttl}")
    return whole


_Place = tuple[float, UserId]
"""Where a waiting buyer stands: the score (pre-queue ticket in [0, 1), or join
sequence from 1), ties broken by user id as Redis breaks ties of a sorted set (the
text of a UUID sorts as its number)."""


@attrs.define
class _Waiting:
    place: _Place
    joined_at: datetime
    pre_queue: bool


@attrs.define
class _Admitted:
    joined_at: datetime
    until: datetime


@attrs.define
class _Room:
    """One session's waiting room."""

    waiting: dict[UserId, _Waiting] = attrs.field(factory=dict)
    order: list[_Place] = attrs.field(factory=list)
    """The places of ``waiting``, ascending: a position is a bisection. Later joiners
    append; a pre-queue ticket is inserted among the pre-queue at the front."""
    admitted: dict[UserId, _Admitted] = attrs.field(factory=dict)

    def __bool__(self) -> bool:
        return bool(self.waiting) or bool(self.admitted)

    def position(self, entry: _Waiting) -> int:
        return bisect.bisect_left(self.order, entry.place) + 1

    def enter(self, user_id: UserId, entry: _Waiting) -> None:
        self.waiting[user_id] = entry
        bisect.insort(self.order, entry.place)

    def leave_queue(self, user_id: UserId) -> _Waiting | None:
        entry = self.waiting.pop(user_id, None)
        if entry is not None:
            del self.order[bisect.bisect_left(self.order, entry.place)]
        return entry

    def ticket(self, entry: _Waiting) -> QueueTicket:
        return QueueTicket(
            position=self.position(entry), joined_at=entry.joined_at, pre_queue=entry.pre_queue
        )


@attrs.define
class _Lease:
    holder: str
    until: datetime


class MemoryWaitingRoomStore:
    """A ``WaitingRoomStore`` in dicts. Atomic because no method awaits.

    Admissions and leases run out by the injected clock; run-out admissions are purged
    as time passes, and a session's room is dropped once nobody waits in it or is
    admitted. Pre-queue tickets come from ``draw`` (default: the operating system's
    randomness; tests and simulations pass ``random.Random(seed).random``).
    """

    def __init__(
        self,
        clock: Clock,
        *,
        admission_ttl: timedelta = DEFAULT_ADMISSION_TTL,
        draw: Callable[[], float] = _SYSTEM_RANDOM.random,
    ) -> None:
        self._clock = clock
        self._admission_ttl = _whole_ttl(admission_ttl)
        self._draw = draw
        self._rooms: dict[SessionId, _Room] = {}
        self._leases: dict[SessionId, _Lease] = {}
        self._sequence = itertools.count(1)
        self._expiry: list[tuple[datetime, int, SessionId, UserId]] = []
        """Admissions by when they run out (ties broken by a counter, never by ids)."""
        self._tiebreak = itertools.count()

    @property
    def admission_ttl(self) -> timedelta:
        """How long an admission lasts (whole milliseconds)."""
        return self._admission_ttl

    async def join(
        self, session_id: SessionId, user_id: UserId, *, pre_queue_until: datetime | None = None
    ) -> QueueTicket:
        """Put the buyer in the session's queue (or its pre-queue), or answer where they stand."""
        check_pre_queue_until(pre_queue_until)
        now = self._now()
        room = self._rooms.get(session_id) or _Room()
        admitted = room.admitted.get(user_id)
        if admitted is not None:
            return QueueTicket(
                position=0, joined_at=admitted.joined_at, admitted_until=admitted.until
            )
        entry = room.waiting.get(user_id)
        if entry is None:
            if pre_queue_until is not None and now < pre_queue_until:
                place = (checked_ticket(self._draw()), user_id)  # refused: nothing changed
                entry = _Waiting(place, now, pre_queue=True)
            else:
                entry = _Waiting((next(self._sequence), user_id), now, pre_queue=False)
            room.enter(user_id, entry)
            self._rooms[session_id] = room
        return room.ticket(entry)

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
        return room.ticket(entry)

    async def admit_next(self, session_id: SessionId, count: int) -> list[UserId]:
        """Admit the first ``count`` waiting buyers, in queue order; who was admitted."""
        if count < 0:
            raise ValueError(f"count must not be negative, not {count}")
        now = self._now()
        room = self._rooms.get(session_id)
        if room is None or count == 0:
            return []
        until = now + self._admission_ttl
        chosen = [user_id for _, user_id in room.order[:count]]
        del room.order[:count]
        for user_id in chosen:
            entry = room.waiting.pop(user_id)
            room.admitted[user_id] = _Admitted(entry.joined_at, until)
            heapq.heappush(self._expiry, (until, next(self._tiebreak), session_id, user_id))
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

    async def admitted_count(self, session_id: SessionId) -> int:
        """How many of the session's admissions still run (not run out, not removed)."""
        self._now()
        room = self._rooms.get(session_id)
        return 0 if room is None else len(room.admitted)

    async def rooms(self) -> list[SessionId]:
        """The sessions where somebody waits."""
        self._now()
        return [session_id for session_id, room in self._rooms.items() if room.waiting]

    async def lease(self, session_id: SessionId, holder: str, ttl: timedelta) -> bool:
        """Take or renew the session's admitter lease for ``holder``; whether it is theirs."""
        check_holder(holder)
        whole = _whole_ttl(ttl, "a lease ttl")
        now = self._now()
        current = self._leases.get(session_id)
        if current is not None and current.holder != holder and current.until > now:
            return False
        self._leases[session_id] = _Lease(holder, now + whole)
        return True

    async def release_lease(self, session_id: SessionId, holder: str) -> None:
        """Give up the session's admitter lease if ``holder`` holds it; otherwise nothing."""
        now = self._now()
        current = self._leases.get(session_id)
        if current is not None and (current.holder == holder or current.until <= now):
            del self._leases[session_id]

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
