"""The rate limiter in Redis: one sorted set per key, checked and counted in one Lua script.

Every API process behind the load balancer asks the same Redis, and the script runs
atomically there, so the limit is exact across processes. The window slides: a
request counts for exactly one window after it was allowed, so no burst at a fixed
window's edge gets twice the limit through. Key ``{prefix}ratelimit:{key}`` holds one
member per allowed request, scored by its moment in milliseconds; it expires one
window after the last allowed request. Scripts touch one key each, so the adapter also
works on a cluster.
"""

from __future__ import annotations

import itertools
import secrets
from typing import Any

from openticket.adapters.millis import MILLISECOND, millis
from openticket.adapters.redis.connection import REDIS_FAILURES, RedisClient, unavailable
from openticket.application.ports.clock import Clock
from openticket.application.ports.rate_limit import RateDecision, RateLimit

_HIT = """
-- KEYS[1]: the key's sorted set of allowed requests (score: moment in ms).
-- ARGV: now (ms), window (ms), limit, a member no other request uses.
-- Returns {allowed (1/0), remaining, retry after (ms), reset after (ms): until the
-- oldest counted request leaves the window}.
local key = KEYS[1]
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
-- Milliseconds until a counted request leaves the window, at most one window: a request
-- whose moment was taken a little later than ours may have reached Redis first.
local function left(member)
  return math.min(tonumber(member[2]) + window - now, window)
end
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
local count = redis.call('ZCARD', key)
if count < limit then
    redis.call('ZADD', key, ARGV[1], ARGV[4])
    redis.call('PEXPIRE', key, window)
    local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    return {1, limit - count - 1, 0, left(oldest)}
end
-- Allowed again once only limit - 1 of the counted requests are left.
local blocker = redis.call('ZRANGE', key, count - limit, count - limit, 'WITHSCORES')
local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
return {0, 0, left(blocker), left(oldest)}
"""


class RedisRateLimiter:
    """A ``RateLimiter`` shared by every process that uses the same Redis and ``prefix``.

    "Now" comes from the injected clock (in whole milliseconds) and is sent with each
    request, so processes whose clocks disagree by ``d`` may let a key's request age
    out up to ``d`` early; keep the hosts' clocks in sync (NTP). A refused request
    writes nothing, so a key holds at most ``limit`` members however hard it is
    flooded. ``retry_after`` and ``reset_after`` are at most one window, even for a
    request that reached Redis after one whose moment was taken later. Redis errors are
    raised as ``AdapterUnavailable``; the client's own retries may resend a request whose
    answer was lost, which at worst counts it twice.
    """

    def __init__(self, client: RedisClient, clock: Clock, *, prefix: str = "openticket:") -> None:
        self._client = client
        self._clock = clock
        self._prefix = f"{prefix}ratelimit:"
        self._script = client.register_script(_HIT)
        self._instance = secrets.token_hex(6)
        """Tells this limiter's members apart from other processes' in the same millisecond."""
        self._sequence = itertools.count()

    async def hit(self, key: str, limit: RateLimit) -> RateDecision:
        """Count one request of ``key`` if ``limit`` allows it now, and say whether it did."""
        now = millis(self._clock.now())
        window = limit.window // MILLISECOND
        member = f"{now}-{self._instance}-{next(self._sequence)}"
        try:
            reply: Any = await self._script(
                keys=[self._prefix + key], args=[now, window, limit.limit, member]
            )
        except REDIS_FAILURES as e:
            raise unavailable("the Redis rate limiter failed", e) from e
        allowed, remaining, retry_after_ms, reset_after_ms = (int(value) for value in reply)
        return RateDecision(
            allowed=bool(allowed),
            remaining=remaining,
            retry_after=retry_after_ms / 1000 if not allowed else 0.0,
            reset_after=reset_after_ms / 1000,
        )
