"""The waiting-room store in Redis: one queue per session, shared by every API process.

Keys of a session (``{<session_id>}`` is a Redis Cluster hash tag, so a session's
keys live in one slot and one script may touch them all):

- ``{prefix}queue:{<session_id>}`` — sorted set of waiting user ids. A pre-queue
  buyer is scored by their ticket, a float in [0, 1) drawn in Python (a double holds
  it exactly; Redis' own Lua random is deterministic, so it is never used); a later
  joiner by their join sequence (from 1). Places are ranks: the pre-queue in ticket
  order, then first come, first served; no two buyers share a place (equal tickets
  fall back to the user id, as a sorted set orders ties). A waiting buyer is in the
  pre-queue exactly when their score is below 1.
- ``{prefix}queue-seq:{<session_id>}`` — the counter (``INCR``) that hands out join
  sequences, so joins through different processes are ordered by the server.
- ``{prefix}queue-joined:{<session_id>}`` — hash of user id to join time (Unix ms),
  for waiting and admitted users alike.
- ``{prefix}admitted:{<session_id>}`` — sorted set of admitted user ids, scored by
  when their admission runs out (Unix ms).
- ``{prefix}queue-lease:{<session_id>}`` — the admitter lease: ``"<until ms> <holder>"``,
  ``until`` by the store's clock (which decides), expiring (``PX``) a TTL after that.

And one key for every session, in a slot of its own (so never written by a session's
script, but by a command of its own):

- ``{prefix}queue-rooms`` — sorted set of the session ids where buyers joined,
  scored by the last join or admission (Unix ms; refreshed at most about once a
  second per session and process). ``rooms`` drops those older than ``idle_ttl``.

Every change is one Lua script, hence atomic. Run-out admissions are pruned lazily
by the scripts that write (and ignored by the reads until then). Times come from the
store's clock and are passed to the scripts, so every process must keep its clock in
sync (NTP); a few milliseconds of skew only shift when an admission runs out.

A session's keys expire ``idle_ttl`` after the last join or admission (and never
before an admission runs out), so the rooms of past sales do not stay forever.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable, Coroutine
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from openticket.adapters.millis import MILLISECOND, from_millis, millis
from openticket.adapters.redis.connection import (
    REDIS_FAILURES,
    RedisClient,
    means_unavailable,
    unavailable,
)
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

DEFAULT_IDLE_TTL = timedelta(days=1)
"""How long a session's room is kept after its last join or admission."""

_PRUNE_LIMIT = 1000
"""Run-out admissions pruned per script at most, so no script runs long."""

_REGISTER_EVERY_MS = 1000
"""How often a process refreshes a session's name in the rooms key, at most."""

_SYSTEM_RANDOM = secrets.SystemRandom()

# Shared by the scripts that write. KEYS: queue, admitted, joined, sequence.
_PRUNE = f"""
local queue, admitted, joined, sequence = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local function prune(now)
  local gone = redis.call('ZRANGEBYSCORE', admitted, '-inf', now, 'LIMIT', 0, {_PRUNE_LIMIT})
  if #gone > 0 then
    redis.call('ZREM', admitted, unpack(gone))
    redis.call('HDEL', joined, unpack(gone))
  end
end
local function keep(ms)
  for _, key in ipairs(KEYS) do redis.call('PEXPIRE', key, ms) end
end
"""

_JOIN = (
    _PRUNE
    + """
-- ARGV: user, now (ms), keep (ms), pre-queue ticket ('' for none).
-- Answers {place, joined, pre-queue 0/1} or {0, joined, 0, expiry}.
local user, now, ticket = ARGV[1], ARGV[2], ARGV[4]
prune(now)
local expiry = redis.call('ZSCORE', admitted, user)
if expiry then
  if tonumber(expiry) > tonumber(now) then
    return {0, redis.call('HGET', joined, user), 0, expiry}
  end
  redis.call('ZREM', admitted, user)
  redis.call('HDEL', joined, user)
end
local score = redis.call('ZSCORE', queue, user)
if not score then
  score = ticket
  if ticket == '' then score = redis.call('INCR', sequence) end
  redis.call('ZADD', queue, score, user)
  redis.call('HSET', joined, user, now)
  keep(ARGV[3])
end
local pre = 0
if tonumber(score) < 1 then pre = 1 end
return {redis.call('ZRANK', queue, user) + 1, redis.call('HGET', joined, user), pre}
"""
)

