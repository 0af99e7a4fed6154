"""Fixtures of the chaos tests: servers of their own, a deployment per test, the audit.

The servers (PostgreSQL, Redis, NATS) start once per test session on free loopback
ports and stop at its end; each test gets a fresh database schema, Redis key prefix
and NATS prefix, and its own ``serve`` and two ``worker`` processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest

from .deployment import Deployment
from .sale import flash_sale, set_up_sale, sign_up
from .services import PrivateNats, PrivatePostgres, PrivateRedis, free_port

pytestmark = pytest.mark.chaos

HOLD_TTL = 12
"""Seconds a hold lives in the chaos sales: long enough to pay, short enough to expire.

Two hundred buyers at once on two cores take up to 3.5 s a request before any fault
and 6 s while one lasts; at 8 s a buyer who held just before a fault could find the
hold expired when paying after it, which is slowness, not what the faults test."""
PARTITIONS = 4
DEMO_PASSWORD = "chaos-demo-password"


def _missing(what: str, error: BaseException) -> None:
    message = f"{what} could not be started for the chaos tests: {error!r}"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@attrs.frozen
class Servers:
    """The chaos tests' own servers."""

    postgres: PrivatePostgres
    redis: PrivateRedis
    nats: PrivateNats


@pytest.fixture(scope="session")
def servers() -> Iterator[Servers]:
    # not pytest's tmp_path: PostgreSQL runs as its own user, who may not enter root's
    root = Path(tempfile.mkdtemp(prefix="openticket-chaos-"))
    root.chmod(0o755)
    started: list[Any] = []
    try:
        postgres = PrivatePostgres(root / "postgres")
        redis = PrivateRedis(root)
        nats = PrivateNats(root)
        for server in (postgres, redis, nats):
            server.start()
            started.append(server)
    except (OSError, subprocess.SubprocessError, AssertionError) as e:
        for server in started:
            server.stop()
        shutil.rmtree(root, ignore_errors=True)
        _missing("PostgreSQL, Redis or NATS", e)
    try:
        yield Servers(postgres, redis, nats)
    finally:
        for server in reversed(started):
            with contextlib.suppress(Exception):
                server.stop()
        shutil.rmtree(root, ignore_errors=True)


@attrs.frozen
class Sale:
    """A running deployment with a session on sale and buyers signed up."""

    deployment: Deployment
    servers: Servers
    session_id: str
    buyers: list[dict[str, str]]

    @property
    def base(self) -> str:
        return self.deployment.base


