"""The production profile: ``openticket serve`` and two ``openticket worker`` processes on
PostgreSQL, Redis and NATS, including a worker killed with SIGKILL in the middle of a sale."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
import uuid
from typing import TYPE_CHECKING, Any
from uuid import UUID

import httpx
import nats
import psycopg
import pytest
import websockets
from nats.js.errors import NotFoundError
from tests.conftest import _free_port

from openticket.adapters.nats.streams import stream_name, subject_name
from openticket.application.seating.router import PartitionRouter
from openticket.domain.shared import AreaId, SessionId

if TYPE_CHECKING:
    from tests.conftest import ServeProcess, WorkerProcess

pytestmark = [pytest.mark.nats, pytest.mark.postgres, pytest.mark.redis]

PASSWORD = "a-buyers-password"


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
    worker_process: WorkerProcess,
    database_url: str,
) -> None:
    env = production
    partitions = int(env["OPENTICKET_PARTITIONS"])
    with serve_process(env, demo=True) as (api, _):
        async with httpx.AsyncClient(base_url=api, timeout=15) as http:
            session_id = await _session(http)
            # the worker killed below prefers the partition of area A: its death must move it
            router = PartitionRouter(partitions)
            doomed = router.partition_of(SessionId(UUID(session_id)), AreaId("A"))
            others = ",".join(str(p) for p in range(partitions) if p != doomed)
            with (
                worker_process(env, str(doomed), "w1") as first,
                worker_process(env, others, "w2"),
            ):
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

    # twelve buyers, about five seats each: well below the per-user cap of ten
    sale = asyncio.gather(*(keep_buying(b) for b in buyers[:12]))
    await asyncio.sleep(0.3)
    assert queue, "the sale ended before the kill"
    first.send_signal(signal.SIGKILL)
    await sale
    # the commands the killed worker had taken time out (503, bought on the retry); the
    # ones sent while nobody served its partitions waited for the next owner instead
    assert outcomes == dict.fromkeys(seats, 201), (outcomes, unavailable)
    # a sale interrupted by the move is finished by the saga's retry: wait for its tickets
    deadline = time.monotonic() + 20
    schema = env["OPENTICKET_DATABASE_SCHEMA"]
    while _tickets(database_url, schema) - sold_before < len(seats):
        assert time.monotonic() < deadline, "paid seats without tickets"
        await asyncio.sleep(0.2)
    assert _tickets(database_url, schema) - sold_before == len(seats)
    assert _double_sales(database_url, env["OPENTICKET_DATABASE_SCHEMA"]) == 0
    # no saga step was given up on, the killed worker's unanswered ones included
    assert await _parked(env["OPENTICKET_NATS_URL"], env["OPENTICKET_NATS_PREFIX"]) == 0
    ready = (await http.get("/health/ready")).json()
    assert ready["checks"]["nats"] == "ok"


async def test_without_redis_a_seat_held_through_a_worker_reaches_the_api_s_seat_feed(
    production: dict[str, str], serve_process: ServeProcess, worker_process: WorkerProcess
) -> None:
    """NATS carries the live feed: the worker's seat events, followed by the API process."""
    env = {k: v for k, v in production.items() if not k.startswith("OPENTICKET_REDIS")}
    env["OPENTICKET_LOCK_STORE"] = "memory"
    last = int(env["OPENTICKET_PARTITIONS"]) - 1
    with serve_process(env, demo=True) as (api, _), worker_process(env, f"0-{last}", "solo"):
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


