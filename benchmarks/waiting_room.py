"""The waiting room on Redis: joins/s, admissions/s and the bytes a waiting buyer costs.

    python benchmarks/waiting_room.py
    python benchmarks/waiting_room.py --buyers 100000 --admit-batch 100 --concurrency 32

``--buyers`` buyers join one session's queue through the ``RedisWaitingRoomStore``,
``--concurrency`` joins in flight at once (as many API processes' requests would
be); the first ``--pre-queue`` share of them joins before the sale opens (into the
pre-queue, a random ticket each), the rest after it. Then one admitter (as the lease
makes it: one per session) admits them ``--admit-batch`` at a time until the queue is
empty, and the run checks that every buyer was admitted exactly once.

``bytes_per_waiting_buyer`` is Redis' ``MEMORY USAGE … SAMPLES 0`` of the session's
keys, summed, over the buyers waiting, read after the joins. Latencies are of one
store call as its caller sees it (with more joins in flight than ``--connections``,
waiting for a free connection too: redis-py's blocking pool then starves a few for
up to a second). ``cpu_us_per_join`` and ``cpu_us_per_admission`` are this client
process's CPU: on a small machine the client, not Redis, sets the pace. Everything
lives under a prefix of the run's own, deleted at the end. Progress goes to stderr;
the result is one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import redis.asyncio as aioredis

from openticket.adapters.redis.waiting_room import RedisWaitingRoomStore
from openticket.adapters.system import SystemClock
from openticket.domain.shared import SessionId, UserId

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """The ``p``-th percentile (0-100) of already sorted values."""
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, round(p / 100 * (len(sorted_values) - 1))))
    return sorted_values[index]


def ms(seconds: float) -> float:
    """Seconds as milliseconds, rounded for the report."""
    return round(seconds * 1000, 3)


async def join_all(
    store: RedisWaitingRoomStore,
    session: SessionId,
    buyers: Sequence[UserId],
    early: int,
    concurrency: int,
) -> tuple[float, list[float]]:
    """Every buyer joins (the first ``early`` into the pre-queue); seconds, latencies."""
    clock = SystemClock()
    opens = clock.now() + timedelta(hours=1)
    opened = clock.now()
    took: list[float] = []
    counter = iter(range(len(buyers)))

    async def worker() -> None:
        for n in counter:
            started = time.perf_counter()
            await store.join(session, buyers[n], pre_queue_until=opens if n < early else opened)
            took.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started, took


async def admit_all(
    store: RedisWaitingRoomStore, session: SessionId, batch: int
) -> tuple[float, list[float], list[UserId]]:
    """Admit ``batch`` at a time until nobody waits; seconds, latencies, who in order."""
    took: list[float] = []
    admitted: list[UserId] = []
    started = time.perf_counter()
    while True:
        call = time.perf_counter()
        users = await store.admit_next(session, batch)
        took.append(time.perf_counter() - call)
        if not users:
            break
        admitted += users
    return time.perf_counter() - started, took, admitted


async def memory_usage(client: aioredis.Redis, keys: Sequence[str]) -> int:
    """The bytes Redis spends on ``keys`` (exact: ``SAMPLES 0``); a missing key costs 0."""
    total = 0
    for key in keys:
        used = await client.execute_command("MEMORY", "USAGE", key, "SAMPLES", "0")
        total += int(used or 0)
    return total


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """One measurement; the JSON object it prints."""
    prefix = f"bench:waiting-room:{uuid.uuid4().hex[:12]}:"
    pool = aioredis.BlockingConnectionPool.from_url(
        args.redis_url, max_connections=args.connections, timeout=30
    )
    client = aioredis.Redis(connection_pool=pool)
    store = RedisWaitingRoomStore(client, SystemClock(), prefix=prefix)
    session = SessionId(uuid.uuid4())
    buyers = [UserId(uuid.uuid4()) for _ in range(args.buyers)]
    early = round(args.buyers * args.pre_queue)
    try:
        await client.ping()
        print(f"{args.buyers} buyers join ({early} early)", file=sys.stderr, flush=True)
        cpu = time.process_time()
        join_s, join_took = await join_all(store, session, buyers, early, args.concurrency)
        join_cpu = time.process_time() - cpu
        waiting = await store.length(session)
        if waiting != args.buyers:
            raise SystemExit(f"{args.buyers} buyers joined but {waiting} wait")
        used = await memory_usage(client, store.keys(session))
        print(f"admitting {args.admit_batch} at a time", file=sys.stderr, flush=True)
        cpu = time.process_time()
        admit_s, admit_took, admitted = await admit_all(store, session, args.admit_batch)
        admit_cpu = time.process_time() - cpu
        running = await store.admitted_count(session)
        join_took.sort()
        admit_took.sort()
        return {
            "buyers": args.buyers,
            "pre_queue_buyers": early,
            "concurrency": args.concurrency,
            "admit_batch": args.admit_batch,
            "joins_per_s": round(args.buyers / join_s, 1),
            "join_p50_ms": ms(percentile(join_took, 50)),
            "join_p99_ms": ms(percentile(join_took, 99)),
            "cpu_us_per_join": round(join_cpu / args.buyers * 1e6, 1),
            "admissions_per_s": round(len(admitted) / admit_s, 1),
            "admit_calls": len(admit_took),
            "admit_p50_ms": ms(percentile(admit_took, 50)),
            "admit_p99_ms": ms(percentile(admit_took, 99)),
            "cpu_us_per_admission": round(admit_cpu / max(len(admitted), 1) * 1e6, 1),
            "bytes_per_waiting_buyer": round(used / waiting, 1),
            "admitted": len(admitted),
            "admitted_distinct": len(set(admitted)),
            "admitted_all": set(admitted) == set(buyers),
            "admissions_running": running,
            "prefix": prefix,
        }
    finally:
        stale = [key async for key in client.scan_iter(match=f"{prefix}*", count=1000)]
        if stale:
            await client.delete(*stale)
        await client.aclose()
        await pool.disconnect()


async def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Parse the arguments, run once, print the JSON object."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--buyers", type=int, default=100_000)
    parser.add_argument("--admit-batch", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=32, help="joins in flight")
    parser.add_argument("--connections", type=int, default=32, help="Redis connections")
    parser.add_argument(
        "--pre-queue", type=float, default=0.5, help="share of buyers joining before the sale"
    )
    parser.add_argument(
        "--redis-url", default=os.environ.get("OPENTICKET_REDIS_URL", DEFAULT_REDIS_URL)
    )
    args = parser.parse_args(argv)
    if args.buyers < 1 or args.admit_batch < 1 or args.concurrency < 1 or args.connections < 1:
        parser.error("--buyers, --admit-batch, --concurrency and --connections must be positive")
    if not 0.0 <= args.pre_queue <= 1.0:
        parser.error("--pre-queue is a share: between 0 and 1")
    result = await run(args)
    print(json.dumps(result), flush=True)
    return result


if __name__ == "__main__":
    asyncio.run(main())
