"""Full purchases over HTTP, end to end, in the embedded or the production profile.

    python benchmarks/http_purchase.py --profile embedded --concurrency 32
    python benchmarks/http_purchase.py --profile production --concurrency 8,32

A purchase is what a buyer does: ``POST /api/orders`` for ``--seats-per-order`` seats,
then ``POST /api/orders/{id}/payments`` with the mock provider, which settles at once.
The benchmark starts what it measures and removes it afterwards:

- ``embedded``: ``openticket serve --demo`` (in-memory everything, no configuration);
- ``production``: a fresh PostgreSQL schema, Redis key prefix and NATS prefix on the
  local servers (``--database-url``, ``--redis-url``, ``--nats-url``), ``openticket
  migrate``, two ``openticket worker`` processes and ``--api-processes`` ``openticket
  serve`` processes (each on its own port; buyers are spread over them).

Buyers register (not timed), then ``--concurrency`` of them buy at once, each on one
keep-alive connection of a small HTTP/1.1 client written on asyncio streams (the client
must not be what limits the run; its own CPU is reported). Each concurrency value gets a
session of its own; ``--warmup`` purchases come first and are not counted.

CPU is read from ``/proc`` before and after the measured purchases: the API and worker
processes, and every ``postgres``, ``nats-server`` and ``redis-server`` process of the
machine (whatever else they serve counts too: run it on a quiet machine). Then the same
two requests run against a bare Litestar app on the same server (uvicorn, one process),
``bare_litestar_purchases_per_s``: what the HTTP stack alone allows.

Progress goes to stderr; each concurrency value prints one JSON object on stdout, the
last line of the run for a single value.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import nats
import psycopg
import redis.asyncio as aioredis
import uvloop

from openticket.testing.processes import LoggedProcess as Process
from openticket.testing.sales import SaleSetup

CLI = [sys.executable, "-m", "openticket.entrypoints.cli"]
DEMO_PASSWORD = "bench-demo-password"  # noqa: S105  # a throwaway deployment's
BUYER_PASSWORD = "bench-buyer-password"  # noqa: S105  # its buyers'
SEATS_PER_ROW = 50
AREAS = tuple("ABCDEFGH")
"""The venue's areas: a sale spread over several partitions, as a real one is."""
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def tcp_segments_sent() -> int:
    """TCP segments this machine sent so far (``OutSegs`` of ``/proc/net/snmp``)."""
    with open("/proc/net/snmp", encoding="ascii") as snmp:
        tcp = [line.split() for line in snmp if line.startswith("Tcp:")]
    return int(tcp[1][tcp[0].index("OutSegs")])


BARE_SERVER = r"""
import sys, uuid, msgspec, uvicorn
from litestar import Litestar, post

class OrderBody(msgspec.Struct):
    session_id: uuid.UUID
    seat_ids: list[str]

class PaymentBody(msgspec.Struct):
    provider: str

class Order(msgspec.Struct):
    order_id: uuid.UUID
    session_id: uuid.UUID
    status: str
    seat_ids: list[str]

class Payment(msgspec.Struct):
    payment_id: uuid.UUID
    order_id: uuid.UUID
    provider: str
    status: str

@post("/api/orders", status_code=201)
async def place(data: OrderBody) -> Order:
    return Order(uuid.uuid4(), data.session_id, "created", data.seat_ids)

@post("/api/orders/{order_id:uuid}/payments", status_code=201)
async def pay(order_id: uuid.UUID, data: PaymentBody) -> Payment:
    return Payment(uuid.uuid4(), order_id, data.provider, "succeeded")

app = Litestar([place, pay])
print("bare app ready", flush=True)
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""


def say(message: str) -> None:
    """Progress, on stderr."""
    print(f"[http_purchase] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    """A free loopback port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(values: Sequence[float], p: float) -> float:
    """The ``p``-th percentile of sorted ``values`` (0 when there are none)."""
    if not values:
        return 0.0
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