async def _eventually(check: Any, what: str, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not await check():
        assert time.monotonic() < deadline, f"never: {what}"
        await asyncio.sleep(0.1)


async def test_with_the_saga_only_in_workers_their_consumers_carry_every_order_through(
    production: dict[str, str],
    serve_process: ServeProcess,
    worker_process: WorkerProcess,
    database_url: str,
    nats_url: str,
) -> None:
    """OPENTICKET_SAGA_INLINE=false: the API only records; the workers' durable consumers
    complete, fail and release — and what was paid while no worker ran is done later."""
    env = {**production, "OPENTICKET_SAGA_INLINE": "false"}
    schema, prefix = env["OPENTICKET_DATABASE_SCHEMA"], env["OPENTICKET_NATS_PREFIX"]
    every = f"0-{int(env['OPENTICKET_PARTITIONS']) - 1}"
    with serve_process(env, demo=True) as (api, printed):
        assert "OPENTICKET_SAGA_INLINE=false" in printed
        async with httpx.AsyncClient(base_url=api, timeout=15) as http:
            session_id = await _session(http)
            me = await _buyer(http, "patient")

            async def status_of(order_id: str) -> str:
                order = (await http.get(f"/api/orders/{order_id}", headers=me)).json()
                return str(order["status"])

            async def seat_status(seat: str) -> str:
                seats = (await http.get(f"/api/sessions/{session_id}/seats")).json()["items"]
                return next(str(s["status"]) for s in seats if s["seat_id"] == seat)

            async def hold(seat: str) -> str:
                placed = await http.post(
                    "/api/orders", json={"session_id": session_id, "seat_ids": [seat]}, headers=me
                )
                assert placed.status_code == 201, placed.text
                return str(placed.json()["order_id"])

            with worker_process(env, every, "w1"):
                status, paid_id = await _buy(http, me, session_id, ["A-1-1", "A-1-2"])
                assert status == 201
                await _eventually(
                    lambda: _is(status_of(paid_id), "completed"), "the ticketing role completed"
                )
                mine = (await http.get("/api/me/tickets", headers=me)).json()["items"]
                assert sorted(t["seat_id"] for t in mine) == ["A-1-1", "A-1-2"]

                declined_id = await hold("B-1-1")
                declined = await http.post(
                    f"/api/orders/{declined_id}/payments",
                    json={"provider": "mock", "outcome": "decline"},
                    headers=me,
                )
                assert declined.json()["status"] == "failed"
                await _eventually(lambda: _is(status_of(declined_id), "failed"), "order failed")
                await _eventually(lambda: _is(seat_status("B-1-1"), "available"), "seat freed")

                cancelled_id = await hold("B-1-2")
                assert (await seat_status("B-1-2")) == "held"
                gone = await http.delete(f"/api/orders/{cancelled_id}", headers=me)
                assert gone.json()["status"] == "cancelled"
                await _eventually(lambda: _is(seat_status("B-1-2"), "available"), "seat back")

                # the ticketing role's event again, as a redelivery after a crash: a no-op
                payment_id = (await http.get(f"/api/orders/{paid_id}", headers=me)).json()[
                    "payment_id"
                ]
                await _redeliver(nats_url, prefix, f"payment.succeeded.{payment_id}")
                await _eventually(lambda: _drained(nats_url, prefix, "ticketing"), "it was acked")
                assert _tickets(database_url, schema) == 2

                late_id = await hold("B-1-3")
            # no worker runs: the payment is taken, its event waits in the PAYMENTS stream
            late = await http.post(
                f"/api/orders/{late_id}/payments", json={"provider": "mock"}, headers=me
            )
            assert late.json()["status"] == "succeeded"
            await asyncio.sleep(0.5)
            assert await status_of(late_id) == "payment_pending"
            with worker_process(env, every, "w2"):
                await _eventually(lambda: _is(status_of(late_id), "completed"), "done later")
                assert await seat_status("B-1-3") == "sold"
    assert _tickets(database_url, schema) == 3
    assert _double_sales(database_url, schema) == 0
    assert await _parked(nats_url, prefix) == 0


async def _is(value: Any, wanted: str) -> bool:
    return bool(await value == wanted)


async def _redeliver(nats_url: str, prefix: str, leaf: str) -> None:
    """Publish the stored message of ``leaf`` once more, as a new message."""
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        stored = await js.get_last_msg(stream_name("PAYMENTS", prefix), subject_name(leaf, prefix))
        assert stored.subject is not None
        assert stored.data is not None
        await js.publish(
            stored.subject, stored.data, headers={"Nats-Msg-Id": f"again-{uuid.uuid4()}"}
        )
    finally:
        await nc.close()


async def _drained(nats_url: str, prefix: str, durable: str) -> bool:
    """The durable has nothing left to deliver or to be acknowledged."""
    nc = await nats.connect(nats_url)
    try:
        info = await nc.jetstream().consumer_info(stream_name("PAYMENTS", prefix), durable)
        return bool(info.num_pending == 0 and info.num_ack_pending == 0)
    finally:
        await nc.close()


async def _parked(nats_url: str, prefix: str) -> int:
    nc = await nats.connect(nats_url)
    try:
        try:
            info = await nc.jetstream().stream_info(stream_name("PARKED", prefix))
        except NotFoundError:
            return 0
        return int(info.state.messages)
    finally:
        await nc.close()


def _sample(exposition: str, name: str, **labels: str) -> float:
    """The value of one sample of a Prometheus text exposition (0 when absent)."""
    for line in exposition.splitlines():
        sample, _, value = line.rpartition(" ")
        found, _, listed = sample.partition("{")
        pairs = dict(p.split("=", 1) for p in listed.rstrip("}").split(",") if p)
        if found == name and pairs == {k: f'"{v}"' for k, v in labels.items()}:
            return float(value)
    return 0.0


async def test_a_worker_serves_metrics_of_the_holds_it_decides_and_the_partitions_it_owns(
    production: dict[str, str], serve_process: ServeProcess, worker_process: WorkerProcess
) -> None:
    """Holds are decided in the workers: their /metrics count them; the API's do not."""
    port = _free_port()
    env = {**production, "OPENTICKET_WORKER_METRICS_PORT": str(port)}
    last = int(env["OPENTICKET_PARTITIONS"]) - 1
    scrape = f"http://127.0.0.1:{port}/metrics"
    with serve_process(production, demo=True) as (api, _), worker_process(env, f"0-{last}", "m1"):
        async with httpx.AsyncClient(base_url=api, timeout=15) as http:
            owned, text = 0.0, ""
            deadline = time.monotonic() + 20
            while owned < last + 1:  # every partition's lease, taken at start
                assert time.monotonic() < deadline, f"never owned them all: {text}"
                await asyncio.sleep(0.2)
                text = (await http.get(scrape)).text
                owned = _sample(text, "openticket_worker_partitions_owned", worker="m1")
            session_id = await _session(http)
            first, second = await _buyer(http, "metered"), await _buyer(http, "late")
            status, _ = await _buy(http, first, session_id, ["A-9-1", "A-9-2"])
            assert status == 201
            status, _ = await _buy(http, second, session_id, ["A-9-2"])
            assert status == 409  # the seat is sold: a refused hold

            async def counted() -> bool:
                text = (await http.get(scrape)).text
                return (
                    _sample(text, "openticket_holds_total", outcome="granted") == 1
                    and _sample(text, "openticket_holds_total", outcome="refused") == 1
                )

            await _eventually(counted, "the worker's metrics counted the holds")
            text = (await http.get(scrape)).text
            partitions = range(last + 1)
            decided = sum(
                _sample(text, "openticket_worker_commands_decided_total", partition=str(n))
                for n in partitions
            )
            batches = sum(
                _sample(text, "openticket_worker_batches_total", partition=str(n))
                for n in partitions
            )
            assert decided >= 3  # two holds and a sale, at least
            assert 1 <= batches <= decided
            assert all(
                f'openticket_worker_mailbox_depth{{partition="{n}"}}' in text for n in partitions
            )
            # the saga's durables as JetStream sees them, and nothing parked
            lines = text.splitlines()
            durables = [line for line in lines if line.startswith("openticket_consumer_pending{")]
            assert len(durables) >= 3, text  # ticketing, order-saga, payments at least
            assert "openticket_parked_messages 0.0" in lines
            acquired = _sample(
                text, "openticket_worker_lease_moves_total", worker="m1", kind="acquired"
            )
            assert acquired == last + 1  # its own partitions, taken at start
            # the deployment's partition count, for the rule that every one has an owner
            assert _sample(text, "openticket_partitions_configured") == last + 1
