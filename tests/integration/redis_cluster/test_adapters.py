"""Every other Redis adapter of the production profile on the cluster: the rate limiter,
the waiting room, the seat-status cache and the live-feed notifier pass their contracts;
the connection refuses a server that is not what the settings say."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from uuid import uuid4

import pytest
from redis.asyncio.cluster import RedisCluster

from openticket.adapters.redis.connection import RedisConnection, RedisNotAsConfigured
from openticket.adapters.redis.notifier import RedisNotifier
from openticket.adapters.redis.rate_limit import RedisRateLimiter
from openticket.adapters.redis.seat_cache import RedisSeatStatusCache
from openticket.adapters.redis.waiting_room import RedisWaitingRoomStore
from openticket.application.ports.clock import Clock
from openticket.application.ports.messaging import Notifier, SeatStatusChanged
from openticket.application.ports.rate_limit import RateLimiter
from openticket.application.ports.seat_cache import SeatStatusCache
from openticket.application.ports.waiting_room import WaitingRoomStore
from openticket.domain.seating import SeatStatus
from openticket.domain.shared import AreaId, SessionId
from openticket.testing.contracts import (
    InRealTime,
    NotifierContract,
    RateLimiterContract,
    SeatStatusCacheContract,
)
from openticket.testing.contracts._builders import T0, seat
from openticket.testing.contracts.waiting_room import ScriptedDraws, WaitingRoomStoreContract

from .conftest import (
    MASTERS,
    LocalCluster,
    binary,
    free_ports,
    pings,
    sessions_on_every_master,
    until,
)

pytestmark = pytest.mark.redis_cluster

WITHIN = 5.0
"""Seconds a test waits for something that should happen."""


class TestRedisRateLimiterOnACluster(InRealTime, RateLimiterContract):
    # stepping to the millisecond needs a FakeClock (the single-server suite runs it)
    test_a_request_counts_until_exactly_one_window_later = None

    window = timedelta(seconds=0.5)
    tolerance = 0.1
    slack = 0.01

    @pytest.fixture
    async def rate_limiter(
        self, cluster_client: RedisCluster, clock: Clock, key_prefix: str
    ) -> RateLimiter:
        return RedisRateLimiter(cluster_client, clock, prefix=key_prefix)


class TestRedisWaitingRoomStoreOnACluster(InRealTime, WaitingRoomStoreContract):
    admission_ttl = 0.6
    # stepping to the millisecond needs a FakeClock (the single-server suite runs them)
    test_an_admission_ends_exactly_at_admitted_until = None
    test_the_pre_queue_closes_exactly_at_pre_queue_until = None
    slack = 0.0

    @pytest.fixture
    async def waiting_room(
        self, cluster_client: RedisCluster, key_prefix: str, clock: Clock, draws: ScriptedDraws
    ) -> WaitingRoomStore:
        return RedisWaitingRoomStore(
            cluster_client,
            clock,
            prefix=key_prefix,
            admission_ttl=timedelta(seconds=self.admission_ttl),
            draw=draws,
        )


class TestRedisSeatStatusCacheOnACluster(SeatStatusCacheContract):
    @pytest.fixture
    def seat_cache(self, cluster_client: RedisCluster, key_prefix: str) -> SeatStatusCache:
        return RedisSeatStatusCache(cluster_client, prefix=key_prefix)


class TestRedisNotifierOnACluster(NotifierContract):
    """Subscribed on one node, hearing what is published on every master."""

    receive_timeout = WITHIN
    hears_only_what_follows_its_join = False  # PUBLISH crosses the cluster bus late

    @pytest.fixture
    async def notifier(
        self, cluster_client: RedisCluster, key_prefix: str
    ) -> AsyncIterator[Notifier]:
        notifier = RedisNotifier(cluster_client, prefix=key_prefix)
        await notifier.start()
        try:
            yield notifier
        finally:
            await notifier.stop()


# --- sessions on every master at once -----------------------------------------------------


async def test_one_batch_of_seat_changes_reaches_three_masters(
    redis_cluster: LocalCluster, cluster_client: RedisCluster
) -> None:
    """An event pump's batch spans sessions, hence slots: one call, every change kept."""
    cache = RedisSeatStatusCache(cluster_client, prefix="p:")
    sessions = list(sessions_on_every_master(redis_cluster, cache.key).values())
    statuses = (SeatStatus.HELD, SeatStatus.SOLD, SeatStatus.AVAILABLE)
    changes = [
        SeatStatusChanged(session_id=s, seat_id=seat("A", 1, n), status=statuses[n % 3], at=T0)
        for n in range(1, 7)
        for s in sessions
    ]
    await cache.apply(changes)
    for session in sessions:
        await cache.mark_complete(session, AreaId("A"))
        assert dict(await cache.statuses(session)) == {
            seat("A", 1, n): statuses[n % 3] for n in (1, 3, 4, 6)
        }
        assert await cache.complete_areas(session) == {AreaId("A")}
        await cache.clear(session)
        assert dict(await cache.statuses(session)) == {}