_ADMIT = (
    _PRUNE
    + """
-- ARGV: count, now (ms), expiry (ms), keep (ms). Answers the admitted users in order.
prune(ARGV[2])
local popped = redis.call('ZPOPMIN', queue, ARGV[1])
local users = {}
for i = 1, #popped, 2 do
  users[#users + 1] = popped[i]
  redis.call('ZADD', admitted, ARGV[3], popped[i])
end
if #users > 0 then keep(ARGV[4]) end
return users
"""
)

_REMOVE = (
    _PRUNE
    + """
-- ARGV: user, now (ms). Answers 1 if the user was waiting or (still) admitted.
local user, now = ARGV[1], ARGV[2]
local waiting = redis.call('ZREM', queue, user)
local expiry = redis.call('ZSCORE', admitted, user)
redis.call('ZREM', admitted, user)
redis.call('HDEL', joined, user)
prune(now)
if waiting == 1 or (expiry and tonumber(expiry) > tonumber(now)) then return 1 end
return 0
"""
)

_POSITION = """
-- KEYS: queue, admitted, joined. ARGV: user, now (ms).
-- Answers {place, joined, pre-queue 0/1}, {0, joined, 0, expiry} or nil. Reads only.
local user = ARGV[1]
local expiry = redis.call('ZSCORE', KEYS[2], user)
if expiry and tonumber(expiry) > tonumber(ARGV[2]) then
  return {0, redis.call('HGET', KEYS[3], user), 0, expiry}
end
local score = redis.call('ZSCORE', KEYS[1], user)
if not score then return false end
local pre = 0
if tonumber(score) < 1 then pre = 1 end
return {redis.call('ZRANK', KEYS[1], user) + 1, redis.call('HGET', KEYS[3], user), pre}
"""

_REGISTER = """
-- KEYS: rooms. ARGV: session, now (ms), keep (ms).
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
"""

_ROOMS = """
-- KEYS: rooms. ARGV: oldest score kept (ms). Drops the older rooms; answers the rest.
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1])
return redis.call('ZRANGE', KEYS[1], 0, -1)
"""

_LEASE = """
-- KEYS: lease. ARGV: holder, now (ms), until (ms), key lifetime (ms). Answers 1 if taken.
local current = redis.call('GET', KEYS[1])
if current then
  local ends, holder = string.match(current, '^(%d+) (.*)$')
  if holder ~= ARGV[1] and tonumber(ends) > tonumber(ARGV[2]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[3] .. ' ' .. ARGV[1], 'PX', ARGV[4])
return 1
"""

_RELEASE = """
-- KEYS: lease. ARGV: holder. Drops the lease if the holder holds it.
local current = redis.call('GET', KEYS[1])
if current and string.match(current, '^%d+ (.*)$') == ARGV[1] then
  redis.call('DEL', KEYS[1])
end
"""


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _ticket(answer: list[bytes | str | int]) -> QueueTicket:
    """A ``QueueTicket`` from a script's ``{place, joined, pre-queue[, expiry]}``."""
    place, joined = int(answer[0]), from_millis(answer[1])
    if len(answer) > 3:
        return QueueTicket(position=0, joined_at=joined, admitted_until=from_millis(answer[3]))
    return QueueTicket(position=place, joined_at=joined, pre_queue=bool(int(answer[2])))


