"""The Redis connection of a process: one client (with its pool) for every Redis adapter."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from openticket.application.ports.errors import AdapterUnavailable


class RedisUnreachable(AdapterUnavailable):
    """Redis did not answer (down, wrong address, refused the login)."""


def where(url: str) -> str:
    """Host, port and database of a Redis URL, without credentials."""
    parts = urlsplit(url)
    database = parts.path.lstrip("/") or "0"
    return f"{parts.hostname or 'localhost'}:{parts.port or 6379}/{database}"


class RedisConnection:
    """Owns the client the Redis adapters share; a ``Component`` and a health check."""

    def __init__(self, url: str, *, timeout: float = 5.0, max_connections: int = 64) -> None:
        self.url = url
        self._timeout = timeout
        # a blocking pool: more calls in flight than connections wait for one (up to
        # ``timeout``) instead of failing with "too many connections"
        pool = aioredis.BlockingConnectionPool.from_url(
            url,
            max_connections=max_connections,
            timeout=timeout,
            socket_connect_timeout=timeout,
            socket_timeout=timeout,
            health_check_interval=30,
        )
        self.client: aioredis.Redis = aioredis.Redis(connection_pool=pool)

    @property
    def where(self) -> str:
        """Where the server is, for people."""
        return where(self.url)

    async def start(self) -> None:
        """Check that Redis answers; ``RedisUnreachable`` naming where and why if not."""
        try:
            await asyncio.wait_for(self.client.ping(), self._timeout)
        except (RedisError, OSError, TimeoutError) as e:
            reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise RedisUnreachable(f"cannot reach Redis at {self.where}: {reason}") from e

    async def stop(self) -> None:
        """Close the client's connections (a later use opens new ones)."""
        await self.client.connection_pool.disconnect()

    async def ping(self) -> bool:
        """Whether Redis answers now (readiness)."""
        try:
            return bool(await asyncio.wait_for(self.client.ping(), self._timeout))
        except (RedisError, OSError, TimeoutError):
            return False
