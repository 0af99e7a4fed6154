"""The signal-counter contract against Redis, and what only a shared store can show."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from uuid import uuid4

import pytest
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from openticket.adapters.memory.clock import DEFAULT_START
from openticket.adapters.redis.signal_counter import _TALLY, RedisSignalCounter
from openticket.application.ports.errors import AdapterUnavailable
from openticket.application.ports.signal_counter import SignalCounter, Tally
from openticket.testing.contracts.signal_counter import SignalCounterContract

pytestmark = pytest.mark.redis


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    """A pooled client of the test server, as an API process builds it."""
    pool = aioredis.BlockingConnectionPool.from_url(redis_url, max_connections=20, timeout=10)
    client = aioredis.Redis(connection_pool=pool)
    try:
        yield client
    finally:
        await client.aclose()


class TestRedisSignalCounter(SignalCounterContract):
    @pytest.fixture
    async def signal_counter(self, client: aioredis.Redis, key_prefix: str) -> SignalCounter:
        return RedisSignalCounter(client, prefix=key_prefix)


async def test_two_api_processes_share_the_counts(redis_url: str, key_prefix: str) -> None:
    clients = [aioredis.Redis.from_url(redis_url) for _ in range(2)]
    try:
        counters = [RedisSignalCounter(c, prefix=key_prefix) for c in clients]
        tally = Tally(key="bot:address:203.0.113.7", window=timedelta(minutes=1))
        calls = [
            counter.count([tally], now=DEFAULT_START) for counter in counters for _ in range(50)
        ]
        counts = await asyncio.gather(*calls)
    finally:
        for c in clients:
            await c.aclose()
    assert sorted(count for (count,) in counts) == list(range(1, 101))


async def test_a_key_lives_under_the_prefix_for_one_window_and_holds_its_cap(
    redis_client: aioredis.Redis, key_prefix: str
) -> None:
    counter = RedisSignalCounter(redis_client, prefix=key_prefix)
    tally = Tally(key="bot:address:flood", window=timedelta(milliseconds=300), cap=40)
    for n in range(10):
        await counter.count([tally] * 50, now=DEFAULT_START + timedelta(milliseconds=n))
    key = f"{key_prefix}signals:bot:address:flood"
    assert [k async for k in redis_client.scan_iter(match=f"{key_prefix}*")] == [key.encode()]
    assert await redis_client.zcard(key) == 40
    assert 0 < await redis_client.pttl(key) <= 300
    await asyncio.sleep(0.35)
    assert await redis_client.exists(key) == 0


async def test_reading_an_unknown_key_writes_nothing(
    redis_client: aioredis.Redis, key_prefix: str
) -> None:
    counter = RedisSignalCounter(redis_client, prefix=key_prefix)
    read = Tally(key="bot:refusals:nobody", window=timedelta(minutes=5), add=False)
    assert await counter.count([read], now=DEFAULT_START) == (0,)
    assert [k async for k in redis_client.scan_iter(match=f"{key_prefix}*")] == []


async def test_a_server_that_lacks_the_script_is_given_it(
    redis_client: aioredis.Redis, key_prefix: str
) -> None:
    """As after a restart or a SCRIPT FLUSH: the calls are sent again once it is loaded."""
    counter = RedisSignalCounter(redis_client, prefix=key_prefix)
    # the same script under a comment of its own: a digest the server has never seen
    counter._script = redis_client.register_script(f"{_TALLY}\n-- {uuid4().hex}")
    assert await redis_client.script_exists(counter._script.sha) == [False]
    tallies = [Tally(key=f"bot:account:{n}", window=timedelta(minutes=1)) for n in range(3)]
    assert await counter.count(tallies, now=DEFAULT_START) == (1, 1, 1)
    assert await counter.count(tallies, now=DEFAULT_START) == (2, 2, 2)
    assert await redis_client.script_exists(counter._script.sha) == [True]


async def test_an_unreachable_redis_raises_adapter_unavailable() -> None:
    client = aioredis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=1)
    try:
        counter = RedisSignalCounter(client)
        assert isinstance(counter, SignalCounter)
        tally = Tally(key="bot:account:1", window=timedelta(seconds=1))
        with pytest.raises(AdapterUnavailable) as raised:
            await counter.count([tally], now=DEFAULT_START)
        assert isinstance(raised.value.__cause__, RedisError | OSError)
    finally:
        await client.aclose()