@pytest.fixture
def deployment(servers: Servers, tmp_path: Path) -> Iterator[Deployment]:
    prefix = f"C{uuid.uuid4().hex[:8].upper()}"
    env = {
        "OPENTICKET_DATABASE_URL": servers.postgres.url,
        "OPENTICKET_DATABASE_SCHEMA": prefix.lower(),
        "OPENTICKET_REDIS_URL": servers.redis.url,
        "OPENTICKET_REDIS_PREFIX": f"{prefix}:",
        "OPENTICKET_NATS_URL": servers.nats.url,
        "OPENTICKET_NATS_PREFIX": prefix,
        "OPENTICKET_LOCK_STORE": "redis",
        "OPENTICKET_PARTITIONS": str(PARTITIONS),
        "OPENTICKET_HOLD_TTL_SECONDS": str(HOLD_TTL),
        "OPENTICKET_WORKER_LEASE_SECONDS": "1.5",
        "OPENTICKET_CONSUMER_ACK_WAIT_SECONDS": "3",
        "OPENTICKET_DEMO_PASSWORD": DEMO_PASSWORD,
        "OPENTICKET_JWT_SECRET": "chaos-tests-share-this-signing-secret",
        "OPENTICKET_RATE_LIMIT_PER_IP": "0",
        "OPENTICKET_RATE_LIMIT_PER_USER": "0",
        # 200 buyers on one loopback address at a machine's pace: the bot defence would
        # refuse all but the first 20 accounts (accounts_per_address) and the sale would
        # measure it, not the fault; its own tests turn it on
        "OPENTICKET_BOT_DEFENCE": "false",
    }
    migrated = subprocess.run(  # our own command
        [sys.executable, "-m", "openticket.entrypoints.cli", "migrate"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert migrated.returncode == 0, migrated.stderr
    with Deployment(env, tmp_path, free_port(), PARTITIONS).running() as running:
        yield running


@pytest.fixture
async def sale(deployment: Deployment, servers: Servers) -> Sale:
    async with httpx.AsyncClient(base_url=deployment.base, timeout=30) as client:
        session_id = await set_up_sale(client, DEMO_PASSWORD)
        buyers = await sign_up(client, ACCOUNTS)
    return Sale(deployment, servers, session_id, buyers)


def audit(sale: Sale, *, grace: float = 0) -> tuple[int, dict[str, Any]]:
    """``openticket audit --json`` of the sale's session: its exit code and report."""
    done = subprocess.run(  # noqa: S603  # our own command
        [
            sys.executable, "-m", "openticket.entrypoints.cli", "audit",
            "--session", sale.session_id, "--json", "--grace-seconds", str(grace),
        ],
        env={**os.environ, **sale.deployment.env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )  # fmt: skip
    assert done.returncode in (0, 1), done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    return done.returncode, report


async def audit_until_it_holds(
    sale: Sale, *, within: float, no_payment_pending: bool = False
) -> tuple[float, dict[str, Any]]:
    """Audit again and again until every promise holds (or ``within`` passes).

    Returns how long it took and the last report; the sweeper, the saga's consumers
    and the reconciliation with the provider settle what the sale left in flight.
    With ``no_payment_pending``, also until no payment is pending any more: a late
    payer's order may still hold its seats when the sale ends, and its payment is
    settled only once that hold expires (``HOLD_TTL``) and reconciliation asks.
    """
    began = time.monotonic()
    while True:
        code, report = await asyncio.to_thread(audit, sale)
        settled = not no_payment_pending or not report.get("payments", {}).get("pending")
        if (code == 0 and settled) or time.monotonic() - began > within:
            return time.monotonic() - began, report
        await asyncio.sleep(1)


async def seat_map_agrees(sale: Sale, sold: int, *, within: float) -> tuple[float | None, int]:
    """Read the public seat map until it counts ``sold`` seats sold (or ``within`` passes).

    Answers how long it took (None if it never did) and the last count.
    """
    began = time.monotonic()
    async with httpx.AsyncClient(base_url=sale.base, timeout=30) as client:
        while True:
            answer = await client.get(f"/api/sessions/{sale.session_id}/seats")
            assert answer.status_code == 200, answer.text
            count = sum(1 for seat in answer.json()["items"] if seat["status"] == "sold")
            took = time.monotonic() - began
            if count == sold:
                return round(took, 1), count
            if took > within:
                return None, count
            await asyncio.sleep(0.5)


async def parked_reasons(sale: Sale, limit: int = 500) -> dict[str, int]:
    """Why the parked messages of the sale's deployment were parked (reason: error)."""
    import nats

    from openticket.adapters.nats.consumer import PARKED_ERROR, PARKED_REASON, parked_stream

    client = await nats.connect(sale.servers.nats.url, connect_timeout=5, allow_reconnect=False)
    reasons: dict[str, int] = {}
    try:
        js = client.jetstream()
        stream = parked_stream(sale.deployment.env["OPENTICKET_NATS_PREFIX"])
        try:
            info = await js.stream_info(stream)
        except Exception:  # no stream: nothing was parked
            return reasons
        for seq in range(
            info.state.first_seq, min(info.state.last_seq, info.state.first_seq + limit) + 1
        ):
            try:
                msg = await js.get_msg(stream, seq)
            except Exception as e:  # a gap in the stream, or a server that says no
                reasons[f"unreadable: {type(e).__name__}"] = (
                    reasons.get(f"unreadable: {type(e).__name__}", 0) + 1
                )
                continue
            headers = msg.headers or {}
            key = f"{headers.get(PARKED_REASON)}: {headers.get(PARKED_ERROR, '')[:160]}"
            reasons[key] = reasons.get(key, 0) + 1
    finally:
        await client.close()
    return reasons


SALE_SECONDS = 8
FAULT_AT = 2.5
BUYERS_AT_ONCE = 200
"""Buyers in the sale at once, each taking a moment to pay and to come back: more than
serve, two workers and three servers on two cores can answer without queueing, as in a
flash sale."""
ACCOUNTS = 40
"""Buyer accounts (each costs an argon2 hash to sign up); buyers share them."""


async def sale_through(
    sale: Sale,
    name: str,
    fault: Callable[[], None] | None,
    *,
    seat_map_must_agree: bool = True,
    no_payment_pending: bool = False,
    **options: Any,
) -> dict[str, Any]:
    """Run the flash sale with ``fault`` in it, wait until the books hold, and report.

    Prints one JSON line (what buyers saw before, during and after the fault, how long
    selling took to resume and the books to settle, the audit) and fails unless every
    promise holds within a minute of the sale's end.
    """
    options_used = {
        "concurrency": options.pop("concurrency", BUYERS_AT_ONCE),
        "seconds": options.pop("seconds", SALE_SECONDS),
        "fault_at": options.pop("fault_at", FAULT_AT),
    }
    log = await flash_sale(
        sale.base, sale.session_id, sale.buyers, fault=fault, **options_used, **options
    )
    settled_in, report = await audit_until_it_holds(
        sale, within=HOLD_TTL + 60, no_payment_pending=no_payment_pending
    )
    map_agreed_in, sold_on_map = await seat_map_agrees(sale, report["seats_sold"], within=10)
    summary = {
        "scenario": name,
        "buyers_at_once": options_used["concurrency"],
        "sale": log.summary(),
        "settled_in_s": round(settled_in, 1),
        "seat_map": {"sold": sold_on_map, "agreed_in_s": map_agreed_in},
        "audit": {
            k: report[k]
            for k in ("holds", "purchases", "seats_sold", "orders", "payments", "refunded")
        },
    }
    print(json.dumps(summary))
    if seat_map_must_agree:
        # what buyers see: the seat map counts exactly the seats the books say are sold
        assert sold_on_map == report["seats_sold"], summary
    assert report["holds"], json.dumps(
        {
            "findings": report["findings"][:10],
            "parked": await parked_reasons(sale),
            "logs": sale.deployment.tails(),
        },
        indent=1,
    )
    return summary


def readiness_probe(base: str, seen: list[dict[str, Any]]) -> Callable[[float], None]:
    """While a server is down: ask ``/health/ready`` until it says 503, noting each answer.

    Asks until ``until`` (a ``time.monotonic()`` instant: when the server comes back),
    each request bounded by the time left, so the probe never stretches the fault.
    """

    def probe(until: float) -> None:
        while (left := until - time.monotonic()) > 0.05:
            try:
                answer = httpx.get(f"{base}/health/ready", timeout=left)
            except httpx.HTTPError:
                continue
            seen.append(
                {
                    "status": answer.status_code,
                    "retry_after": answer.headers.get("retry-after"),
                    "checks": answer.json().get("checks", {}),
                }
            )
            if answer.status_code == 503:
                return
            time.sleep(min(0.1, max(0.0, until - time.monotonic())))

    return probe


def said_down(seen: list[dict[str, Any]], dependency: str) -> bool:
    """Whether readiness answered 503 with ``Retry-After`` and named ``dependency`` down."""
    return any(
        s["status"] == 503 and s["retry_after"] and s["checks"].get(dependency) == "down"
        for s in seen
    )
