"""The seat-status-cache contract against Redis, and what only the Redis cache promises."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from uuid import uuid4

import pytest
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from openticket.adapters.redis.seat_cache import RedisSeatStatusCache
from openticket.application.ports.errors import AdapterUnavailable
from openticket.application.ports.messaging import SeatStatusChanged
from openticket.application.ports.seat_cache import SeatStatusCache
from openticket.domain.seating import SeatStatus
from openticket.domain.shared import SeatId, SessionId
from openticket.testing.contracts._builders import T0, seat
from openticket.testing.contracts.seat_cache import SeatStatusCacheContract

pytestmark = pytest.mark.redis


def _change(session_id: SessionId, seat_id: SeatId, status: SeatStatus) -> SeatStatusChanged:
    return SeatStatusChanged(session_id=session_id, seat_id=seat_id, status=status, at=T0)


class TestRedisSeatStatusCache(SeatStatusCacheContract):
    @pytest.fixture
    def seat_cache(self, redis_client: aioredis.Redis, key_prefix: str) -> SeatStatusCache:
        return RedisSeatStatusCache(redis_client, prefix=key_prefix)


class TestRedisSeatStatusCacheWithDecodedResponses(SeatStatusCacheContract):
    """A client that hands back ``str`` instead of ``bytes`` works the same."""

    @pytest.fixture
    async def seat_cache(self, redis_url: str, key_prefix: str) -> AsyncIterator[SeatStatusCache]:
        client = aioredis.Redis.from_url(redis_url, decode_responses=True)
        try:
            yield RedisSeatStatusCache(client, prefix=key_prefix)
        finally:
            await client.aclose()


def test_the_redis_cache_is_a_seat_status_cache(redis_client: aioredis.Redis) -> None:
    assert isinstance(RedisSeatStatusCache(redis_client), SeatStatusCache)


async def test_two_processes_see_one_state(redis_url: str, key_prefix: str) -> None:
    """Two caches on two clients (two API processes) read what either wrote."""
    first_client = aioredis.Redis.from_url(redis_url)
    second_client = aioredis.Redis.from_url(redis_url)
    try:
        first = RedisSeatStatusCache(first_client, prefix=key_prefix)
        second = RedisSeatStatusCache(second_client, prefix=key_prefix)
        session_id = SessionId(uuid4())
        a1, a2 = seat("A", 1, 1), seat("A", 1, 2)
        await first.apply([_change(session_id, a1, SeatStatus.HELD)])
        await second.apply([_change(session_id, a2, SeatStatus.SOLD)])
        assert dict(await first.statuses(session_id)) == {a1: SeatStatus.HELD, a2: SeatStatus.SOLD}
        await second.apply([_change(session_id, a1, SeatStatus.AVAILABLE)])
        assert dict(await first.statuses(session_id)) == {a2: SeatStatus.SOLD}
        await first.clear(session_id)
        assert dict(await second.statuses(session_id)) == {}
    finally:
        await first_client.aclose()
        await second_client.aclose()


async def test_the_hash_holds_only_taken_seats_under_the_session_key(
    redis_client: aioredis.Redis, key_prefix: str
) -> None:
    cache = RedisSeatStatusCache(redis_client, prefix=key_prefix)
    session_id = SessionId(uuid4())
    key = f"{key_prefix}session:{{{session_id}}}:seats"
    assert cache.key(session_id) == key
    await cache.apply(
        [
            _change(session_id, seat("A", 1, 1), SeatStatus.HELD),
            _change(session_id, seat("A", 1, 2), SeatStatus.SOLD),
            _change(session_id, seat("A", 1, 3), SeatStatus.AVAILABLE),
        ]
    )
    assert await redis_client.hgetall(key) == {b"A-1-1": b"held", b"A-1-2": b"sold"}
    await cache.apply(
        [
            _change(session_id, seat("A", 1, 1), SeatStatus.AVAILABLE),
            _change(session_id, seat("A", 1, 2), SeatStatus.AVAILABLE),
        ]
    )
    assert await redis_client.exists(key) == 0  # the last freed seat took the key with it


async def test_prefixes_keep_deployments_apart(
    redis_client: aioredis.Redis, key_prefix: str
) -> None:
    mine = RedisSeatStatusCache(redis_client, prefix=f"{key_prefix}a:")
    theirs = RedisSeatStatusCache(redis_client, prefix=f"{key_prefix}b:")
    session_id = SessionId(uuid4())
    await mine.apply([_change(session_id, seat("A", 1, 1), SeatStatus.SOLD)])
    assert dict(await theirs.statuses(session_id)) == {}


async def test_a_value_that_is_no_status_is_skipped(
    redis_client: aioredis.Redis, key_prefix: str
) -> None:
    cache = RedisSeatStatusCache(redis_client, prefix=key_prefix)
    session_id = SessionId(uuid4())
    await cache.apply([_change(session_id, seat("A", 1, 1), SeatStatus.SOLD)])
    await redis_client.hset(cache.key(session_id), "A-1-2", "melted")
    assert dict(await cache.statuses(session_id)) == {seat("A", 1, 1): SeatStatus.SOLD}


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_an_unreachable_redis_is_adapter_unavailable() -> None:
    client = aioredis.Redis(
        host="127.0.0.1",
        port=_closed_port(),
        socket_connect_timeout=0.5,
        retry=Retry(NoBackoff(), 0),
    )
    cache = RedisSeatStatusCache(client)
    session_id = SessionId(uuid4())
    try:
        with pytest.raises(AdapterUnavailable):
            await cache.apply([_change(session_id, seat("A", 1, 1), SeatStatus.HELD)])
        with pytest.raises(AdapterUnavailable):
            await cache.statuses(session_id)
        with pytest.raises(AdapterUnavailable):
            await cache.clear(session_id)
    finally:
        await client.aclose()
