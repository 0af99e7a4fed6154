"""The platform with its seat locks, cache, feeds and limits on a Redis Cluster, in one
process: configured with one node's URL and ``redis_cluster``, as an operator would."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

import pytest

from openticket.adapters.memory import MemoryPasswordHasher
from openticket.adapters.redis.lock_store import RedisLockStore
from openticket.adapters.system import SystemClock
from openticket.application.facade import OpenTicket
from openticket.domain.ordering import OrderStatus
from openticket.domain.seating import SeatStatus
from openticket.domain.shared import AreaId, SessionId
from openticket.entrypoints.bootstrap import build_container
from openticket.entrypoints.container import Container
from openticket.entrypoints.settings import Settings, SettingsError
from openticket.testing.world import World, build_world, race_for_one_seat

from .conftest import MASTERS, LocalCluster

pytestmark = pytest.mark.redis_cluster


@pytest.fixture
async def container(redis_cluster: LocalCluster, key_prefix: str) -> AsyncIterator[Container]:
    """A started platform whose Redis is the cluster, reached through one node's URL."""
    settings = Settings.from_env(
        {
            "OPENTICKET_REDIS_URL": redis_cluster.url,
            "OPENTICKET_REDIS_CLUSTER": "true",
            "OPENTICKET_REDIS_PREFIX": key_prefix,
            "OPENTICKET_PARTITIONS": "4",
        }
    )
    built = build_container(settings, clock=SystemClock(), password_hasher=MemoryPasswordHasher())
    app: OpenTicket = built.app()
    await app.start(sweeper=False)
    try:
        yield built
    finally:
        await app.stop()


@pytest.fixture
async def world(container: Container) -> World:
    """A session on sale."""
    return await build_world(container.app(), container.clock())


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("", "OPENTICKET_REDIS_CLUSTER=true: needs OPENTICKET_REDIS_URL (any node of the cluster)"),
        ("redis://10.0.0.5:6379/2", "has only database 0"),
        ("unix:///run/redis.sock", "is reached over TCP"),
    ],
)
def test_the_cluster_setting_needs_a_nodes_tcp_url_on_database_0(url: str, problem: str) -> None:
    with pytest.raises(SettingsError, match=re.escape(problem)):
        Settings.from_env({"OPENTICKET_REDIS_CLUSTER": "true", "OPENTICKET_REDIS_URL": url})


async def test_the_platform_uses_the_cluster_and_is_ready(container: Container) -> None:
    app: OpenTicket = container.app()
    assert isinstance(container.lock_store(), RedisLockStore)
    assert (await app.readiness())["redis"] == "ok"


async def test_a_thousand_buyers_racing_for_one_seat_get_it_once(world: World) -> None:
    """Through the partition actor and the lock store on the session's master."""
    assert await race_for_one_seat(world, "A-1-1", 1000) == 1


async def worlds_on_every_master(
    app: OpenTicket, cluster: LocalCluster, prefix: str
) -> list[World]:
    """Sessions on sale until their seat locks live on every master."""
    by_master: dict[int, World] = {}
    for _ in range(60):
        world = await build_world(app, SystemClock())
        master = cluster.master_of(f"{prefix}seat:token:{{{world.session_id}}}")
        by_master.setdefault(master, world)
        if len(by_master) == MASTERS:
            return list(by_master.values())
    raise AssertionError("60 sessions never covered every master")


async def test_buyers_of_sessions_on_every_master_hold_pay_and_get_their_tickets(
    container: Container, redis_cluster: LocalCluster, key_prefix: str
) -> None:
    """A sale: each buyer holds seats of their own, pays with the mock, gets tickets."""
    app: OpenTicket = container.app()
    worlds = await worlds_on_every_master(app, redis_cluster, key_prefix)
    picks = [["A-1-1", "A-1-2"], ["A-1-3"], ["A-2-1", "A-2-2", "A-2-3"], ["B-1-1"], ["B-1-2"]]

    async def buy(world: World, n: int, seats: list[str]) -> None:
        buyer = world.buyer(n)
        order = await app.place_order(buyer, world.session_id, seats)
        await app.pay(buyer, order.order_id)
        done = await app.get_order(buyer, order.order_id)
        assert done.status is OrderStatus.COMPLETED, done.status

    await asyncio.gather(
        *(buy(w, n, seats) for w in worlds for n, seats in enumerate(picks, start=1))
    )
    await app.seating.flush_events()
    sold = {s for seats in picks for s in seats}
    store = container.lock_store()
    for world in worlds:
        for n, seats in enumerate(picks, start=1):
            tickets = (await app.list_tickets(world.buyer(n))).items
            mine = sorted(t.seat_id for t in tickets if t.session_id == world.session_id)
            assert mine == sorted(seats)
        statuses = {view.seat_id: view.status for view in await app.seats(world.session_id)}
        assert {s for s, st in statuses.items() if st is SeatStatus.SOLD} == sold
        assert {s for s, st in statuses.items() if st is SeatStatus.HELD} == set()
        in_store: set[str] = set()
        for area in ("A", "B"):
            in_store |= set((await store.load(world.session_id, AreaId(area))).sold)
        assert in_store == sold
        # the seat map came from the shared cache, on the session's master
        assert await container.seat_cache().complete_areas(SessionId(world.session_id))
