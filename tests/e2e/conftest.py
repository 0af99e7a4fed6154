"""The HTTP API in process: a fresh platform per test, demo data seeded, fake clock.

With ``OPENTICKET_E2E_STORAGE=postgres`` the platform keeps its data in PostgreSQL
(``OPENTICKET_TEST_DATABASE_URL``), in a fresh schema per test that is dropped after
it: the same suite then checks the API on the production persistence.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
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


ON_POSTGRES = os.environ.get("OPENTICKET_E2E_STORAGE", "memory") == "postgres"


@contextlib.asynccontextmanager
async def storage(request: pytest.FixtureRequest) -> AsyncIterator[dict[str, Any]]:
    """Settings of the storage under test: none in memory; a fresh schema on PostgreSQL."""
    if not ON_POSTGRES:
        yield {}
        return
    import psycopg
    from psycopg import sql

    from openticket.adapters.postgres import migrate

    url: str = request.getfixturevalue("database_url")
    schema = f"e2e_{uuid.uuid4().hex[:16]}"
    await migrate(url, schema=schema)
    try:
        yield {"database_url": url, "database_schema": schema}
    finally:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            await conn.execute(
                sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
            )


async def seeded(container: Container, clock: Any, password: str) -> str:
    """Seed the demo; the id of its session on sale.

    The app then runs in the test client's own event loop, so the database's pool
    opened here (in the test's loop) is closed: the app opens its own when it starts.
    """
    demo = await seed_demo(container.app(), container.identity(), clock, password)
    assert demo is not None
    if ON_POSTGRES:
        await container.postgres_database().stop()
    return str(demo.session_id)


@pytest.fixture
async def api(request: pytest.FixtureRequest) -> AsyncIterator[Api]:
    clock = FakeClock()
    async with storage(request) as stored_in:
        container = build_container(
            Settings(
                hold_ttl_seconds=120,
                demo_password=PASSWORD,
                sweep_interval_seconds=0.02,
                jwt_secret=JWT_SECRET,
                **stored_in,
            ),
            clock=clock,
            password_hasher=MemoryPasswordHasher(),
        )
        session_id = await seeded(container, clock, PASSWORD)
        async with AsyncTestClient(app=container.http_app()) as client:
            yield Api(client, container, clock, session_id)