# --- CPU from /proc ------------------------------------------------------------------------


def cpu_of(pid: int) -> float:
    """CPU seconds (user + system) a live process has used, 0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def cpu_by_command(names: Sequence[str]) -> dict[str, float]:
    """CPU seconds used so far by every process of each command name."""
    totals = dict.fromkeys(names, 0.0)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "comm").read_text().strip()
        except OSError:
            continue
        if command in totals:
            totals[command] += cpu_of(int(entry.name))
    return totals


def machine_ms() -> float:
    """CPU milliseconds of a fixed pure-Python loop (median of five): how fast the machine
    is right now. A shared 2-core machine varies by a third within an hour; compare runs
    by their CPU per purchase relative to this."""
    times = []
    for _ in range(5):
        began, total = time.process_time(), 0
        for n in range(1_000_000):
            total += n
        times.append(time.process_time() - began)
    return round(sorted(times)[2] * 1000, 1)


def client_cpu() -> float:
    """CPU seconds this process (the load client) has used."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# --- processes ------------------------------------------------------------------------------


class Stack:
    """What one profile runs: API processes (with their ports) and workers."""

    def __init__(self, profile: str, args: argparse.Namespace, logs: Path) -> None:
        self.profile = profile
        self.args = args
        self.logs = logs
        self.apis: list[Process] = []
        self.workers: list[Process] = []
        self.ports: list[int] = []
        prefix = f"B{uuid.uuid4().hex[:8].upper()}"
        self.schema = prefix.lower()
        self.prefix = prefix
        self.env: dict[str, str] = {
            "OPENTICKET_DEMO_PASSWORD": DEMO_PASSWORD,
            "OPENTICKET_JWT_SECRET": "benchmark-processes-share-this-signing-secret",
            "OPENTICKET_RATE_LIMIT_PER_IP": "0",
            "OPENTICKET_RATE_LIMIT_PER_USER": "0",
            "OPENTICKET_HOLD_TTL_SECONDS": "600",
            # its few buyers buy again and again from one address at a machine's pace:
            # the bot defence would rightly refuse them (benchmarks/bot_defence.py
            # measures what it costs a purchase)
            "OPENTICKET_BOT_DEFENCE": "false",
        }
        if profile == "production":
            self.env |= {
                "OPENTICKET_DATABASE_URL": args.database_url,
                "OPENTICKET_DATABASE_SCHEMA": self.schema,
                "OPENTICKET_REDIS_URL": args.redis_url,
                "OPENTICKET_REDIS_PREFIX": f"{prefix}:",
                "OPENTICKET_NATS_URL": args.nats_url,
                "OPENTICKET_NATS_PREFIX": prefix,
                "OPENTICKET_LOCK_STORE": "redis",
            }

    @contextlib.contextmanager
    def running(self) -> Iterator[Stack]:
        try:
            if self.profile == "production":
                say(f"production: schema {self.schema}, prefix {self.prefix}; migrating")
                done = subprocess.run(  # noqa: S603  # our own command
                    [*CLI, "migrate"],
                    env={**os.environ, **self.env},
                    capture_output=True,
                    text=True,
                    timeout=120,
                    check=False,
                )
                if done.returncode != 0:
                    raise RuntimeError(f"openticket migrate failed:\n{done.stderr}")
                self.workers = [
                    Process(
                        f"worker-{n}",
                        [*CLI, "worker", "--partitions", part, "--id", f"bw{n}"],
                        self.env,
                        self.logs,
                    )
                    for n, part in ((1, "0-7"), (2, "8-15"))
                ]
                for worker in self.workers:
                    worker.start("Ctrl+C to stop")
                    say(f"{worker.name} is up (pid {worker.pid})")
            count = self.args.api_processes if self.profile == "production" else 1
            for n in range(count):
                port = free_port()
                api = Process(
                    f"serve-{n + 1}", [*CLI, "serve", "--port", str(port), "--demo"],
                    self.env, self.logs,
                )  # fmt: skip
                api.start("press Ctrl+C")
                self.apis.append(api)
                self.ports.append(port)
                say(f"{api.name} is up at http://127.0.0.1:{port} (pid {api.pid})")
            for port in self.ports:
                deadline = time.monotonic() + 60
                while (
                    httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=5).status_code != 200
                ):
                    if time.monotonic() > deadline:
                        raise RuntimeError("the API never got ready")
                    time.sleep(0.2)
            yield self
        finally:
            for process in (*self.apis, *self.workers):
                process.stop()
            if self.profile == "production":
                asyncio.run(self._remove())

    async def _remove(self) -> None:
        """Drop what the run left: the schema, the Redis keys, the NATS streams."""
        with contextlib.suppress(Exception):
            async with await psycopg.AsyncConnection.connect(
                self.args.database_url, autocommit=True
            ) as conn:
                await conn.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')
        with contextlib.suppress(Exception):
            client = aioredis.from_url(self.args.redis_url)
            async for key in client.scan_iter(match=f"*{self.prefix}:*", count=1000):
                await client.delete(key)
            await client.aclose()
        with contextlib.suppress(Exception):
            nc = await nats.connect(self.args.nats_url)
            js = nc.jetstream()
            for info in await js.streams_info():
                name = info.config.name or ""
                if self.prefix in name.upper():
                    await js.delete_stream(name)
            await nc.close()
        say("removed the run's schema, keys and streams")

    async def round_trips(self) -> dict[str, int]:
        """Counters of the work so far: TCP segments sent on this machine (every round trip
        between the processes is at least two), Redis commands, PostgreSQL transactions."""
        segments = {"tcp_segments": tcp_segments_sent()}
        if self.profile != "production":
            return segments
        client = aioredis.from_url(self.args.redis_url)
        try:
            redis_commands = int((await client.info("stats"))["total_commands_processed"])
        finally:
            await client.aclose()
        async with await psycopg.AsyncConnection.connect(self.args.database_url) as conn:
            cursor = await conn.execute(
                "SELECT xact_commit + xact_rollback FROM pg_stat_database"
                " WHERE datname = current_database()"
            )
            row = await cursor.fetchone()
        return {
            **segments,
            "redis_commands": redis_commands,
            "pg_transactions": int(row[0]) if row else 0,
        }

    def cpu(self) -> dict[str, float]:
        """CPU seconds used so far by each part of the stack."""
        servers = cpu_by_command(("postgres", "nats-server", "redis-server"))
        return {
            "api": sum(cpu_of(p.pid) for p in self.apis),
            "workers": sum(cpu_of(p.pid) for p in self.workers),
            "postgres": servers["postgres"],
            "nats": servers["nats-server"],
            "redis": servers["redis-server"],
            "client": client_cpu(),
        }


