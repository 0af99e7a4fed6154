"""The rate-limiter contract against the in-memory limiter, and what only it promises."""

from datetime import timedelta

import pytest

from openticket.adapters.memory.clock import FakeClock
from openticket.adapters.memory.rate_limit import MemoryRateLimiter
from openticket.application.ports.rate_limit import RateLimit, RateLimiter
from openticket.testing.contracts.rate_limit import RateLimiterContract


class TestMemoryRateLimiter(RateLimiterContract):
    @pytest.fixture
    async def rate_limiter(self, clock: FakeClock) -> RateLimiter:
        return MemoryRateLimiter(clock)


def test_the_memory_limiter_is_a_rate_limiter() -> None:
    assert isinstance(MemoryRateLimiter(FakeClock()), RateLimiter)


async def test_idle_keys_are_forgotten_one_window_after_their_last_request() -> None:
    clock = FakeClock()
    limiter = MemoryRateLimiter(clock)
    short, long = RateLimit(3, timedelta(seconds=1)), RateLimit(3, timedelta(seconds=10))
    for n in range(1000):
        await limiter.hit(f"ip:{n}", short)
    await limiter.hit("user:kept", long)
    clock.advance(0.5)
    await limiter.hit("ip:0", short)  # still active: its window starts again
    assert limiter.tracked_keys() == 1001

    clock.advance(0.5)
    await limiter.hit("user:new", long)
    assert limiter.tracked_keys() == 3  # ip:0 (hit half a window ago), both users

    clock.advance(0.5)
    await limiter.hit("user:new", long)
    assert limiter.tracked_keys() == 2

    clock.advance(10)
    await limiter.hit("other", short)
    assert limiter.tracked_keys() == 1


async def test_a_flooded_key_keeps_only_its_limit() -> None:
    clock = FakeClock()
    limiter = MemoryRateLimiter(clock)
    limit = RateLimit(5, timedelta(seconds=1))
    for _ in range(1000):
        await limiter.hit("ip:flood", limit)
        clock.advance(0.0001)
    assert len(limiter._keys["ip:flood"].hits) == 5


async def test_a_clock_that_goes_back_keeps_counting_exactly() -> None:
    clock = FakeClock()
    limiter = MemoryRateLimiter(clock)
    limit = RateLimit(3, timedelta(seconds=10))
    assert (await limiter.hit("k", limit)).allowed  # t = 0
    clock.advance(-2)
    assert (await limiter.hit("k", limit)).allowed  # t = -2
    clock.advance(1)
    decision = await limiter.hit("k", limit)  # t = -1
    assert decision.allowed
    assert decision.remaining == 0
    refused = await limiter.hit("k", limit)
    assert not refused.allowed
    assert refused.retry_after == pytest.approx(9)  # the hit at -2 ages out at 8
    clock.advance(9)
    assert (await limiter.hit("k", limit)).allowed  # t = 8


@pytest.mark.parametrize(
    ("limit", "window"),
    [
        (0, timedelta(seconds=1)),
        (-1, timedelta(seconds=1)),
        (1, timedelta(0)),
        (1, timedelta(microseconds=999)),
        (1, timedelta(seconds=-1)),
    ],
)
def test_a_rate_limit_needs_a_positive_limit_and_at_least_a_millisecond(
    limit: int, window: timedelta
) -> None:
    with pytest.raises(ValueError, match="must be at least"):
        RateLimit(limit, window)