async def test_the_notifier_writes_the_seat_cache_before_the_news_on_every_master(
    redis_cluster: LocalCluster, cluster_client: RedisCluster, key_prefix: str
) -> None:
    """On a cluster the cache's writes go in a round trip of their own, first: a
    watcher who hears a change finds it in the cache, whichever master holds it."""
    cache = RedisSeatStatusCache(cluster_client, prefix=key_prefix)
    notifier = RedisNotifier(cluster_client, prefix=key_prefix, seat_cache=cache)
    await notifier.start()
    try:
        for session in sessions_on_every_master(redis_cluster, cache.key).values():
            change = SeatStatusChanged(
                session_id=session, seat_id=seat("A", 1, 1), status=SeatStatus.SOLD, at=T0
            )
            async with notifier.watch_seats(session) as feed:
                await notifier.publish([change])
                assert await asyncio.wait_for(anext(feed), 5) == change
                assert dict(await cache.statuses(session)) == {seat("A", 1, 1): SeatStatus.SOLD}
            await cache.clear(session)
    finally:
        await notifier.stop()


async def test_a_watcher_hears_what_another_process_publishes_for_every_master(
    redis_cluster: LocalCluster, cluster_client: RedisCluster, key_prefix: str
) -> None:
    """PUBLISH goes to the channel's master; the watcher's node hears it over the bus."""
    other = RedisCluster.from_url(redis_cluster.url)
    watching = RedisNotifier(cluster_client, prefix=key_prefix)
    publishing = RedisNotifier(other, prefix=key_prefix)
    sessions = [SessionId(uuid4()) for _ in range(12)]  # channels over every master
    changes = {
        s: [
            SeatStatusChanged(session_id=s, seat_id=seat("A", 1, n), status=st, at=T0)
            for n, st in enumerate((SeatStatus.HELD, SeatStatus.SOLD, SeatStatus.AVAILABLE), 1)
        ]
        for s in sessions
    }
    try:
        async with contextlib.AsyncExitStack() as stack:
            feeds = {s: await stack.enter_async_context(watching.watch_seats(s)) for s in sessions}
            await publishing.publish(
                [c for batch in zip(*changes.values(), strict=True) for c in batch]
            )
            for s, feed in feeds.items():
                got = [await asyncio.wait_for(anext(feed), WITHIN) for _ in changes[s]]
                assert got == changes[s]
    finally:
        await watching.stop()
        await publishing.stop()
        await other.aclose()


# --- the connection -----------------------------------------------------------------------


async def test_the_connection_finds_the_cluster_from_one_node_and_reports_it_ready(
    redis_cluster: LocalCluster,
) -> None:
    replica = next(
        p for p in redis_cluster.ports if redis_cluster.info(p, "replication")["role"] == "slave"
    )
    connection = RedisConnection(f"redis://127.0.0.1:{replica}/0", cluster=True)
    await connection.start()
    try:
        assert await connection.ping()
        assert isinstance(connection.client, RedisCluster)
        assert len(connection.client.get_primaries()) == MASTERS
        assert "a cluster node" in connection.where
    finally:
        await connection.stop()


async def test_a_cluster_node_named_without_the_cluster_setting_is_refused(
    redis_cluster: LocalCluster,
) -> None:
    """A plain client would reach only a third of the slots: refused at start, saying why."""
    connection = RedisConnection(redis_cluster.url)
    try:
        with pytest.raises(RedisNotAsConfigured, match="OPENTICKET_REDIS_CLUSTER=true"):
            await connection.start()
    finally:
        await connection.stop()


@pytest.fixture
def single_server(tmp_path: Path) -> Iterator[int]:
    """A redis-server of the test's own, not in cluster mode; its port."""
    (port,) = free_ports(1)
    proc = subprocess.Popen(  # noqa: S603  # the server, our arguments
        [binary("redis-server"), "--bind", "127.0.0.1", "--port", str(port), "--save", "",
         "--appendonly", "no", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        until(time.monotonic() + 10, f"the server on {port} never answered", lambda: pings(port))
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def test_the_cluster_setting_on_a_single_server_is_refused(single_server: int) -> None:
    connection = RedisConnection(f"redis://127.0.0.1:{single_server}/0", cluster=True)
    try:
        with pytest.raises(RedisNotAsConfigured, match="not a cluster node"):
            await connection.start()
    finally:
        await connection.stop()