# --- the load client: HTTP/1.1 keep-alive on asyncio streams --------------------------------


class Connection:
    """One keep-alive HTTP/1.1 connection; one request at a time."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(
        self, method: bytes, path: bytes, body: bytes, headers: bytes
    ) -> tuple[int, bytes]:
        """Send one request; its status and body (connection errors raise ``OSError``)."""
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        reader, writer = self.reader, self.writer
        if reader is None:
            raise OSError("not connected")
        writer.write(
            b"%s %s HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
            b"content-length: %d\r\n%s\r\n%s" % (method, path, len(body), headers, body)
        )
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError) as e:
            self.close()
            raise OSError("the server closed the connection") from e
        status = int(head[9:12])
        lower = head.lower()
        if b"transfer-encoding: chunked" in lower:
            data = b""
            while True:
                size = int((await reader.readuntil(b"\r\n"))[:-2].split(b";")[0], 16)
                chunk = await reader.readexactly(size + 2)
                if size == 0:
                    break
                data += chunk[:-2]
        else:
            at = lower.find(b"content-length:")
            length = int(lower[at + 15 : lower.index(b"\r\n", at)]) if at >= 0 else 0
            data = await reader.readexactly(length) if length else b""
        if b"connection: close" in lower:
            self.close()
        return status, data

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def problem_code(status: int, body: bytes) -> str:
    """``<status> <problem code>`` of an error answer."""
    try:
        code = json.loads(body).get("code", "")
    except (ValueError, AttributeError):
        code = ""
    return f"{status} {code}".strip()


async def run_purchases(
    ports: Sequence[int],
    session_id: str,
    buyers: Sequence[bytes],
    seats: list[str],
    *,
    count: int,
    concurrency: int,
    per_order: int,
) -> dict[str, Any]:
    """``count`` purchases by ``concurrency`` buyers at once; latencies and what went wrong."""
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    bought: Counter[str] = Counter()
    pending = iter(range(count))
    session = session_id.encode()

    async def buyer(n: int) -> None:
        connection = Connection(ports[n % len(ports)])
        auth = buyers[n % len(buyers)]
        for _ in pending:
            if len(seats) < per_order:
                errors["out_of_seats"] += 1
                return
            mine = [seats.pop() for _ in range(per_order)]
            body = b'{"session_id":"%s","seat_ids":[%s]}' % (
                session,
                b",".join(b'"%s"' % s.encode() for s in mine),
            )
            began = time.perf_counter()
            try:
                status, answer = await connection.request(b"POST", b"/api/orders", body, auth)
                if status != 201:
                    errors[f"order {problem_code(status, answer)}"] += 1
                    continue
                order_id = json.loads(answer)["order_id"]
                status, answer = await connection.request(
                    b"POST",
                    f"/api/orders/{order_id}/payments".encode(),
                    b'{"provider":"mock"}',
                    auth,
                )
            except OSError as e:
                errors[f"connection {type(e).__name__}"] += 1
                connection.close()
                continue
            if status != 201 or json.loads(answer).get("status") != "succeeded":
                errors[f"payment {problem_code(status, answer)}"] += 1
                continue
            latencies.append(time.perf_counter() - began)
            bought.update(mine)
        connection.close()

    began = time.perf_counter()
    await asyncio.gather(*(buyer(n) for n in range(concurrency)))
    elapsed = time.perf_counter() - began
    return {
        "seconds": elapsed,
        "latencies": sorted(latencies),
        "errors": dict(errors),
        "paid_twice": sum(1 for n in bought.values() if n > 1),
        "seats_bought": sum(bought.values()),
    }


# --- setting up the sale --------------------------------------------------------------------


async def set_up(base: str, seats: int, buyers: int) -> tuple[SaleSetup, list[bytes]]:
    """A venue of at least ``seats`` seats with an event on sale, and ``buyers`` signed up."""
    client = httpx.AsyncClient(base_url=base, timeout=60)
    setup = SaleSetup(client, AREAS, -(-seats // (SEATS_PER_ROW * len(AREAS))), SEATS_PER_ROW)
    await setup.sign_in(DEMO_PASSWORD)
    await setup.make_event("Benchmark Live")
    say(f"venue of {len(AREAS)} areas, {setup.seats} seats; signing up {buyers} buyers")
    gate = asyncio.Semaphore(4)  # each sign-up costs an argon2 hash

    async def sign_up(n: int) -> bytes:
        async with gate:
            email = f"buyer{n}-{uuid.uuid4().hex[:6]}@bench.example.com"
            made = await client.post(
                "/api/auth/register",
                json={"email": email, "password": BUYER_PASSWORD, "display_name": f"Buyer {n}"},
            )
            made.raise_for_status()
            answer = await client.post(
                "/api/auth/token", json={"email": email, "password": BUYER_PASSWORD}
            )
            return b"authorization: Bearer %s\r\n" % answer.json()["access_token"].encode()

    accounts = list(await asyncio.gather(*(sign_up(n) for n in range(buyers))))
    await client.aclose()  # each level opens a client of its own
    return setup, accounts


async def seats_of(base: str, session_id: str) -> list[str]:
    """Every seat id of the session."""
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        answer = await client.get(f"/api/sessions/{session_id}/seats")
        answer.raise_for_status()
        return [item["seat_id"] for item in answer.json()["items"]]


async def sold_by_api(base: str, session_id: str) -> int:
    """Seats the public seat map shows sold."""
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        answer = await client.get(f"/api/sessions/{session_id}/seats")
        answer.raise_for_status()
        return sum(1 for item in answer.json()["items"] if item["status"] == "sold")


async def sold_in_database(database_url: str, schema: str, session_id: str) -> tuple[int, int]:
    """Live tickets of the session in PostgreSQL, and seats with more than one."""
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        await conn.execute(f'SET search_path TO "{schema}"')
        cursor = await conn.execute(
            "SELECT count(*), count(*) - count(DISTINCT seat_id) FROM tickets"
            " WHERE session_id = %s AND status <> 'voided'",
            (session_id,),
        )
        row = await cursor.fetchone()
        return (int(row[0]), int(row[1])) if row is not None else (0, 0)


# --- one profile ------------------------------------------------------------------------------


def measure(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Run every concurrency value of ``args.concurrency`` on one stack; a result per value."""
    levels = [int(c) for c in str(args.concurrency).split(",") if c.strip()]
    logs = Path(tempfile.mkdtemp(prefix="openticket-bench-"))
    results: list[dict[str, Any]] = []
    per_level = args.warmup + args.purchases
    try:
        stack = Stack(args.profile, args, logs)
        with stack.running():
            base = f"http://127.0.0.1:{stack.ports[0]}"
            setup, buyers = asyncio.run(set_up(base, per_level * args.seats_per_order, max(levels)))
            for concurrency in levels:
                results.append(asyncio.run(measure_level(stack, base, setup, buyers, concurrency)))
        bare = measure_bare(args, levels)
        for result in results:
            result["bare_litestar_purchases_per_s"] = bare[result["concurrency"]]
    except BaseException:
        for log in sorted(logs.glob("*.log")):
            say(
                f"--- {log.name} ---\n"
                + "\n".join(log.read_text(errors="replace").splitlines()[-30:])
            )
        raise
    finally:
        shutil.rmtree(logs, ignore_errors=True)
    return results


