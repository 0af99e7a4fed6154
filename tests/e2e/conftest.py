"""The HTTP API in process: a fresh platform per test, demo data seeded, fake clock."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import attrs
import pytest
from litestar.testing import AsyncTestClient

from openticket.adapters.memory import FakeClock, MemoryPasswordHasher
from openticket.entrypoints.bootstrap import build_container
from openticket.entrypoints.container import Container
from openticket.entrypoints.demo import seed_demo
from openticket.entrypoints.settings import Settings

PASSWORD = "demo-password-1"
JWT_SECRET = "e2e-signing-secret-of-at-least-32-bytes!"

pytestmark = pytest.mark.e2e


@attrs.define
class Api:
    """A client, the container behind it, and helpers to act as someone."""

    client: AsyncTestClient[Any]
    container: Container
    clock: FakeClock
    session_id: str

    async def token(self, email: str, password: str = PASSWORD) -> dict[str, str]:
        answer = await self.client.post(
            "/api/auth/token", json={"email": email, "password": password}
        )
        assert answer.status_code == 200, answer.text
        return {"Authorization": f"Bearer {answer.json()['access_token']}"}

    async def eventually(self, check: Callable[[], Awaitable[bool]], seconds: float = 3) -> None:
        """Wait until ``check()`` holds: the app runs its sweeper and saga in its own loop."""
        deadline = time.monotonic() + seconds
        while not await check():
            if time.monotonic() > deadline:
                raise AssertionError("the condition never held")
            await asyncio.sleep(0.02)

    async def buyer(self, name: str) -> dict[str, str]:
        email = f"{name}@example.com"
        answer = await self.client.post(
            "/api/auth/register",
            json={"email": email, "password": PASSWORD, "display_name": name.title()},
        )
        assert answer.status_code == 201, answer.text
        return await self.token(email)


@pytest.fixture
async def api() -> AsyncIterator[Api]:
    clock = FakeClock()
    container = build_container(
        Settings(
            hold_ttl_seconds=120,
            demo_password=PASSWORD,
            sweep_interval_seconds=0.02,
            jwt_secret=JWT_SECRET,
        ),
        clock=clock,
        password_hasher=MemoryPasswordHasher(),
    )
    demo = await seed_demo(container.app(), container.identity(), clock, PASSWORD)
    assert demo is not None
    async with AsyncTestClient(app=container.http_app()) as client:
        yield Api(client, container, clock, str(demo.session_id))
