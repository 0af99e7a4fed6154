"""The waiting-room contract against Redis, in real time, and what only a shared server shows."""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import AsyncIterator
from datetime import timedelta
from uuid import UUID, uuid4

import pytest
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from openticket.adapters.memory.clock import FakeClock
from openticket.adapters.memory.waiting_room import MemoryWaitingRoomStore
from openticket.adapters.redis.waiting_room import RedisWaitingRoomStore
from openticket.adapters.system import SystemClock
from openticket.application.ports.clock import Clock
from openticket.application.ports.errors import AdapterUnavailable
from openticket.application.ports.waiting_room import WaitingRoomStore
from openticket.domain.shared import SessionId, UserId
from openticket.testing.contracts import InRealTime
from openticket.testing.contracts.waiting_room import ScriptedDraws, WaitingRoomStoreContract

pytestmark = pytest.mark.redis


@pytest.fixture
async def pooled_client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    """A client whose calls wait for a free connection when all of its 32 are busy.

    redis-py's default pool refuses a call at once (``MaxConnectionsError``) when its
    100 connections are in use, which hundreds of concurrent joins reach.
    """
    pool = aioredis.BlockingConnectionPool.from_url(redis_url, max_connections=32, timeout=10)
    client = aioredis.Redis(connection_pool=pool)
    try:
        yield client
    finally:
        await client.aclose()
        await pool.disconnect()


class TestRedisWaitingRoomStore(InRealTime, WaitingRoomStoreContract):
    admission_ttl = 0.6
    # stepping to the millisecond needs a FakeClock: the class below runs those checks
    test_an_admission_ends_exactly_at_admitted_until = None
    test_the_pre_queue_closes_exactly_at_pre_queue_until = None

    slack = 0.0

    @pytest.fixture
    async def waiting_room(
        self, pooled_client: aioredis.Redis, key_prefix: str, clock: Clock, draws: ScriptedDraws
    ) -> WaitingRoomStore:
        return RedisWaitingRoomStore(
            pooled_client,
            clock,
            prefix=key_prefix,
            admission_ttl=timedelta(seconds=self.admission_ttl),
            draw=draws,
        )


class TestRedisWaitingRoomStoreOnAFakeClock(WaitingRoomStoreContract):
    """The store takes its time from its clock, not from the server: a fake one works too."""

    @pytest.fixture
    async def waiting_room(
        self,
        pooled_client: aioredis.Redis,
        key_prefix: str,
        clock: FakeClock,
        draws: ScriptedDraws,
    ) -> WaitingRoomStore:
        return RedisWaitingRoomStore(
            pooled_client,
            clock,
            prefix=key_prefix,
            admission_ttl=timedelta(seconds=self.admission_ttl),
            draw=draws,
        )


@pytest.fixture
async def second_client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    """Another connection pool, as another API process would have (and text replies)."""
    pool = aioredis.BlockingConnectionPool.from_url(
        redis_url, max_connections=32, timeout=10, decode_responses=True
    )
    client = aioredis.Redis(connection_pool=pool)
    try:
        yield client
    finally:
        await client.aclose()
        await pool.disconnect()


@pytest.fixture
def stores(
    pooled_client: aioredis.Redis, second_client: aioredis.Redis, key_prefix: str
) -> tuple[RedisWaitingRoomStore, RedisWaitingRoomStore]:
    """Two stores on two clients (one bytes, one text) sharing one server and prefix."""
    clock = SystemClock()
    return (
        RedisWaitingRoomStore(pooled_client, clock, prefix=key_prefix),
        RedisWaitingRoomStore(second_client, clock, prefix=key_prefix),
    )


async def test_two_processes_share_one_queue(
    stores: tuple[RedisWaitingRoomStore, RedisWaitingRoomStore],
) -> None:
    """Joins through either process take places in one queue; admissions show in both."""
    one, two = stores
    session = SessionId(uuid4())
    users = [UserId(uuid4()) for _ in range(6)]
    for number, user in enumerate(users):
        ticket = await (one if number % 2 else two).join(session, user)
        assert ticket.position == number + 1
    assert (await two.join(session, users[3])).position == 4
    assert await one.length(session) == await two.length(session) == 6

    assert await one.admit_next(session, 2) == users[:2]
    assert await two.is_admitted(session, users[0])
    assert (await two.position(session, users[2])) == (await one.position(session, users[2]))
    assert await two.admit_next(session, 10) == users[2:]
    assert await one.remove(session, users[5]) is True
    assert not await two.is_admitted(session, users[5])


