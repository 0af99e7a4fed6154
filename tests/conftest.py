"""Shared fixtures: where the real services are, and what happens when one is missing.

Integration tests read ``OPENTICKET_TEST_DATABASE_URL``, ``OPENTICKET_TEST_REDIS_URL``
and ``OPENTICKET_TEST_NATS_URL``. When ``CI`` is set a service that cannot be reached
fails the test; on a developer's machine the test is skipped with the reason.
"""

from __future__ import annotations

import os

import pytest

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_NATS_URL = "nats://127.0.0.1:4222"


def service_missing(name: str, url: str, error: BaseException) -> None:
    """Fail in CI, skip elsewhere: a missing service never passes silently in CI."""
    message = f"{name} at {url} is not reachable: {error!r}"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def database_url() -> str:
    """URL of a reachable PostgreSQL server."""
    import psycopg

    url = os.environ.get("OPENTICKET_TEST_DATABASE_URL", DEFAULT_DATABASE_URL)
    try:
        with psycopg.connect(url, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as e:
        service_missing("PostgreSQL", url, e)
    return url


@pytest.fixture(scope="session")
def redis_url() -> str:
    """URL of a reachable Redis server."""
    import redis

    url = os.environ.get("OPENTICKET_TEST_REDIS_URL", DEFAULT_REDIS_URL)
    client = redis.Redis.from_url(url, socket_connect_timeout=5)
    try:
        client.ping()
    except redis.RedisError as e:
        service_missing("Redis", url, e)
    finally:
        client.close()
    return url


@pytest.fixture(scope="session")
def nats_url() -> str:
    """URL of a reachable NATS server with JetStream enabled."""
    import asyncio

    import nats
    from nats.errors import Error as NatsError

    url = os.environ.get("OPENTICKET_TEST_NATS_URL", DEFAULT_NATS_URL)

    async def check() -> None:
        nc = await nats.connect(url, connect_timeout=5, max_reconnect_attempts=0)
        try:
            await nc.jetstream().account_info()
        finally:
            await nc.close()

    try:
        asyncio.run(check())
    except (NatsError, OSError, TimeoutError) as e:
        service_missing("NATS JetStream", url, e)
    return url