class RedisWaitingRoomStore:
    """A ``WaitingRoomStore`` in Redis, shared by every process that uses the same prefix.

    ``admission_ttl`` is how long an admission lasts (cut to whole milliseconds);
    ``idle_ttl`` how long a session's room is kept after its last join or admission.
    Pre-queue tickets come from ``draw`` (default: the operating system's randomness;
    simulations pass ``random.Random(seed).random``); one is drawn for every join
    while the pre-queue is open, and thrown away if the buyer was already in.
    When Redis cannot serve (down, timed out, the client's pool full, failing over) the
    call raises ``AdapterUnavailable``; other Redis errors are raised as they are.
    """

    def __init__(
        self,
        client: RedisClient,
        clock: Clock,
        *,
        prefix: str = "openticket:",
        admission_ttl: timedelta = DEFAULT_ADMISSION_TTL,
        idle_ttl: timedelta = DEFAULT_IDLE_TTL,
        draw: Callable[[], float] = _SYSTEM_RANDOM.random,
    ) -> None:
        ttl_ms = admission_ttl // MILLISECOND
        if ttl_ms <= 0:
            raise ValueError(f"admission_ttl must be at least one millisecond, not {admission_ttl}")
        self._client = client
        self._clock = clock
        self._prefix = prefix
        self._admission_ms = ttl_ms
        self._keep_ms = max(idle_ttl // MILLISECOND, ttl_ms)
        self._draw = draw
        self._register_every_ms = min(_REGISTER_EVERY_MS, self._keep_ms // 2)
        self._registered: dict[SessionId, int] = {}
        """When this process last refreshed each session in the rooms key (ms)."""
        self._join = client.register_script(_JOIN)
        self._admit = client.register_script(_ADMIT)
        self._remove = client.register_script(_REMOVE)
        self._position = client.register_script(_POSITION)
        self._register = client.register_script(_REGISTER)
        self._rooms = client.register_script(_ROOMS)
        self._lease = client.register_script(_LEASE)
        self._release = client.register_script(_RELEASE)

    @property
    def admission_ttl(self) -> timedelta:
        """How long an admission lasts (whole milliseconds)."""
        return self._admission_ms * MILLISECOND

    def keys(self, session_id: SessionId) -> tuple[str, str, str, str]:
        """The session's keys: queue, admitted, join times, join sequence."""
        tag, prefix = f"{{{session_id}}}", self._prefix
        return (
            f"{prefix}queue:{tag}",
            f"{prefix}admitted:{tag}",
            f"{prefix}queue-joined:{tag}",
            f"{prefix}queue-seq:{tag}",
        )

    @property
    def rooms_key(self) -> str:
        """The key of the sessions where buyers joined (in a slot of its own)."""
        return f"{self._prefix}queue-rooms"

    def lease_key(self, session_id: SessionId) -> str:
        """The key of the session's admitter lease (in the slot of the session's keys)."""
        return f"{self._prefix}queue-lease:{{{session_id}}}"

    async def join(
        self, session_id: SessionId, user_id: UserId, *, pre_queue_until: datetime | None = None
    ) -> QueueTicket:
        """Put the buyer in the session's queue (or its pre-queue), or answer where they stand.

        One round trip, and a second one at once beside it when this process has not
        named the session in the rooms key for about a second.
        """
        check_pre_queue_until(pre_queue_until)
        now = self._now_ms()
        ticket = ""
        if pre_queue_until is not None and from_millis(now) < pre_queue_until:
            ticket = repr(checked_ticket(self._draw()))  # repr: the shortest exact text
        args = (str(user_id), now, self._keep_ms, ticket)
        joining = _ask("join the queue", self._join(keys=self.keys(session_id), args=args))
        if now - self._registered.get(session_id, -self._register_every_ms) < (
            self._register_every_ms
        ):
            return _ticket(await joining)
        # both to the end, then the first failure: neither error is left unheard
        outcomes: tuple[Any, BaseException | None] = await asyncio.gather(
            joining, self._name_room(session_id, now), return_exceptions=True
        )
        answer, named = outcomes
        if isinstance(answer, BaseException):
            raise answer
        if named is not None:
            raise named
        return _ticket(answer)

    async def position(self, session_id: SessionId, user_id: UserId) -> QueueTicket | None:
        """Where the buyer stands; ``None`` if neither waiting nor (still) admitted."""
        args = (str(user_id), self._now_ms())
        keys = self.keys(session_id)[:3]
        answer = await _ask("read a queue position", self._position(keys=keys, args=args))
        return None if answer is None else _ticket(answer)

    async def admit_next(self, session_id: SessionId, count: int) -> list[UserId]:
        """Admit the first ``count`` waiting buyers, in queue order; who was admitted."""
        if count < 0:
            raise ValueError(f"count must not be negative, not {count}")
        if count == 0:
            return []
        now = self._now_ms()
        args = (count, now, now + self._admission_ms, self._keep_ms)
        answer = await _ask("admit buyers", self._admit(keys=self.keys(session_id), args=args))
        if answer and now - self._registered.get(session_id, 0) >= self._register_every_ms:
            # the session's keys live on while admissions go on: so does its room's name
            await self._name_room(session_id, now)
        return [UserId(UUID(_text(user))) for user in answer]

    async def is_admitted(self, session_id: SessionId, user_id: UserId) -> bool:
        """Whether the buyer has been admitted to the session and the admission still runs."""
        now = self._now_ms()
        until = await _ask(
            "read an admission", self._client.zscore(self.keys(session_id)[1], str(user_id))
        )
        return until is not None and until > now

    async def remove(self, session_id: SessionId, user_id: UserId) -> bool:
        """Take the buyer out: leave the queue or give up the admission; whether they were in."""
        args = (str(user_id), self._now_ms())
        answer = await _ask("leave the queue", self._remove(keys=self.keys(session_id), args=args))
        return bool(answer)

    async def length(self, session_id: SessionId) -> int:
        """How many buyers are waiting in the session's queue (admitted ones not counted)."""
        return int(await _ask("count the queue", self._client.zcard(self.keys(session_id)[0])))

    async def admitted_count(self, session_id: SessionId) -> int:
        """How many of the session's admissions still run (not run out, not removed)."""
        count = self._client.zcount(self.keys(session_id)[1], f"({self._now_ms()}", "+inf")
        return int(await _ask("count admissions", count))

    async def rooms(self) -> list[SessionId]:
        """The sessions where buyers joined within the idle TTL (some may have emptied)."""
        args = (self._now_ms() - self._keep_ms,)
        answer = await _ask("list the rooms", self._rooms(keys=(self.rooms_key,), args=args))
        return [SessionId(UUID(_text(session))) for session in answer]

    async def lease(self, session_id: SessionId, holder: str, ttl: timedelta) -> bool:
        """Take or renew the session's admitter lease for ``holder``; whether it is theirs."""
        check_holder(holder)
        ttl_ms = ttl // MILLISECOND
        if ttl_ms <= 0:
            raise ValueError(f"a lease ttl must be at least one millisecond, not {ttl}")
        now = self._now_ms()
        # the key outlives the lease by a TTL: the end by the store's clock decides
        args = (holder, now, now + ttl_ms, 2 * ttl_ms)
        taking = self._lease(keys=(self.lease_key(session_id),), args=args)
        return bool(await _ask("take the admitter lease", taking))

    async def release_lease(self, session_id: SessionId, holder: str) -> None:
        """Give up the session's admitter lease if ``holder`` holds it; otherwise nothing."""
        releasing = self._release(keys=(self.lease_key(session_id),), args=(holder,))
        await _ask("release the admitter lease", releasing)

    def _name_room(self, session_id: SessionId, now: int) -> Coroutine[Any, Any, None]:
        """Refresh the session in the rooms key; remember when, to skip it for a while.

        The claim is made at once, before the call is awaited: of many joins arriving
        together, only the first names the room (a cluster client's connections are few).
        """
        registered = self._registered
        if len(registered) >= 1024:  # forget the sessions of past sales
            for stale in [s for s, ms in registered.items() if now - ms >= self._register_every_ms]:
                del registered[stale]
        before = registered.get(session_id)
        registered[session_id] = now  # the joins racing this one need not name it again
        return self._naming(session_id, now, before)

    async def _naming(self, session_id: SessionId, now: int, before: int | None) -> None:
        registered = self._registered
        args = (str(session_id), now, self._keep_ms)
        try:
            await _ask("name the room", self._register(keys=(self.rooms_key,), args=args))
        except BaseException:
            if before is None:
                registered.pop(session_id, None)
            else:
                registered[session_id] = before
            raise

    def _now_ms(self) -> int:
        return millis(self._clock.now())


async def _ask(action: str, call: Awaitable[Any]) -> Any:
    """Await one Redis call; ``AdapterUnavailable`` when Redis cannot serve now.

    Other errors (a wrong call: a bug, or a key of another type under our prefix) are
    raised as they are, so they are not retried as if the server were down.
    """
    try:
        return await call
    except REDIS_FAILURES as e:
        if means_unavailable(e):
            raise unavailable(f"waiting room: cannot {action} in Redis", e) from e
        raise
