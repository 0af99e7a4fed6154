"""Shared fixtures: where the real services are, and what happens when one is missing;
schemas and key prefixes of a test's own; ``openticket serve`` and ``openticket worker``
as real processes; a deployment of the production profile.

Integration tests read ``OPENTICKET_TEST_DATABASE_URL``, ``OPENTICKET_TEST_REDIS_URL``
and ``OPENTICKET_TEST_NATS_URL``. When ``CI`` is set a service that cannot be reached
fails the test; on a developer's machine the test is skipped with the reason.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING

import httpx
import psycopg
import pytest
import redis.asyncio as aioredis
from psycopg import sql

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

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
    import concurrent.futures

    import nats
    from nats.errors import Error as NatsError

    url = os.environ.get("OPENTICKET_TEST_NATS_URL", DEFAULT_NATS_URL)

    async def check() -> None:
        nc = await nats.connect(url, connect_timeout=5, max_reconnect_attempts=0)
        try:
            await nc.jetstream().account_info()
        finally:
            await nc.close()

    try:  # in a thread of its own: the fixture may be asked for from a running loop
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, check()).result()
    except (NatsError, OSError, TimeoutError) as e:
        service_missing("NATS JetStream", url, e)
    return url


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


ServeProcess = Callable[..., AbstractContextManager[tuple[str, str]]]
"""``serve_process(env, port=None, demo=False)``: the base URL and what serve printed."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


CLI = [sys.executable, "-m", "openticket.entrypoints.cli"]


def _spawn(
    arguments: list[str], env: dict[str, str], ready: Callable[[str], bool], deadline: float
) -> tuple[subprocess.Popen[str], list[str]]:
    """``openticket <arguments>`` with the test's environment plus ``env``, read until a
    line it prints is ``ready`` (or it exits, or the deadline passes); what it printed."""
    proc = subprocess.Popen(  # noqa: S603  # our own command
        [*CLI, *arguments],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **env},
    )
    assert proc.stdout is not None
    seen: list[str] = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        seen.append(line)
        if ready(line) or (not line and proc.poll() is not None):
            break
    return proc, seen


def _drained(proc: subprocess.Popen[str], seen: list[str]) -> None:
    """Keep reading what the process prints into ``seen`` (a pipe nobody reads fills,
    and the process would block on its next line)."""
    assert proc.stdout is not None
    threading.Thread(target=seen.extend, args=(proc.stdout,), daemon=True).start()


def _stop(proc: subprocess.Popen[str], seen: list[str], *, timeout: float) -> None:
    """SIGTERM, and the process must exit within ``timeout``. If not, it prints its
    asyncio tasks (SIGUSR1), is killed, and the test fails with the end of its output."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGUSR1)
        time.sleep(1)
        proc.kill()
        proc.wait()
        time.sleep(0.2)  # the reader takes the last lines
        tail = "".join(seen)[-12000:]
        raise AssertionError(
            f"{' '.join(map(str, proc.args))} did not stop within {timeout} s of SIGTERM;"
            f" it printed:\n{tail}"
        ) from None


@contextmanager
def _serving(
    env: dict[str, str], port: int | None = None, *, demo: bool = False
) -> Iterator[tuple[str, str]]:
    port = port or _free_port()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    proc, seen = _spawn(
        ["serve", "--port", str(port), *(["--demo"] if demo else [])],
        env,
        lambda line: line.startswith("press Ctrl+C"),
        deadline,
    )
    _drained(proc, seen)
    try:
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
        _stop(proc, seen, timeout=10)


@pytest.fixture
def serve_process() -> ServeProcess:
    """``with serve_process(env) as (base_url, printed):`` runs ``openticket serve``.

    The process gets the test's environment plus ``env``, on a free port (or ``port=``),
    with ``--demo`` if ``demo=True`` (demo accounts and a sale on persistent storage too);
    the block starts once ``/health/ready`` answers 200, and the process is stopped
    after it.
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


WorkerProcess = Callable[[dict[str, str], str, str], AbstractContextManager[subprocess.Popen[str]]]


@contextmanager
def _working(env: dict[str, str], partitions: str, name: str) -> Iterator[subprocess.Popen[str]]:
    proc, seen = _spawn(
        ["worker", "--partitions", partitions, "--id", name],
        env,
        lambda line: "Ctrl+C to stop" in line,
        time.monotonic() + 30,
    )
    assert proc.poll() is None, "".join(seen)
    _drained(proc, seen)
    try:
        yield proc
    finally:
        _stop(proc, seen, timeout=15)


