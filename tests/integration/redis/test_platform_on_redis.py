"""The platform with its seat locks, feeds and limits in Redis, in one process."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from openticket.adapters.memory import MemoryPasswordHasher
from openticket.adapters.system import SystemClock
from openticket.application.facade import OpenTicket
from openticket.domain.seating import SeatStatus
from openticket.entrypoints.bootstrap import build_container
from openticket.entrypoints.container import Container
from openticket.entrypoints.settings import Settings
from openticket.testing.world import World, build_world, race_for_one_seat

pytestmark = pytest.mark.redis

BENCHMARK = Path(__file__).parents[3] / "benchmarks" / "flash_sale.py"


@pytest.fixture
async def container(redis_url: str, key_prefix: str) -> AsyncIterator[Container]:
    """A started platform on the Redis lock store, under the test's key prefix."""
    built = build_container(
        Settings(redis_url=redis_url, redis_prefix=key_prefix, partitions=4),
        clock=SystemClock(),
        password_hasher=MemoryPasswordHasher(),
    )
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


async def test_a_thousand_buyers_racing_for_one_seat_get_it_once(world: World) -> None:
    """Through the partition actor and this lock store: one grant, 999 refusals."""
    assert await race_for_one_seat(world, "A-1-1", 1000) == 1


async def test_after_redis_lost_every_key_paid_holds_sell_and_new_holds_are_granted(
    container: Container, world: World, redis_client: aioredis.Redis, key_prefix: str
) -> None:
    """Reliability 28 on one process: the deployment's keys deleted mid-sale, as a Redis
    restarted without persistence (or flushed) would lose them."""
    from tests.conftest import delete_prefixed

    app: OpenTicket = container.app()
    paying = await app.place_order(world.buyer(1), world.session_id, ["A-1-1"])
    held = await app.place_order(world.buyer(2), world.session_id, ["A-1-2"])
    assert await delete_prefixed(redis_client, key_prefix) > 0
    await app.pay(world.buyer(1), paying.order_id)
    assert (await app.get_order(world.admin, paying.order_id)).status.value == "completed"
    fresh = await app.place_order(world.buyer(3), world.session_id, ["A-1-3"])
    assert fresh.fencing_token > held.fencing_token
    assert fresh.status.value == "created"


async def test_readiness_reports_redis_and_the_seat_map_comes_from_the_shared_cache(
    container: Container, world: World, redis_client: aioredis.Redis, key_prefix: str
) -> None:
    """``redis: ok``; after a hold the cache holds the area and the seat map shows it."""
    app: OpenTicket = container.app()
    assert (await app.readiness())["redis"] == "ok"
    order = await app.place_order(world.buyer(1), world.session_id, ["A-2-3"])
    await app.seating.flush_events()
    cache_key = f"{key_prefix}session:{{{world.session_id}}}:seats"
    assert await redis_client.hget(cache_key, "A-2-3") == b"held"
    seats = {view.seat_id: view.status for view in await app.seats(world.session_id)}
    assert seats["A-2-3"] is SeatStatus.HELD
    await app.cancel_order(world.buyer(1), order.order_id)
    await app.seating.flush_events()
    assert await redis_client.hget(cache_key, "A-2-3") is None
    seats = {view.seat_id: view.status for view in await app.seats(world.session_id)}
    assert seats["A-2-3"] is SeatStatus.AVAILABLE


def test_the_redis_benchmark_profile_reports_every_figure_and_cleans_up(
    redis_url: str,
) -> None:
    """A small ``--profile redis`` run: no double sale, the raw loop measured, no keys left."""
    run = subprocess.run(  # noqa: S603  # our own interpreter and script
        [
            sys.executable,
            str(BENCHMARK),
            "--profile",
            "redis",
            "--redis-url",
            redis_url,
            "--seats",
            "400",
            "--areas",
            "4",
            "--buyers",
            "2000",
            "--purchases",
            "200",
            "--concurrency",
            "20",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=180,
    )
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["profile"] == "redis"
    assert result["double_sales"] == 0
    assert result["holds_granted"] > 0
    assert result["purchases"] > 0
    assert result["raw_redis_setnx_per_s"] > 0
    assert "ratio_to_raw_redis" in result
    prefix = run.stderr.split("keys under ", 1)[1].split()[0].rstrip(":") + ":"
    import redis as sync_redis

    client = sync_redis.Redis.from_url(redis_url)
    try:
        assert list(client.scan_iter(match=f"{prefix}*")) == []
    finally:
        client.close()
