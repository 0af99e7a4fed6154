"""The platform with its seat locks in NATS JetStream KV (``OPENTICKET_LOCK_STORE=nats``)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import pytest
from nats.aio.client import Client
from nats.js.errors import NotFoundError

from openticket.adapters.memory import MemoryPasswordHasher
from openticket.adapters.nats.streams import stream_name
from openticket.adapters.system import SystemClock
from openticket.application.facade import OpenTicket
from openticket.entrypoints.bootstrap import build_container
from openticket.entrypoints.container import Container
from openticket.entrypoints.settings import Settings
from openticket.testing.world import World, build_world, race_for_one_seat

pytestmark = pytest.mark.nats


@pytest.fixture
async def container(nats_url: str, nats_client: Client, unique: str) -> AsyncIterator[Container]:
    """A started platform whose seat locks live in a KV bucket of the test's own."""
    prefix = f"T{unique}"
    built = build_container(
        Settings(
            nats_url=nats_url,
            nats_prefix=prefix,
            lock_store="nats",
            seat_actors="local",
            partitions=4,
        ),
        clock=SystemClock(),
        password_hasher=MemoryPasswordHasher(),
    )
    app: OpenTicket = built.app()
    await app.start(sweeper=False)
    try:
        yield built
    finally:
        await app.stop()
        with contextlib.suppress(NotFoundError):
            await nats_client.jetstream().delete_key_value(stream_name("openticket_seats", prefix))


async def test_a_thousand_buyers_racing_for_one_seat_get_it_once(container: Container) -> None:
    """Through the partition actor and this lock store: one grant, 999 refusals."""
    world = await build_world(container.app(), container.clock())
    assert await race_for_one_seat(world, "A-1-1", 1000) == 1


async def test_a_purchase_on_the_kv_lock_store_ends_in_tickets_and_readiness_names_nats(
    container: Container,
) -> None:
    """Order, pay, tickets with KV locks; ``/health/ready`` reports ``nats: ok``."""
    app: OpenTicket = container.app()
    world: World = await build_world(app, container.clock())
    assert (await app.readiness())["nats"] == "ok"
    buyer = world.buyer(1)
    order = await app.place_order(buyer, world.session_id, ["A-1-2", "A-1-3"])
    await app.pay(buyer, order.order_id)
    tickets = await app.list_tickets(buyer)
    assert sorted(t.seat_id for t in tickets.items) == ["A-1-2", "A-1-3"]
