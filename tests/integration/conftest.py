"""Fixtures every integration test may use: a PostgreSQL schema of the test's own, and
``openticket serve`` as a real process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

import httpx
import psycopg
import pytest
import redis.asyncio as aioredis
from psycopg import sql


async def drop_schema(database_url: str, schema: str) -> None:
    """Drop a test's schema and everything in it."""
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await conn.execute(
            sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
        )


@pytest.fixture
async def schema_name(database_url: str) -> AsyncIterator[str]:
    """A schema name of the test's own, not created yet; dropped (if it was) at the end."""
    name = f"test_{uuid.uuid4().hex[:16]}"
    try:
        yield name
    finally:
        await drop_schema(database_url, name)


ServeProcess = Callable[[dict[str, str]], AbstractContextManager[tuple[str, str]]]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def _serving(env: dict[str, str]) -> Iterator[tuple[str, str]]:
    port = _free_port()
    proc = subprocess.Popen(  # noqa: S603  # our own command
        [sys.executable, "-m", "openticket.entrypoints.cli", "serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **env},
    )
    assert proc.stdout is not None
    seen: list[str] = []
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            seen.append(line)
            if line.startswith("press Ctrl+C") or (not line and proc.poll() is not None):
                break
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        else:
            raise AssertionError("the server never got ready:\n" + "".join(seen))
        yield base, "".join(seen)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def serve_process() -> ServeProcess:
    """``with serve_process(env) as (base_url, printed):`` runs ``openticket serve``.

    The process gets the test's environment plus ``env``, on a free port; the block
    starts once ``/health/ready`` answers 200, and the process is stopped after it.
    """
    return _serving


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
