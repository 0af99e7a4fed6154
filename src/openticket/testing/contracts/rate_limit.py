"""The ``RateLimiter`` contract: exact sliding-window limits per key, counted atomically."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta
from uuid import uuid4

import pytest

from openticket.adapters.memory.clock import FakeClock
from openticket.application.ports.clock import Clock
from openticket.application.ports.rate_limit import RateDecision, RateLimit, RateLimiter
from openticket.testing.contracts._clock import ClockedContract

_LONG = timedelta(minutes=10)
"""The window of tests in which no time passes: nothing ages out however slow the run."""

_RESOLUTION = 0.001
"""Limiters count time in whole milliseconds."""


class RateLimiterContract(ClockedContract):
    """What every ``RateLimiter`` adapter must do.

    Subclass it once per adapter and define the async fixture ``rate_limiter``, which
    yields a limiter built with the ``clock`` fixture. The default ``clock`` is a
    ``FakeClock`` and :meth:`pass_time` moves it; an adapter that also keeps time of
    its own (Redis expires keys in real time) may instead override ``clock`` with a
    system clock, ``pass_time`` with a real sleep, and set a short :attr:`window` and
    a :attr:`tolerance` for the scheduling delays of a real run. Every test uses fresh
    random keys, so a shared server is fine.
    """

    window: timedelta = timedelta(seconds=10)
    """The window of the tests that let time pass; they pass it in fractions of it."""

    tolerance: float = 0.0
    """Seconds a real run may drift late between two steps; with a ``FakeClock``, 0."""

    concurrent_hits: int = 200
    """How many requests race for one key in the contention test (the limit is a quarter)."""

    # --- helpers ---------------------------------------------------------------------

    @property
    def _seconds(self) -> float:
        return self.window.total_seconds()

    def _limit(self, limit: int, window: timedelta | None = None) -> RateLimit:
        return RateLimit(limit, self.window if window is None else window)

    @staticmethod
    def _key(name: str = "user") -> str:
        return f"{name}:{uuid4().hex}"

    @staticmethod
    async def _hits(limiter: RateLimiter, key: str, limit: RateLimit, n: int) -> list[RateDecision]:
        """``n`` requests of ``key`` one after the other."""
        return [await limiter.hit(key, limit) for _ in range(n)]

    def _assert_retry_after(self, decision: RateDecision, expected: float) -> None:
        """Refused, and allowed again in ``expected`` seconds (sooner by the run's drift)."""
        assert not decision.allowed, decision
        assert decision.remaining == 0, decision
        assert decision.retry_after > 0, decision
        low, high = expected - self.tolerance - _RESOLUTION, expected + _RESOLUTION
        assert low <= decision.retry_after <= high, f"expected about {expected}s: {decision}"

    def _assert_reset_after(self, decision: RateDecision, expected: float) -> None:
        """The key's quota grows again in ``expected`` seconds (sooner by the run's drift)."""
        low, high = expected - self.tolerance - _RESOLUTION, expected + _RESOLUTION
        assert low <= decision.reset_after <= high, f"expected about {expected}s: {decision}"

    # --- a burst -----------------------------------------------------------------------

    async def test_a_burst_gets_exactly_the_limit_then_is_refused(
        self, rate_limiter: RateLimiter
    ) -> None:
        """``limit`` requests in a row are allowed, every later one is refused."""
        key, limit = self._key(), self._limit(5)
        decisions = await self._hits(rate_limiter, key, limit, 8)
        assert [d.allowed for d in decisions] == [True] * 5 + [False] * 3, decisions

    async def test_remaining_counts_down_to_zero(self, rate_limiter: RateLimiter) -> None:
        """Each allowed request says how many more are allowed now; refused ones say 0."""
        key, limit = self._key(), self._limit(4)
        decisions = await self._hits(rate_limiter, key, limit, 6)
        assert [d.remaining for d in decisions] == [3, 2, 1, 0, 0, 0], decisions
        assert [d.retry_after for d in decisions[:4]] == [0, 0, 0, 0], decisions

    async def test_a_refusal_says_when_to_retry_at_most_a_window_ahead(
        self, rate_limiter: RateLimiter
    ) -> None:
        """Refused right after the burst: the burst ages out one window after it happened."""
        key, limit = self._key(), self._limit(3)
        await self._hits(rate_limiter, key, limit, 3)
        refused = await rate_limiter.hit(key, limit)
        self._assert_retry_after(refused, self._seconds)
        assert refused.retry_after <= self._seconds

    async def test_waiting_retry_after_is_enough(
        self, rate_limiter: RateLimiter, clock: Clock
    ) -> None:
        """A client that waits exactly ``retry_after`` is allowed."""
        key, limit = self._key(), self._limit(2)
        await self._hits(rate_limiter, key, limit, 2)
        await self.pass_time(clock, self._seconds / 4)
        refused = await rate_limiter.hit(key, limit)
        assert not refused.allowed
        await self.pass_time(clock, refused.retry_after)
        assert (await rate_limiter.hit(key, limit)).allowed

    async def test_the_key_is_allowed_again_once_the_window_has_passed(
        self, rate_limiter: RateLimiter, clock: Clock
    ) -> None:
        """One window after a burst, the key has its whole limit again."""
        key, limit = self._key(), self._limit(3)
        await self._hits(rate_limiter, key, limit, 4)
        await self.pass_time(clock, self._seconds)
        decisions = await self._hits(rate_limiter, key, limit, 4)
        assert [d.remaining for d in decisions] == [2, 1, 0, 0], decisions
        assert [d.allowed for d in decisions] == [True, True, True, False], decisions

    async def test_reset_after_says_when_the_oldest_counted_request_ages_out(
        self, rate_limiter: RateLimiter, clock: Clock
    ) -> None:
        """A key's first request counts a whole window; later ones say what is left of it.

        Refused or allowed, ``reset_after`` is when the oldest request the key counts
        leaves the window, the moment its remaining grows again.
        """
        key, limit, window = self._key(), self._limit(3), self._seconds
        self._assert_reset_after(await rate_limiter.hit(key, limit), window)
        await self.pass_time(clock, window / 4)
        for decision in await self._hits(rate_limiter, key, limit, 2):
            assert decision.allowed, decision
            self._assert_reset_after(decision, window * 3 / 4)
        refused = await rate_limiter.hit(key, limit)
        assert not refused.allowed
        self._assert_reset_after(refused, window * 3 / 4)
        await self.pass_time(clock, window * 3 / 4)
        again = await rate_limiter.hit(key, limit)
        assert again.allowed, again
        self._assert_reset_after(again, window / 4)

    # --- the window slides -------------------------------------------------------------

    async def test_half_a_window_after_a_burst_it_still_counts(
        self, rate_limiter: RateLimiter, clock: Clock
    ) -> None:
        """Refused until the burst is one window old, not at some fixed boundary."""
        key, limit = self._key(), self._limit(3)
        await self._hits(rate_limiter, key, limit, 3)
        await self.pass_time(clock, self._seconds / 2)
        refused = await rate_limiter.hit(key, limit)
        self._assert_retry_after(refused, self._seconds / 2)
        await self.pass_time(clock, self._seconds / 4)
        self._assert_retry_after(await rate_limiter.hit(key, limit), self._seconds / 4)
        await self.pass_time(clock, self._seconds / 4)
        assert (await rate_limiter.hit(key, limit)).allowed

    async def test_the_window_slides_one_request_at_a_time(
        self, rate_limiter: RateLimiter, clock: Clock
    ) -> None:
        """Requests half a window apart each free one place half a window later.

        A fixed window would let two requests through at the first step after one of
        its boundaries; a sliding window allows exactly one per step, whatever the
        alignment.
        """
        key, limit = self._key(), self._limit(2)
        assert (await rate_limiter.hit(key, limit)).allowed
        await self.pass_time(clock, self._seconds / 2)
        assert (await rate_limiter.hit(key, limit)).allowed
        for step in range(4):
            await self.pass_time(clock, self._seconds / 2)
            first, second = await self._hits(rate_limiter, key, limit, 2)
            assert first.allowed, f"step {step}: {first}"
            assert first.remaining == 0, f"step {step}: {first}"
            self._assert_retry_after(second, self._seconds / 2)

    async def test_a_request_counts_until_exactly_one_window_later(
        self, rate_limiter: RateLimiter, clock: Clock
    ) -> None:
        """Counted from its moment to one window later, that moment excluded (to the ms)."""
        if not isinstance(clock, FakeClock):
            raise TypeError(
                "this check steps time to the millisecond: it needs a FakeClock"
                " (a real-time subclass sets the test to None)"
            )
        key, limit = self._key(), self._limit(1)
        assert (await rate_limiter.hit(key, limit)).allowed
        await self.pass_time(clock, self._seconds - _RESOLUTION)
        refused = await rate_limiter.hit(key, limit)
        assert not refused.allowed
        assert refused.retry_after == pytest.approx(_RESOLUTION)
        await self.pass_time(clock, _RESOLUTION)
        assert (await rate_limiter.hit(key, limit)).allowed

    # --- refusals ------------------------------------------------------------------------

    async def test_refused_requests_do_not_count(
        self, rate_limiter: RateLimiter, clock: Clock
    ) -> None:
        """Hammering while refused does not push the key's next allowed request back."""
        key, limit = self._key(), self._limit(2)
        await self._hits(rate_limiter, key, limit, 2)
        await self.pass_time(clock, self._seconds / 2)
        refused = await self._hits(rate_limiter, key, limit, 10)
        assert not any(d.allowed for d in refused), refused
        await self.pass_time(clock, self._seconds / 2)
        decisions = await self._hits(rate_limiter, key, limit, 3)
        assert [d.allowed for d in decisions] == [True, True, False], decisions
        assert [d.remaining for d in decisions] == [1, 0, 0], decisions

    async def test_a_lower_limit_waits_until_enough_requests_age_out(
        self, rate_limiter: RateLimiter, clock: Clock
    ) -> None:
        """A limit lowered below a key's count (a new setting) waits for the excess to go.

        Three requests a quarter window apart, then a limit of 2: allowed again once the
        second one ages out, leaving one.
        """
        key = self._key()
        for _ in range(3):
            assert (await rate_limiter.hit(key, self._limit(10))).allowed
            await self.pass_time(clock, self._seconds / 4)
        refused = await rate_limiter.hit(key, self._limit(2))
        self._assert_retry_after(refused, self._seconds / 2)

    # --- keys ----------------------------------------------------------------------------

    async def test_keys_are_independent(self, rate_limiter: RateLimiter) -> None:
        """A key at its limit leaves another key's whole limit untouched."""
        busy, other, limit = self._key("ip"), self._key("ip"), self._limit(3, _LONG)
        await self._hits(rate_limiter, busy, limit, 5)
        decisions = await self._hits(rate_limiter, other, limit, 4)
        assert [d.remaining for d in decisions] == [2, 1, 0, 0], decisions
        assert [d.allowed for d in decisions] == [True, True, True, False], decisions
        assert not (await rate_limiter.hit(busy, limit)).allowed

    async def test_each_key_gets_its_own_limit(self, rate_limiter: RateLimiter) -> None:
        """Keys with limits of different sizes, hit all at once: each gets exactly its own."""
        limits = {self._key(): self._limit(n, _LONG) for n in (1, 3, 10, 25)}
        requests = [key for key in limits for _ in range(40)]
        decisions = await asyncio.gather(*(rate_limiter.hit(k, limits[k]) for k in requests))
        allowed = Counter(k for k, d in zip(requests, decisions, strict=True) if d.allowed)
        assert allowed == {key: limit.limit for key, limit in limits.items()}

    # --- contention ----------------------------------------------------------------------

    async def test_concurrent_hits_on_one_key_allow_exactly_the_limit(
        self, rate_limiter: RateLimiter
    ) -> None:
        """Many requests at once: exactly ``limit`` allowed, each told a different remainder."""
        key = self._key()
        limit = self._limit(self.concurrent_hits // 4, _LONG)
        decisions = await asyncio.gather(
            *(rate_limiter.hit(key, limit) for _ in range(self.concurrent_hits))
        )
        allowed = [d for d in decisions if d.allowed]
        assert len(allowed) == limit.limit
        assert sorted(d.remaining for d in allowed) == list(range(limit.limit))
        refused = [d for d in decisions if not d.allowed]
        assert all(d.remaining == 0 for d in refused), refused
        assert all(0 < d.retry_after <= _LONG.total_seconds() for d in refused), refused
