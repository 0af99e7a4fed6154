"""A hold really runs out: a 2-second TTL on the wall clock, the sweeper doing its work."""

from __future__ import annotations

import asyncio

import pytest
from litestar.testing import AsyncTestClient

from openticket.adapters.memory import MemoryPasswordHasher
from openticket.entrypoints.bootstrap import build_container
from openticket.entrypoints.demo import seed_demo
from openticket.entrypoints.settings import Settings

pytestmark = pytest.mark.e2e


async def test_an_unpaid_order_expires_after_its_ttl_and_the_seat_is_free_again() -> None:
    container = build_container(
        Settings(hold_ttl_seconds=2, sweep_interval_seconds=0.1, demo_password="demo-password-1"),
        password_hasher=MemoryPasswordHasher(),
    )
    demo = await seed_demo(container.app(), container.identity(), container.clock(), "x" * 10)
    assert demo is not None
    async with AsyncTestClient(app=container.http_app()) as client:
        await client.post(
            "/api/auth/register",
            json={"email": "t@example.com", "password": "a-long-password", "display_name": "T"},
        )
        token = (
            await client.post(
                "/api/auth/token", json={"email": "t@example.com", "password": "a-long-password"}
            )
        ).json()["access_token"]
        me = {"Authorization": f"Bearer {token}"}
        order = (
            await client.post(
                "/api/orders",
                json={"session_id": str(demo.session_id), "seat_ids": ["B-1-1"]},
                headers=me,
            )
        ).json()
        assert order["status"] == "created"
        await asyncio.sleep(1.0)
        still = await client.get(f"/api/orders/{order['order_id']}", headers=me)
        assert still.json()["status"] == "created"
        await asyncio.sleep(1.6)
        gone = await client.get(f"/api/orders/{order['order_id']}", headers=me)
        assert gone.json()["status"] == "expired"
        seats = (await client.get(f"/api/sessions/{demo.session_id}/seats")).json()["items"]
        assert next(s for s in seats if s["seat_id"] == "B-1-1")["status"] == "available"
        late = await client.post(
            f"/api/orders/{order['order_id']}/payments", json={"provider": "mock"}, headers=me
        )
        assert late.status_code == 409
