"""The rate limiter in process memory: for the embedded profile, tests and benchmarks."""

from __future__ import annotations

import bisect
import heapq
from collections import deque

from openticket.adapters.millis import MILLISECOND, millis
from openticket.application.ports.clock import Clock
from openticket.application.ports.rate_limit import RateDecision, RateLimit


class _Key:
    """The allowed requests of one key still inside its window, oldest first (in ms)."""

    __slots__ = ("hits", "window_ms")

    def __init__(self, window_ms: int) -> None:
        self.hits: deque[int] = deque()
        self.window_ms = window_ms

    def expires_at(self) -> int:
        """The moment (ms) from which none of the key's hits counts any more."""
        return self.hits[-1] + self.window_ms if self.hits else 0


class MemoryRateLimiter:
    """A ``RateLimiter`` holding each key's allowed requests in a deque of timestamps.

    Exact, and atomic because nothing in ``hit`` awaits; limits only the requests of
    this one process. Time comes from the injected clock, in whole milliseconds.

    Memory stays bounded: a key keeps at most ``limit`` timestamps, and a key none of
    whose requests counts any more is dropped, so a flood of one-off keys (say, IP
    addresses) is forgotten one window later.
    """

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._keys: dict[str, _Key] = {}
        self._expiry: list[tuple[int, str]] = []
        """One ``(expires at or before, key)`` entry per tracked key, earliest first."""

    async def hit(self, key: str, limit: RateLimit) -> RateDecision:
        """Count one request of ``key`` if ``limit`` allows it now, and say whether it did."""
        now = millis(self._clock.now())
        window = limit.window // MILLISECOND
        self._purge(now)
        entry = self._keys.get(key)
        if entry is None:
            entry = self._keys[key] = _Key(window)
            heapq.heappush(self._expiry, (now + window, key))
        entry.window_ms = window
        hits = entry.hits
        cutoff = now - window
        while hits and hits[0] <= cutoff:
            hits.popleft()
        count = len(hits)
        if count < limit.limit:
            if not hits or hits[-1] <= now:
                hits.append(now)
            else:  # the clock went back: keep the hits in order
                bisect.insort(hits, now)
            return RateDecision(
                allowed=True,
                remaining=limit.limit - count - 1,
                retry_after=0.0,
                reset_after=(hits[0] + window - now) / 1000,
            )
        # Allowed again once only limit - 1 of the counted hits are left.
        blocker = hits[count - limit.limit]
        return RateDecision(
            allowed=False,
            remaining=0,
            retry_after=(blocker + window - now) / 1000,
            reset_after=(hits[0] + window - now) / 1000,
        )

    def tracked_keys(self) -> int:
        """How many keys the limiter holds now (for tests and metrics)."""
        return len(self._keys)

    def _purge(self, now: int) -> None:
        """Drop the keys of which no hit counts any more."""
        queue, keys = self._expiry, self._keys
        while queue and queue[0][0] <= now:
            _, key = heapq.heappop(queue)
            entry = keys[key]
            expires_at = entry.expires_at()
            if expires_at <= now:
                del keys[key]
            else:
                heapq.heappush(queue, (expires_at, key))
