"""Two ``openticket serve`` processes sharing PostgreSQL and Redis, as behind a load balancer.

A change handled by process A reaches a WebSocket client connected to process B, and
the two processes share one rate limit.
"""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from typing import TYPE_CHECKING

import httpx
import pytest
import websockets

if TYPE_CHECKING:
    from tests.conftest import ServeProcess

from openticket.adapters.postgres import migrate

pytestmark = [pytest.mark.redis, pytest.mark.postgres]

CLI = [sys.executable, "-m", "openticket.entrypoints.cli"]
PASSWORD = "demo-password-1"


@pytest.fixture
async def shared_env(
    database_url: str, redis_url: str, schema_name: str, key_prefix: str
) -> dict[str, str]:
    """Settings two processes share: one database schema, one Redis prefix."""
    await migrate(database_url, schema=schema_name)
    return {
        "OPENTICKET_DATABASE_URL": database_url,
        "OPENTICKET_DATABASE_SCHEMA": schema_name,
        "OPENTICKET_REDIS_URL": redis_url,
        "OPENTICKET_REDIS_PREFIX": key_prefix,
        "OPENTICKET_DEMO_PASSWORD": PASSWORD,
        "OPENTICKET_JWT_SECRET": "two-processes-share-this-signing-secret!",
    }


async def _token(http: httpx.AsyncClient, email: str) -> dict[str, str]:
    answer = await http.post("/api/auth/token", json={"email": email, "password": PASSWORD})
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


async def _session_id(http: httpx.AsyncClient) -> str:
    events = (await http.get("/api/events")).json()["items"]
    details = (await http.get(f"/api/events/{events[0]['event_id']}")).json()
    return str(details["sessions"][0]["session_id"])


async def _next_json(socket_: websockets.ClientConnection) -> dict[str, object]:
    message = await asyncio.wait_for(socket_.recv(), 5)
    decoded: dict[str, object] = json.loads(message)
    return decoded


async def test_a_hold_made_in_one_process_reaches_a_seat_watcher_of_the_other(
    shared_env: dict[str, str], serve_process: ServeProcess
) -> None:
    """Seat feed on B, order placed on A: B's client sees the seat held, live."""
    with (
        serve_process(shared_env, demo=True) as (a, _),
        serve_process(shared_env, demo=True) as (b, printed_b),
    ):
        assert "kept from an earlier run" in printed_b  # B found A's catalog in PostgreSQL
        async with httpx.AsyncClient(base_url=a, timeout=10) as http_a:
            session_id = await _session_id(http_a)
            email = f"fan-{uuid.uuid4().hex[:8]}@example.com"
            registered = await http_a.post(
                "/api/auth/register",
                json={"email": email, "password": PASSWORD, "display_name": "Fan"},
            )
            assert registered.status_code == 201, registered.text
            me = await _token(http_a, email)
            ws_url = b.replace("http://", "ws://") + f"/ws/sessions/{session_id}/seats"
            async with websockets.connect(ws_url) as feed:
                snapshot = await _next_json(feed)
                assert snapshot["type"] == "snapshot"
                placed = await http_a.post(
                    "/api/orders",
                    json={"session_id": session_id, "seat_ids": ["A-3-7"]},
                    headers=me,
                )
                assert placed.status_code == 201, placed.text
                change = await _next_json(feed)
                while change.get("seat_id") != "A-3-7":
                    change = await _next_json(feed)
                assert change["status"] == "held"


async def test_two_processes_share_one_rate_limit_exactly(
    shared_env: dict[str, str], serve_process: ServeProcess
) -> None:
    """A limit of 20 per address over both processes: exactly 20 answers, then 429s."""
    env = {**shared_env, "OPENTICKET_RATE_LIMIT_PER_IP": "20"}
    with serve_process(env, demo=True) as (a, _), serve_process(env, demo=True) as (b, _):
        async with httpx.AsyncClient(timeout=10) as http:
            answers = await asyncio.gather(
                *(http.get(f"{(a, b)[n % 2]}/api/events") for n in range(50))
            )
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses.count(200) == 20, statuses
    assert statuses.count(429) == 30, statuses
    refused = next(answer for answer in answers if answer.status_code == 429)
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["code"] == "rate_limited"
    assert int(refused.headers["retry-after"]) >= 1
