"""The HTTP API in process: a fresh platform per test, demo data seeded, fake clock.

With ``OPENTICKET_E2E_STORAGE=postgres`` the platform keeps its data in PostgreSQL
(``OPENTICKET_TEST_DATABASE_URL``), in a fresh schema per test that is dropped after
it: the same suite then checks the API on the production persistence.

With ``OPENTICKET_E2E_STORAGE=production`` the tests marked ``production`` run against
a real deployment of the production profile instead, one per test: ``openticket
serve`` and two ``openticket worker`` processes on PostgreSQL, Redis and NATS, spoken
to over HTTP (those tests use neither the fake clock nor the container).
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
import httpx
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

    client: AsyncTestClient[Any] | httpx.AsyncClient
    container: Container | None
    """None against a deployment of the production profile."""
    clock: FakeClock | None
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


PROFILE = os.environ.get("OPENTICKET_E2E_STORAGE", "memory")
ON_POSTGRES = PROFILE == "postgres"
IN_PRODUCTION = PROFILE == "production"


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
def production_env(request: pytest.FixtureRequest) -> dict[str, str] | None:
    """The deployment's settings with OPENTICKET_E2E_STORAGE=production, else None.

    A plain fixture, so that it may ask for the services' (async) fixtures.
    """
    if not IN_PRODUCTION:
        return None
    if request.node.get_closest_marker("production") is None:
        raise pytest.UsageError(f"{request.node.nodeid} is not marked production: -m production")
    return {
        **request.getfixturevalue("production"),
        "OPENTICKET_DEMO_PASSWORD": PASSWORD,
        "OPENTICKET_JWT_SECRET": JWT_SECRET,
    }


@contextlib.asynccontextmanager
async def deployment(request: pytest.FixtureRequest, env: dict[str, str]) -> AsyncIterator[Api]:
    """serve + two workers of the production profile, and a client of the API."""
    serve, worker = (
        request.getfixturevalue("serve_process"),
        request.getfixturevalue("worker_process"),
    )
    last = int(env["OPENTICKET_PARTITIONS"]) - 1
    half = last // 2
    with (
        worker(env, f"0-{half}", "e2e-1"),
        worker(env, f"{half + 1}-{last}", "e2e-2"),
        serve(env, demo=True) as (base, _),  # the tests buy from the demo sale
    ):
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            events = (await client.get("/api/events")).json()["items"]
            details = (await client.get(f"/api/events/{events[0]['event_id']}")).json()
            session_id = str(details["sessions"][0]["session_id"])
            yield Api(client, None, None, session_id)


@pytest.fixture
async def api(
    request: pytest.FixtureRequest, production_env: dict[str, str] | None
) -> AsyncIterator[Api]:
    if production_env is not None:
        async with deployment(request, production_env) as remote:
            yield remote
        return
    async with in_process(request) as local:
        yield local


@contextlib.asynccontextmanager
async def in_process(
    request: pytest.FixtureRequest, *, replacing: dict[str, Any] | None = None, **settings: Any
) -> AsyncIterator[Api]:
    """The platform in process on the storage under test, as the ``api`` fixture builds it.

    ``settings`` go on top of the e2e ones; ``replacing`` names container providers to
    replace (e.g. ``{"notifier": ...}``).
    """
    clock = FakeClock()
    async with storage(request) as stored_in:
        container = build_container(
            Settings(
                **{
                    "hold_ttl_seconds": 120,
                    "demo_password": PASSWORD,
                    "sweep_interval_seconds": 0.02,
                    "jwt_secret": JWT_SECRET,
                    # the suites' buyers order within a fake millisecond of their
                    # admission, from one client: test_bot_defence turns it on
                    "bot_defence": False,
                    **stored_in,
                    **settings,
                }
            ),
            clock=clock,
            password_hasher=MemoryPasswordHasher(),
            **(replacing or {}),
        )
        session_id = await seeded(container, clock, PASSWORD)
        async with AsyncTestClient(app=container.http_app()) as client:
            yield Api(client, container, clock, session_id)


@pytest.fixture
async def served(
    request: pytest.FixtureRequest, production_env: dict[str, str] | None
) -> AsyncIterator[Api]:
    """``openticket serve`` of this run's profile, spoken to over real HTTP.

    The embedded profile (in memory), or serve on PostgreSQL (``OPENTICKET_E2E_STORAGE=
    postgres``), or serve and two workers of the production profile; demo data seeded.
    """
    if production_env is not None:
        async with deployment(request, production_env) as remote:
            yield remote
        return
    env = {
        "OPENTICKET_DEMO_PASSWORD": PASSWORD,
        "OPENTICKET_JWT_SECRET": JWT_SECRET,
        "OPENTICKET_BOT_DEFENCE": "false",
    }
    serve = request.getfixturevalue("serve_process")
    async with storage(request) as stored_in:
        env |= {f"OPENTICKET_{name.upper()}": value for name, value in stored_in.items()}
        if stored_in:  # the tests' one client makes every request: limits only slow it
            env |= {"OPENTICKET_RATE_LIMIT_PER_IP": "0", "OPENTICKET_RATE_LIMIT_PER_USER": "0"}
        with serve(env, demo=True) as (base, _):
            async with httpx.AsyncClient(base_url=base, timeout=30) as client:
                events = (await client.get("/api/events")).json()["items"]
                details = (await client.get(f"/api/events/{events[0]['event_id']}")).json()
                yield Api(client, None, None, str(details["sessions"][0]["session_id"]))
