"""The production profile: ``openticket serve`` and two ``openticket worker`` processes on
PostgreSQL, Redis and NATS, including a worker killed with SIGKILL in the middle of a sale."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any
from uuid import UUID

import httpx
import nats
import psycopg
import pytest
import websockets
from nats.aio.client import Client
from nats.js.errors import NotFoundError

from openticket.adapters.nats.streams import stream_name, subject_name
from openticket.adapters.postgres import migrate
from openticket.application.seating.router import PartitionRouter
from openticket.domain.shared import AreaId, SessionId

if TYPE_CHECKING:
    from tests.integration.conftest import ServeProcess

pytestmark = [pytest.mark.nats, pytest.mark.postgres, pytest.mark.redis]

CLI = [sys.executable, "-m", "openticket.entrypoints.cli"]
PASSWORD = "demo-password-1"
PARTITIONS = 4


@contextlib.contextmanager
def worker(env: dict[str, str], partitions: str, name: str) -> Iterator[subprocess.Popen[str]]:
    """``openticket worker --partitions …`` until it says it serves; stopped at the end."""
    proc = subprocess.Popen(  # noqa: S603  # our own command
        [*CLI, "worker", "--partitions", partitions, "--id", name],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **env},
    )
    assert proc.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        seen.append(line)
        if "Ctrl+C to stop" in line or (not line and proc.poll() is not None):
            break
    assert proc.poll() is None, "".join(seen)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=15)


@pytest.fixture
async def production(  # one fixture per service
    *,
    database_url: str,
    redis_url: str,
    nats_url: str,
    nats_client: Client,
    schema_name: str,
    key_prefix: str,
    unique: str,
) -> AsyncIterator[dict[str, str]]:
    """The settings every process of one deployment shares; its NATS state deleted after."""
    await migrate(database_url, schema=schema_name)
    nats_prefix = f"T{unique}"
    yield {
        "OPENTICKET_DATABASE_URL": database_url,
        "OPENTICKET_DATABASE_SCHEMA": schema_name,
        "OPENTICKET_REDIS_URL": redis_url,
        "OPENTICKET_REDIS_PREFIX": key_prefix,
        "OPENTICKET_NATS_URL": nats_url,
        "OPENTICKET_NATS_PREFIX": nats_prefix,
        "OPENTICKET_LOCK_STORE": "redis",
        "OPENTICKET_PARTITIONS": str(PARTITIONS),
        "OPENTICKET_WORKER_LEASE_SECONDS": "1.5",
        "OPENTICKET_DEMO_PASSWORD": PASSWORD,
        "OPENTICKET_JWT_SECRET": "production-profile-tests-signing-secret!",
        "OPENTICKET_RATE_LIMIT_PER_IP": "0",
        "OPENTICKET_RATE_LIMIT_PER_USER": "0",
    }
    js = nats_client.jetstream()
    for stream in ("SEATS", "ORDERS", "PAYMENTS"):
        with contextlib.suppress(Exception):
            await js.delete_stream(stream_name(stream, nats_prefix))
    for bucket in (
        stream_name("openticket_leases", nats_prefix),
        stream_name("openticket_seats", nats_prefix),
    ):
        with contextlib.suppress(Exception):
            await js.delete_key_value(bucket)


async def _buyer(http: httpx.AsyncClient, name: str) -> dict[str, str]:
    email = f"{name}-{uuid.uuid4().hex[:6]}@example.com"
    registered = await http.post(
        "/api/auth/register", json={"email": email, "password": PASSWORD, "display_name": name}
    )
    assert registered.status_code == 201, registered.text
    token = await http.post("/api/auth/token", json={"email": email, "password": PASSWORD})
    return {"Authorization": f"Bearer {token.json()['access_token']}"}


async def _session(http: httpx.AsyncClient) -> str:
    events = (await http.get("/api/events")).json()["items"]
    details = (await http.get(f"/api/events/{events[0]['event_id']}")).json()
    return str(details["sessions"][0]["session_id"])


async def _buy(
    http: httpx.AsyncClient, me: dict[str, str], session_id: str, seats: list[str]
) -> tuple[int, Any]:
    placed = await http.post(
        "/api/orders", json={"session_id": session_id, "seat_ids": seats}, headers=me
    )
    if placed.status_code != 201:
        return placed.status_code, placed.json()
    order_id = placed.json()["order_id"]
    paid = await http.post(
        f"/api/orders/{order_id}/payments", json={"provider": "mock"}, headers=me
    )
    return paid.status_code, order_id


async def _eventually_stored(stream: str, subject: str) -> bytes:
    """The last message of ``subject``, once the relay has put it there."""
    nc = await nats.connect(os.environ.get("OPENTICKET_TEST_NATS_URL", "nats://127.0.0.1:4222"))
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                message = await nc.jetstream().get_last_msg(stream, subject)
            except NotFoundError:
                assert time.monotonic() < deadline, f"nothing on {subject}"
                await asyncio.sleep(0.2)
                continue
            assert message.data is not None
            return message.data
    finally:
        await nc.close()


def _double_sales(database_url: str, schema: str) -> int:
    with psycopg.connect(database_url) as conn:
        conn.execute(f'SET search_path TO "{schema}"')
        rows = conn.execute(
            "SELECT count(*) FROM (SELECT session_id, seat_id FROM tickets"
            " GROUP BY 1, 2 HAVING count(*) > 1) AS d"
        ).fetchone()
    assert rows is not None
    return int(rows[0])


def _tickets(database_url: str, schema: str) -> int:
    with psycopg.connect(database_url) as conn:
        conn.execute(f'SET search_path TO "{schema}"')
        row = conn.execute("SELECT count(*) FROM tickets").fetchone()
    assert row is not None
    return int(row[0])


async def test_one_api_and_two_workers_sell_a_session_and_survive_a_killed_worker(
    production: dict[str, str],
    serve_process: ServeProcess,
    database_url: str,
) -> None:
    env = production
    with serve_process(env) as (api, _):
        async with httpx.AsyncClient(base_url=api, timeout=15) as http:
            session_id = await _session(http)
            # the worker killed below prefers the partition of area A: its death must move it
            router = PartitionRouter(PARTITIONS)
            doomed = router.partition_of(SessionId(UUID(session_id)), AreaId("A"))
            others = ",".join(str(p) for p in range(PARTITIONS) if p != doomed)
            with worker(env, str(doomed), "w1") as first, worker(env, others, "w2"):
                await _sale_with_a_killed_worker(http, session_id, first, env, database_url)


async def _sale_with_a_killed_worker(
    http: httpx.AsyncClient,
    session_id: str,
    first: subprocess.Popen[str],
    env: dict[str, str],
    database_url: str,
) -> None:
    """A purchase, a stampede on one seat, then a sale during which ``first`` is killed."""
    me = await _buyer(http, "first")
    # a purchase through the workers: order, pay, tickets
    status, order_id = await _buy(http, me, session_id, ["A-1-1", "A-1-2"])
    assert status == 201, order_id
    order = (await http.get(f"/api/orders/{order_id}", headers=me)).json()
    assert order["status"] == "completed"
    # ...and its events left through the outbox onto the JetStream streams
    prefix = env["OPENTICKET_NATS_PREFIX"]
    completed = await _eventually_stored(
        stream_name("ORDERS", prefix), subject_name(f"order.completed.{order_id}", prefix)
    )
    assert json.loads(completed)["payload"]["order_id"] == order_id

    # a stampede on one seat: one order, the rest refused
    buyers = [await _buyer(http, f"fan{n}") for n in range(20)]
    answers = await asyncio.gather(
        *(
            http.post(
                "/api/orders",
                json={"session_id": session_id, "seat_ids": ["B-1-1"]},
                headers=b,
            )
            for b in buyers
        )
    )
    codes = sorted(a.status_code for a in answers)
    assert codes.count(201) == 1, codes
    assert set(codes) <= {201, 409}, codes

    # kill -9 one worker in the middle of a sale of every seat of rows 2-4 of both areas
    seats = [f"{area}-{row}-{n}" for row in (2, 3, 4) for area in ("A", "B") for n in range(1, 11)]
    sold_before = _tickets(database_url, env["OPENTICKET_DATABASE_SCHEMA"])
    queue = list(seats)
    outcomes: dict[str, int] = {}
    unavailable = 0

    async def keep_buying(buyer: dict[str, str]) -> None:
        nonlocal unavailable
        while queue:
            seat = queue.pop(0)
            deadline = time.monotonic() + 30
            while True:
                status, _ = await _buy(http, buyer, session_id, [seat])
                if status != 503 or time.monotonic() > deadline:
                    outcomes[seat] = status
                    break
                unavailable += 1
                await asyncio.sleep(0.1)  # its partition is moving: try again

    sale = asyncio.gather(*(keep_buying(b) for b in buyers[:8]))
    await asyncio.sleep(0.3)
    assert queue, "the sale ended before the kill"
    first.send_signal(signal.SIGKILL)
    await sale
    assert unavailable > 0, "the killed worker's partition never answered 503"
    assert outcomes == dict.fromkeys(seats, 201), outcomes
    # a sale interrupted by the move is finished by the saga's retry: wait for its tickets
    deadline = time.monotonic() + 20
    schema = env["OPENTICKET_DATABASE_SCHEMA"]
    while _tickets(database_url, schema) - sold_before < len(seats):
        assert time.monotonic() < deadline, "paid seats without tickets"
        await asyncio.sleep(0.2)
    assert _tickets(database_url, schema) - sold_before == len(seats)
    assert _double_sales(database_url, env["OPENTICKET_DATABASE_SCHEMA"]) == 0
    ready = (await http.get("/health/ready")).json()
    assert ready["checks"]["nats"] == "ok"


async def test_without_redis_a_seat_held_through_a_worker_reaches_the_api_s_seat_feed(
    production: dict[str, str], serve_process: ServeProcess
) -> None:
    """NATS carries the live feed: the worker's seat events, followed by the API process."""
    env = {k: v for k, v in production.items() if not k.startswith("OPENTICKET_REDIS")}
    env["OPENTICKET_LOCK_STORE"] = "memory"
    with serve_process(env) as (api, _), worker(env, f"0-{PARTITIONS - 1}", "solo"):
        async with httpx.AsyncClient(base_url=api, timeout=15) as http:
            session_id = await _session(http)
            me = await _buyer(http, "watcher")
            feed_url = api.replace("http://", "ws://") + f"/ws/sessions/{session_id}/seats"
            async with websockets.connect(feed_url) as feed:
                snapshot = json.loads(await asyncio.wait_for(feed.recv(), 10))
                assert snapshot["type"] == "snapshot"
                placed = await http.post(
                    "/api/orders",
                    json={"session_id": session_id, "seat_ids": ["B-5-5"]},
                    headers=me,
                )
                assert placed.status_code == 201, placed.text
                while True:
                    change = json.loads(await asyncio.wait_for(feed.recv(), 10))
                    if change.get("seat_id") == "B-5-5":
                        break
                assert change["status"] == "held"
