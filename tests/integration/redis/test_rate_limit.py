"""The rate-limiter contract against Redis, and what only a shared store can show."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from openticket.adapters.memory.clock import FakeClock
from openticket.adapters.redis.rate_limit import RedisRateLimiter
from openticket.adapters.system import SystemClock
from openticket.application.ports.clock import Clock
from openticket.application.ports.errors import AdapterUnavailable
from openticket.application.ports.rate_limit import RateLimit, RateLimiter
from openticket.testing.contracts import InRealTime
from openticket.testing.contracts.rate_limit import RateLimiterContract

pytestmark = pytest.mark.redis


def pooled_client(redis_url: str, *, decode_responses: bool = False) -> aioredis.Redis:
    """A client as an API process should build it: a bounded pool that waits when busy.

    redis-py's default pool fails with ``MaxConnectionsError`` past 100 requests in
    flight; a blocking pool queues them instead.
    """
    pool = aioredis.BlockingConnectionPool.from_url(
        redis_url, max_connections=20, timeout=10, decode_responses=decode_responses
    )
    return aioredis.Redis(connection_pool=pool)


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    """A pooled client of the test server, closed at the end."""
    client = pooled_client(redis_url)
    try:
        yield client
    finally:
        await client.aclose()


class TestRedisRateLimiter(InRealTime, RateLimiterContract):
    """In real time, as in production: Redis expires the keys by its own clock."""

    # stepping to the millisecond needs a FakeClock: the class below runs that check
    test_a_request_counts_until_exactly_one_window_later = None

    window = timedelta(seconds=0.5)
    tolerance = 0.1

    slack = 0.01

    @pytest.fixture
    async def rate_limiter(
        self, client: aioredis.Redis, clock: Clock, key_prefix: str
    ) -> RateLimiter:
        return RedisRateLimiter(client, clock, prefix=key_prefix)


class TestRedisRateLimiterOnAFakeClock(RateLimiterContract):
    """The same script on a ``FakeClock``: exact to the millisecond, and fast.

    Keys still expire in real time, one (long) window after their last request.
    """

    @pytest.fixture
    async def rate_limiter(
        self, client: aioredis.Redis, clock: FakeClock, key_prefix: str
    ) -> RateLimiter:
        return RedisRateLimiter(client, clock, prefix=key_prefix)


async def test_two_api_processes_share_one_limit_exactly(redis_url: str, key_prefix: str) -> None:
    limit = RateLimit(60, timedelta(minutes=1))
    clients = [pooled_client(redis_url) for _ in range(2)]
    try:
        limiters = [RedisRateLimiter(c, SystemClock(), prefix=key_prefix) for c in clients]
        hits = [limiter.hit("user:42", limit) for limiter in limiters for _ in range(100)]
        decisions = await asyncio.gather(*hits)
    finally:
        for client in clients:
            await client.aclose()
    allowed = [d for d in decisions if d.allowed]
    assert len(allowed) == 60
    assert sorted(d.remaining for d in allowed) == list(range(60))
    refused = [d for d in decisions if not d.allowed]
    assert len(refused) == 140
    assert all(0 < d.retry_after <= 60 for d in refused)


async def test_requests_in_the_same_millisecond_all_count(
    redis_client: aioredis.Redis, key_prefix: str
) -> None:
    clock = FakeClock()  # time stands still: every request lands in one millisecond
    limiters = [RedisRateLimiter(redis_client, clock, prefix=key_prefix) for _ in range(2)]
    limit = RateLimit(7, timedelta(seconds=10))
    decisions = [
        await limiter.hit("ip:1", limit)
        for limiter in itertools.islice(itertools.cycle(limiters), 10)
    ]
    assert [d.allowed for d in decisions] == [True] * 7 + [False] * 3
    assert await redis_client.zcard(f"{key_prefix}ratelimit:ip:1") == 7


async def test_a_flooded_key_holds_only_its_limit_and_expires_after_a_window(
    client: aioredis.Redis, redis_client: aioredis.Redis, key_prefix: str
) -> None:
    limiter = RedisRateLimiter(client, SystemClock(), prefix=key_prefix)
    limit = RateLimit(5, timedelta(milliseconds=300))
    key = f"{key_prefix}ratelimit:ip:flood"
    await asyncio.gather(*(limiter.hit("ip:flood", limit) for _ in range(500)))
    assert await redis_client.zcard(key) == 5
    assert 0 < await redis_client.pttl(key) <= 300
    await asyncio.sleep(0.35)
    assert await redis_client.exists(key) == 0


async def test_keys_live_under_the_prefix(redis_client: aioredis.Redis, key_prefix: str) -> None:
    limiter = RedisRateLimiter(redis_client, SystemClock(), prefix=key_prefix)
    await limiter.hit("user:7", RateLimit(1, timedelta(seconds=5)))
    keys = [k async for k in redis_client.scan_iter(match=f"{key_prefix}*")]
    assert keys == [f"{key_prefix}ratelimit:user:7".encode()]


async def test_an_unreachable_redis_raises_adapter_unavailable() -> None:
    client = aioredis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=1)
    try:
        limiter = RedisRateLimiter(client, SystemClock())
        assert isinstance(limiter, RateLimiter)
        with pytest.raises(AdapterUnavailable) as raised:
            await limiter.hit("user:1", RateLimit(5, timedelta(seconds=1)))
        assert isinstance(raised.value.__cause__, RedisError)
    finally:
        await client.aclose()


@pytest.fixture
async def decoding_client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = pooled_client(redis_url, decode_responses=True)
    try:
        yield client
    finally:
        await client.aclose()


async def test_a_client_that_decodes_responses_works_too(
    decoding_client: aioredis.Redis, key_prefix: str
) -> None:
    limiter = RedisRateLimiter(decoding_client, FakeClock(), prefix=key_prefix)
    limit = RateLimit(2, timedelta(seconds=4))
    decisions = [await limiter.hit("user:1", limit) for _ in range(3)]
    assert [d.remaining for d in decisions] == [1, 0, 0]
    assert decisions[2].retry_after == pytest.approx(4)