@pytest.fixture
def worker_process() -> WorkerProcess:
    """``with worker_process(env, "0-7", "w1") as proc:`` runs ``openticket worker``.

    The block starts once the worker says it serves, and the worker is stopped after it
    (unless the test killed it).
    """
    return _working


PRODUCTION_PARTITIONS = 4
DEMO_PASSWORD = "demo-password-1"


@contextlib.asynccontextmanager
async def production_deployment(
    database_url: str, redis_url: str, nats_url: str
) -> AsyncIterator[dict[str, str]]:
    """The settings every process of one production deployment shares, cleaned up after.

    PostgreSQL (a migrated schema of its own, dropped at the end), Redis (a key prefix
    of its own, its keys deleted) and NATS (a prefix of its own: its streams and
    buckets deleted).
    """
    import nats

    from openticket.adapters.nats.streams import stream_name
    from openticket.adapters.postgres import migrate

    schema = f"test_{uuid.uuid4().hex[:16]}"
    key_prefix = f"test:{uuid.uuid4().hex[:12]}:"
    nats_prefix = f"T{uuid.uuid4().hex[:10].upper()}"
    try:
        await migrate(database_url, schema=schema)
        yield {
            "OPENTICKET_DATABASE_URL": database_url,
            "OPENTICKET_DATABASE_SCHEMA": schema,
            "OPENTICKET_REDIS_URL": redis_url,
            "OPENTICKET_REDIS_PREFIX": key_prefix,
            "OPENTICKET_NATS_URL": nats_url,
            "OPENTICKET_NATS_PREFIX": nats_prefix,
            "OPENTICKET_LOCK_STORE": "redis",
            "OPENTICKET_PARTITIONS": str(PRODUCTION_PARTITIONS),
            "OPENTICKET_WORKER_LEASE_SECONDS": "1.5",
            "OPENTICKET_CONSUMER_ACK_WAIT_SECONDS": "3",
            "OPENTICKET_DEMO_PASSWORD": DEMO_PASSWORD,
            "OPENTICKET_JWT_SECRET": "production-profile-tests-signing-secret!",
            "OPENTICKET_RATE_LIMIT_PER_IP": "0",
            "OPENTICKET_RATE_LIMIT_PER_USER": "0",
            # one loopback client plays every buyer, at a machine's pace (as with the
            # rate limits): the bot defence's own tests turn it on
            "OPENTICKET_BOT_DEFENCE": "false",
        }
    finally:
        client = await nats.connect(nats_url, connect_timeout=5, allow_reconnect=False)
        try:
            js = client.jetstream()
            for stream in ("SEATS", "ORDERS", "PAYMENTS", "PARKED"):
                with contextlib.suppress(Exception):
                    await js.delete_stream(stream_name(stream, nats_prefix))
            for bucket in ("openticket_leases", "openticket_seats"):
                with contextlib.suppress(Exception):
                    await js.delete_key_value(stream_name(bucket, nats_prefix))
        finally:
            await client.close()
        redis = aioredis.Redis.from_url(redis_url)
        try:
            await delete_prefixed(redis, key_prefix)
        finally:
            await redis.aclose()
        await drop_schema(database_url, schema)


@pytest.fixture
async def production(
    *, database_url: str, redis_url: str, nats_url: str
) -> AsyncIterator[dict[str, str]]:
    """The settings every process of one production deployment shares (see
    ``production_deployment``)."""
    async with production_deployment(database_url, redis_url, nats_url) as env:
        yield env


SpanReader = Callable[[], "tuple[ReadableSpan, ...]"]
"""``spans()``: the spans this test finished so far, oldest first."""


@pytest.fixture(scope="session")
def _span_memory() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    """This test process's tracer provider, set up once as ``serve`` does, exporting to
    the SDK's in-memory exporter; the adapters' spans are off until a test asks."""
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from openticket.adapters import tracing
    from openticket.entrypoints.tracing import start_tracing

    exporter = InMemorySpanExporter()
    provider = start_tracing(
        "http://127.0.0.1:4318", service="openticket-test", instance="pytest", exporter=exporter
    )
    tracing.enable(False)
    try:
        yield provider, exporter
    finally:
        provider.shutdown()


@pytest.fixture
def spans(_span_memory: tuple[TracerProvider, InMemorySpanExporter]) -> Iterator[SpanReader]:
    """Tracing on for this test; ``spans()`` reads what it recorded."""
    from openticket.adapters import tracing

    provider, exporter = _span_memory
    exporter.clear()
    tracing.enable()

    def finished() -> tuple[ReadableSpan, ...]:
        provider.force_flush()
        return exporter.get_finished_spans()

    try:
        yield finished
    finally:
        tracing.enable(False)