async def measure_level(
    stack: Stack, base: str, setup: SaleSetup, buyers: Sequence[bytes], concurrency: int
) -> dict[str, Any]:
    """Warm up, then ``args.purchases`` purchases by ``concurrency`` buyers at once."""
    args = stack.args
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        setup.client = client  # each level runs in a loop of its own
        session_id = await setup.open_session(
            max_seats_per_user=1000
        )  # few buyers, many seats each
    seats = await seats_of(base, session_id)
    random.Random(concurrency).shuffle(seats)  # buyers spread over the areas
    if args.seats_per_order > 1:  # an order's seats are in one area
        seats.sort(key=lambda s: s.split("-")[0])
    common = {
        "concurrency": concurrency,
        "per_order": args.seats_per_order,
        "buyers": buyers[:concurrency],
    }
    if args.warmup:
        say(f"{concurrency} buyers: warming up with {args.warmup} purchases")
        await run_purchases(stack.ports, session_id, seats=seats, count=args.warmup, **common)
    say(f"{concurrency} buyers: {args.purchases} purchases")
    speed = machine_ms()
    counted = await stack.round_trips()
    before = stack.cpu()
    run = await run_purchases(stack.ports, session_id, seats=seats, count=args.purchases, **common)
    after = stack.cpu()
    counted = {k: v - counted[k] for k, v in (await stack.round_trips()).items()}
    latencies = run["latencies"]
    purchases = len(latencies)
    if stack.profile == "production":
        await asyncio.sleep(1.0)  # the workers finish what the API left them
    sold_api = await sold_by_api(base, session_id)
    sold_db: int | None = None
    doubled_in_db = 0
    if stack.profile == "production":
        sold_db, doubled_in_db = await sold_in_database(args.database_url, stack.schema, session_id)
    spent = {part: after[part] - before[part] for part in before}
    per = max(purchases, 1)
    cpu = {part: round(seconds * 1000 / per, 3) for part, seconds in spent.items()}
    cpu["total"] = round(sum(v for k, v in cpu.items() if k != "client"), 3)
    result = {
        "profile": stack.profile,
        "concurrency": concurrency,
        "api_processes": len(stack.apis),
        "seats_per_order": args.seats_per_order,
        "purchases": purchases,
        "seconds": round(run["seconds"], 3),
        "purchases_per_s": round(purchases / run["seconds"], 1) if run["seconds"] else 0.0,
        "purchase_p50_ms": round(percentile(latencies, 50) * 1000, 2),
        "purchase_p99_ms": round(percentile(latencies, 99) * 1000, 2),
        "purchase_p999_ms": round(percentile(latencies, 99.9) * 1000, 2),
        "errors": run["errors"],
        "double_sales": run["paid_twice"] + doubled_in_db,
        "seats_sold_api": sold_api,
        "seats_sold_db": sold_db,
        "seats_expected": (args.warmup * args.seats_per_order) + run["seats_bought"],
        "cpu_ms_per_purchase": cpu,
        "per_purchase": {k: round(v / per, 2) for k, v in counted.items()},
        "machine_ms": speed,
    }
    say(
        f"{concurrency} buyers: {result['purchases_per_s']} purchases/s, "
        f"p99 {result['purchase_p99_ms']} ms, {cpu['total']} ms CPU per purchase "
        f"(client {cpu['client']} ms)"
    )
    return result