async def test_two_processes_admitting_at_once_never_admit_a_buyer_twice(
    stores: tuple[RedisWaitingRoomStore, RedisWaitingRoomStore],
) -> None:
    """Racing joins and admissions through two processes: each buyer admitted once."""
    one, two = stores
    session = SessionId(uuid4())
    users = [UserId(uuid4()) for _ in range(200)]
    tickets = await asyncio.gather(
        *((one if n % 2 else two).join(session, u) for n, u in enumerate(users))
    )
    assert sorted(t.position for t in tickets) == list(range(1, 201))
    batches = await asyncio.gather(
        *((one if n % 2 else two).admit_next(session, 7) for n in range(40))
    )
    admitted = [user for batch in batches for user in batch]
    assert len(admitted) == len(set(admitted)) == 200
    assert await one.length(session) == 0


async def test_a_sessions_keys_share_a_hash_tag_and_expire(
    redis_client: aioredis.Redis, key_prefix: str
) -> None:
    """Every key of a session is tagged ``{session_id}`` (one cluster slot) and has a TTL;
    so has the one key naming the rooms."""
    store = RedisWaitingRoomStore(
        redis_client, SystemClock(), prefix=key_prefix, idle_ttl=timedelta(hours=1)
    )
    session = SessionId(uuid4())
    await store.join(session, UserId(uuid4()))
    await store.join(session, UserId(uuid4()))
    await store.admit_next(session, 1)
    await store.lease(session, "api-1", timedelta(seconds=30))
    keys = sorted([key.decode() async for key in redis_client.scan_iter(match=f"{key_prefix}*")])
    own = sorted([*store.keys(session), store.lease_key(session)])
    assert keys == sorted([*own, store.rooms_key])
    assert all(key.startswith(key_prefix) and key.endswith(f"{{{session}}}") for key in own)
    for key in keys:
        assert 0 < await redis_client.pttl(key) <= 3_600_000


async def test_stores_with_other_prefixes_do_not_meet(
    redis_client: aioredis.Redis, key_prefix: str
) -> None:
    """Two deployments on one server (two prefixes) have separate waiting rooms."""
    clock = SystemClock()
    one = RedisWaitingRoomStore(redis_client, clock, prefix=f"{key_prefix}one:")
    two = RedisWaitingRoomStore(redis_client, clock, prefix=f"{key_prefix}two:")
    session, user = SessionId(uuid4()), UserId(uuid4())
    await one.join(session, user)
    assert await two.position(session, user) is None
    assert await two.length(session) == 0
    assert await two.admit_next(session, 1) == []


async def test_two_processes_see_the_same_rooms_and_lease(
    stores: tuple[RedisWaitingRoomStore, RedisWaitingRoomStore],
) -> None:
    """A room joined through one process is listed by the other; the lease is one."""
    one, two = stores
    session = SessionId(uuid4())
    await one.join(session, UserId(uuid4()))
    assert session in await two.rooms()
    assert await one.lease(session, "api-1", timedelta(seconds=30)) is True
    assert await two.lease(session, "api-2", timedelta(seconds=30)) is False
    await two.release_lease(session, "api-1")  # whoever releases, only the holder's name does
    assert await one.lease(session, "api-2", timedelta(seconds=30)) is True


async def test_the_pre_queue_order_is_the_memory_stores_for_the_same_draws(
    redis_client: aioredis.Redis, key_prefix: str
) -> None:
    """The tickets are Python's (never Redis' Lua random): same seed, same order."""
    clock = FakeClock()
    redis_store = RedisWaitingRoomStore(
        redis_client, clock, prefix=key_prefix, draw=random.Random(7).random
    )
    memory_store = MemoryWaitingRoomStore(clock, draw=random.Random(7).random)
    session, opens = SessionId(uuid4()), clock.now() + timedelta(minutes=5)
    users = [UserId(uuid4()) for _ in range(200)]
    for user in users:
        await redis_store.join(session, user, pre_queue_until=opens)
        await memory_store.join(session, user, pre_queue_until=opens)
    from_redis = await redis_store.admit_next(session, 200)
    assert from_redis == await memory_store.admit_next(session, 200)
    assert from_redis != users


