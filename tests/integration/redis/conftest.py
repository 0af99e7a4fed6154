"""Redis fixtures: every test gets its own key prefix; its keys are deleted afterwards."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

pytestmark = pytest.mark.redis


async def delete_prefixed(client: aioredis.Redis, prefix: str) -> int:
    """Delete every key that starts with ``prefix``; how many."""
    deleted = 0
    async for key in client.scan_iter(match=f"{prefix}*", count=1000):
        deleted += await client.delete(key)
    return deleted


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    """A client of the test server (bytes in, bytes out), closed at the end."""
    client = aioredis.Redis.from_url(redis_url)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def key_prefix(redis_client: aioredis.Redis) -> AsyncIterator[str]:
    """A key prefix of the test's own; every key under it is deleted when the test ends."""
    prefix = f"test:{uuid.uuid4().hex[:12]}:"
    try:
        yield prefix
    finally:
        await delete_prefixed(redis_client, prefix)
