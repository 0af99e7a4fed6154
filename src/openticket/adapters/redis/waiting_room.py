"""The waiting-room store in Redis: one queue per session, shared by every API process.

Keys of a session (``{<session_id>}`` is a Redis Cluster hash tag, so a session's
keys live in one slot and one script may touch them all):

- ``{prefix}queue:{<session_id>}`` — sorted set of waiting user ids, scored by their
  join sequence. Places are ranks: first come, first served, with no ties.
- ``{prefix}queue-seq:{<session_id>}`` — the counter (``INCR``) that hands out join
  sequences, so joins through different processes are ordered by the server.
- ``{prefix}queue-joined:{<session_id>}`` — hash of user id to join time (Unix ms),
  for waiting and admitted users alike.
- ``{prefix}admitted:{<session_id>}`` — sorted set of admitted user ids, scored by
  when their admission runs out (Unix ms).

Every change is one Lua script, hence atomic. Run-out admissions are pruned lazily
by the scripts that write (and ignored by the reads until then). Times come from the
store's clock and are passed to the scripts, so every process must keep its clock in
sync (NTP); a few milliseconds of skew only shift when an admission runs out.

A session's keys expire ``idle_ttl`` after the last join or admission (and never
before an admission runs out), so the rooms of past sales do not stay forever.
"""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import timedelta
from typing import Any, Final
from uuid import UUID

from redis.exceptions import (
    ClusterDownError,
    OutOfMemoryError,
    ReadOnlyError,
    ResponseError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from openticket.adapters.millis import MILLISECOND, from_millis, millis
from openticket.adapters.redis.connection import CLUSTER_UNAVAILABLE, REDIS_FAILURES, RedisClient
from openticket.application.ports.clock import Clock
from openticket.application.ports.errors import AdapterUnavailable
from openticket.application.ports.waiting_room import QueueTicket
from openticket.domain.shared import SessionId, UserId

DEFAULT_ADMISSION_TTL = timedelta(minutes=10)
"""How long an admission lasts unless the store is told otherwise (api.md: 600 s)."""

DEFAULT_IDLE_TTL = timedelta(days=1)
"""How long a session's room is kept after its last join or admission."""

_UNAVAILABLE: Final = (
    RedisConnectionError,  # also refused and lost connections, LOADING, a full pool
    RedisTimeoutError,
    TimeoutError,
    OSError,  # a socket error redis-py did not wrap
    OutOfMemoryError,
    ReadOnlyError,  # a replica promoted away from us (failover)
    ClusterDownError,  # also MASTERDOWN
    TryAgainError,
    *CLUSTER_UNAVAILABLE,
)
_BUSY_PREFIXES: Final = ("OOM", "BUSY", "NOREPLICAS", "MASTERDOWN", "LOADING")
"""Error replies that mean 'not now' rather than 'wrong call'."""

_PRUNE_LIMIT = 1000
"""Run-out admissions pruned per script at most, so no script runs long."""

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
-- ARGV: user, now (ms), keep (ms). Answers {place, joined} or {0, joined, expiry}.
local user, now = ARGV[1], ARGV[2]
prune(now)
local expiry = redis.call('ZSCORE', admitted, user)
if expiry then
  if tonumber(expiry) > tonumber(now) then
    return {0, redis.call('HGET', joined, user), expiry}
  end
  redis.call('ZREM', admitted, user)
  redis.call('HDEL', joined, user)
end
local rank = redis.call('ZRANK', queue, user)
if not rank then
  local number = redis.call('INCR', sequence)
  redis.call('ZADD', queue, 'NX', number, user)
  redis.call('HSET', joined, user, now)
  keep(ARGV[3])
  rank = redis.call('ZRANK', queue, user)
end
return {rank + 1, redis.call('HGET', joined, user)}
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
-- Answers {place, joined}, {0, joined, expiry} or nil. Reads only.
local user = ARGV[1]
local expiry = redis.call('ZSCORE', KEYS[2], user)
if expiry and tonumber(expiry) > tonumber(ARGV[2]) then
  return {0, redis.call('HGET', KEYS[3], user), expiry}
end
local rank = redis.call('ZRANK', KEYS[1], user)
if rank then return {rank + 1, redis.call('HGET', KEYS[3], user)} end
return false
"""


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _ticket(answer: list[bytes | str | int]) -> QueueTicket:
    """A ``QueueTicket`` from a script's ``{place, joined[, expiry]}``."""
    place, joined = int(answer[0]), from_millis(answer[1])
    if len(answer) > 2:
        return QueueTicket(position=0, joined_at=joined, admitted_until=from_millis(answer[2]))
    return QueueTicket(position=place, joined_at=joined)


class RedisWaitingRoomStore:
    """A ``WaitingRoomStore`` in Redis, shared by every process that uses the same prefix.

    ``admission_ttl`` is how long an admission lasts (cut to whole milliseconds);
    ``idle_ttl`` how long a session's room is kept after its last join or admission.
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
    ) -> None:
        ttl_ms = admission_ttl // MILLISECOND
        if ttl_ms <= 0:
            raise ValueError(f"admission_ttl must be at least one millisecond, not {admission_ttl}")
        self._client = client
        self._clock = clock
        self._prefix = prefix
        self._admission_ms = ttl_ms
        self._keep_ms = max(idle_ttl // MILLISECOND, ttl_ms)
        self._join = client.register_script(_JOIN)
        self._admit = client.register_script(_ADMIT)
        self._remove = client.register_script(_REMOVE)
        self._position = client.register_script(_POSITION)

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

    async def join(self, session_id: SessionId, user_id: UserId) -> QueueTicket:
        """Put the buyer at the back of the session's queue, or answer where they stand."""
        args = (str(user_id), self._now_ms(), self._keep_ms)
        answer = await _ask("join the queue", self._join(keys=self.keys(session_id), args=args))
        return _ticket(answer)

    async def position(self, session_id: SessionId, user_id: UserId) -> QueueTicket | None:
        """Where the buyer stands; ``None`` if neither waiting nor (still) admitted."""
        args = (str(user_id), self._now_ms())
        keys = self.keys(session_id)[:3]
        answer = await _ask("read a queue position", self._position(keys=keys, args=args))
        return None if answer is None else _ticket(answer)

    async def admit_next(self, session_id: SessionId, count: int) -> list[UserId]:
        """Admit the first ``count`` waiting buyers, in join order; who was admitted."""
        if count < 0:
            raise ValueError(f"count must not be negative, not {count}")
        if count == 0:
            return []
        now = self._now_ms()
        args = (count, now, now + self._admission_ms, self._keep_ms)
        answer = await _ask("admit buyers", self._admit(keys=self.keys(session_id), args=args))
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
        if isinstance(e, _UNAVAILABLE) or (
            isinstance(e, ResponseError) and str(e).startswith(_BUSY_PREFIXES)
        ):
            reason = str(e).strip() or type(e).__name__
            raise AdapterUnavailable(f"waiting room: cannot {action} in Redis: {reason}") from e
        raise