def measure_bare(args: argparse.Namespace, levels: Sequence[int]) -> dict[int, float]:
    """Purchases per second of a bare Litestar app with the same two routes, per level."""
    port = free_port()
    logs = Path(tempfile.mkdtemp(prefix="openticket-bench-bare-"))
    bare = Process("bare", [sys.executable, "-c", BARE_SERVER, str(port)], {}, logs)
    rates: dict[int, float] = {}
    try:
        bare.start("bare app ready")
        time.sleep(0.5)  # uvicorn binds after the print
        token = b"authorization: Bearer none\r\n"
        count = args.purchases
        for concurrency in levels:
            seats = [f"A-1-{n}" for n in range(count * args.seats_per_order)]
            run = asyncio.run(
                run_purchases(
                    [port], str(uuid.uuid4()), [token], seats,
                    count=count, concurrency=concurrency, per_order=args.seats_per_order,
                )
            )  # fmt: skip
            rates[concurrency] = round(len(run["latencies"]) / run["seconds"], 1)
            say(f"bare Litestar, {concurrency} buyers: {rates[concurrency]} purchases/s")
    finally:
        bare.stop()
        shutil.rmtree(logs, ignore_errors=True)
    return rates


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", choices=("embedded", "production"), default="embedded")
    parser.add_argument(
        "--concurrency", default="32", help="buyers at once; a list (8,32) runs each in turn"
    )
    parser.add_argument("--purchases", type=int, default=3000, help="measured, per value")
    parser.add_argument("--warmup", type=int, default=200, help="purchases before measuring")
    parser.add_argument("--seats-per-order", type=int, default=1)
    parser.add_argument("--api-processes", type=int, default=1, help="production only")
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--nats-url", default="nats://127.0.0.1:4222")
    args = parser.parse_args(argv)
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())  # a cheaper loop for the client
    for result in measure(args):
        print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
