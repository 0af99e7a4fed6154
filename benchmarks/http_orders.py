"""HTTP benchmark: POST /api/orders under load, against a bare Litestar POST on the same server.

    python benchmarks/http_orders.py --connections 64 --requests 20000

Starts ``openticket``'s app on uvicorn (one worker) in a child process, with one extra
route: a bare Litestar POST that decodes the same body and answers it. Tokens are
issued before the clock starts. Both loads run with the same client; the last line
printed is one JSON object with requests/s, p50 and p99 of each and their ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

import httpx

SERVER = r"""
import asyncio, sys, uvicorn, msgspec
from litestar import post
from openticket.adapters.memory import MemoryPasswordHasher
from openticket.entrypoints.bootstrap import build_container
from openticket.entrypoints.demo import seed_demo
from openticket.entrypoints.http.schemas import OrderBody
from openticket.entrypoints.settings import Settings

class Echo(msgspec.Struct):
    session_id: str
    seats: int

@post("/bench/bare", status_code=201)
async def bare(data: OrderBody) -> Echo:
    return Echo(str(data.session_id), len(data.seat_ids))

async def main(port: int) -> None:
    container = build_container(
        Settings(hold_ttl_seconds=600, bot_defence=False), password_hasher=MemoryPasswordHasher()
    )
    demo = await seed_demo(
        container.app(), container.identity(), container.clock(), "demo-password-1"
    )
    app = container.http_app()
    app.register(bare)
    print(f"SESSION {demo.session_id}", flush=True)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", workers=1)
    server = uvicorn.Server(config)
    await server.serve()

asyncio.run(main(int(sys.argv[1])))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(values: list[float], p: float) -> float:
    """The ``p``-th percentile of sorted ``values``."""
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))] if values else 0.0


async def load(
    client: httpx.AsyncClient,
    requests: list[tuple[str, dict[str, Any], dict[str, str]]],
    connections: int,
) -> dict[str, Any]:
    """Send every request with ``connections`` in flight; latency of each, status counts."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    pending = iter(requests)

    async def worker() -> None:
        for path, body, headers in pending:
            started = time.perf_counter()
            answer = await client.post(path, json=body, headers=headers)
            latencies.append(time.perf_counter() - started)
            statuses[answer.status_code] = statuses.get(answer.status_code, 0) + 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "rps": round(len(requests) / elapsed, 1),
        "p50_ms": round(percentile(latencies, 50) * 1000, 2),
        "p99_ms": round(percentile(latencies, 99) * 1000, 2),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
    }


async def run(args: argparse.Namespace, base: str, session_id: str) -> dict[str, Any]:
    """Tokens first, then the bare endpoint's load, then the orders' load."""
    limits = httpx.Limits(
        max_connections=args.connections, max_keepalive_connections=args.connections
    )
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
        tokens = []
        print(f"issuing {args.buyers} tokens...", file=sys.stderr)
        for n in range(args.buyers):
            email = f"bench{n}@example.com"
            await client.post(
                "/api/auth/register",
                json={"email": email, "password": "bench-password", "display_name": f"B{n}"},
            )
            answer = await client.post(
                "/api/auth/token", json={"email": email, "password": "bench-password"}
            )
            tokens.append({"Authorization": f"Bearer {answer.json()['access_token']}"})
        seats = [f"A-{r}-{s}" for r in range(1, 11) for s in range(1, 21)]
        orders = [
            (
                "/api/orders",
                {"session_id": session_id, "seat_ids": [seats[n % len(seats)]]},
                tokens[n % len(tokens)],
            )
            for n in range(args.requests)
        ]
        bare = [("/bench/bare", body, headers) for _, body, headers in orders]
        print(
            f"bare POST: {args.requests} requests, {args.connections} connections", file=sys.stderr
        )
        bare_result = await load(client, bare, args.connections)
        print(f"POST /api/orders: {args.requests} requests", file=sys.stderr)
        orders_result = await load(client, orders, args.connections)
    return {
        "connections": args.connections,
        "requests": args.requests,
        "orders_rps": orders_result["rps"],
        "orders_p50_ms": orders_result["p50_ms"],
        "orders_p99_ms": orders_result["p99_ms"],
        "orders_statuses": orders_result["statuses"],
        "bare_rps": bare_result["rps"],
        "bare_p50_ms": bare_result["p50_ms"],
        "bare_p99_ms": bare_result["p99_ms"],
        "ratio": round(orders_result["rps"] / bare_result["rps"], 3),
    }


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Start the server, run both loads, stop the server."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--buyers", type=int, default=200)
    args = parser.parse_args(argv)
    port = free_port()
    server = subprocess.Popen(  # noqa: S603  # our own interpreter and script
        [sys.executable, "-c", SERVER, str(port)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        if server.stdout is None:
            raise SystemExit("the server did not start")
        session_id = server.stdout.readline().split()[1]
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                if httpx.get(f"{base}/health/live", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        return asyncio.run(run(args, base, session_id))
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    print(json.dumps(main()))