async def test_tickets_one_bit_apart_keep_their_order(
    redis_client: aioredis.Redis, key_prefix: str
) -> None:
    """A ticket reaches the sorted set as the exact double that was drawn."""
    low, high = 0.5, math.nextafter(0.5, 1.0)
    draws = iter([high, low])
    clock = FakeClock()
    store = RedisWaitingRoomStore(redis_client, clock, prefix=key_prefix, draw=lambda: next(draws))
    session, opens = SessionId(uuid4()), clock.now() + timedelta(minutes=5)
    # were the tickets rounded to one score, the user ids would decide: first, then second
    first, second = UserId(UUID(int=1)), UserId(UUID(int=2))
    await store.join(session, first, pre_queue_until=opens)
    await store.join(session, second, pre_queue_until=opens)
    assert await store.admit_next(session, 2) == [second, first]


async def test_rooms_nobody_joined_for_the_idle_ttl_are_forgotten(
    redis_client: aioredis.Redis, key_prefix: str
) -> None:
    """The rooms key drops a session a whole idle TTL after its last join (store's clock)."""
    clock = FakeClock()
    store = RedisWaitingRoomStore(
        redis_client, clock, prefix=key_prefix, idle_ttl=timedelta(minutes=10)
    )
    old, recent = SessionId(uuid4()), SessionId(uuid4())
    await store.join(old, UserId(uuid4()))
    clock.advance(timedelta(minutes=6))
    await store.join(recent, UserId(uuid4()))
    assert set(await store.rooms()) == {old, recent}
    clock.advance(timedelta(minutes=5))
    assert await store.rooms() == [recent]
    assert await redis_client.zcard(store.rooms_key) == 1


async def test_a_process_names_a_room_at_most_about_once_a_second(
    redis_client: aioredis.Redis, key_prefix: str
) -> None:
    """Most joins are one round trip: the room's name is refreshed once a second."""
    clock = FakeClock()
    store = RedisWaitingRoomStore(redis_client, clock, prefix=key_prefix)
    session = SessionId(uuid4())
    await store.join(session, UserId(uuid4()))
    await redis_client.delete(store.rooms_key)
    clock.advance(0.5)
    await store.join(session, UserId(uuid4()))
    assert await store.rooms() == []  # not named again within the second
    clock.advance(0.5)
    await store.join(session, UserId(uuid4()))
    assert await store.rooms() == [session]


def test_an_admission_ttl_under_a_millisecond_is_refused(redis_client: aioredis.Redis) -> None:
    with pytest.raises(ValueError, match="admission_ttl"):
        RedisWaitingRoomStore(
            redis_client, SystemClock(), admission_ttl=timedelta(microseconds=500)
        )


@pytest.fixture
async def unreachable() -> AsyncIterator[RedisWaitingRoomStore]:
    """A store whose Redis does not answer (nothing listens on port 1)."""
    client = aioredis.Redis(
        host="127.0.0.1", port=1, socket_connect_timeout=1, retry=Retry(NoBackoff(), 0)
    )
    try:
        yield RedisWaitingRoomStore(client, SystemClock())
    finally:
        await client.aclose()


async def test_an_unreachable_server_is_adapter_unavailable(
    unreachable: RedisWaitingRoomStore,
) -> None:
    """Every operation raises ``AdapterUnavailable`` (from the driver's error)."""
    session, user = SessionId(uuid4()), UserId(uuid4())
    calls = [
        unreachable.join(session, user),
        unreachable.position(session, user),
        unreachable.admit_next(session, 1),
        unreachable.is_admitted(session, user),
        unreachable.remove(session, user),
        unreachable.length(session),
        unreachable.admitted_count(session),
        unreachable.rooms(),
        unreachable.lease(session, "api-1", timedelta(seconds=5)),
        unreachable.release_lease(session, "api-1"),
    ]
    for call in calls:
        with pytest.raises(AdapterUnavailable, match="waiting room") as caught:
            await call
        assert caught.value.__cause__ is not None
