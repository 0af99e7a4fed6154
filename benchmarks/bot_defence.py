"""What the bot defence costs a request: assessments/s, latency and CPU, on Redis and in memory.

    python benchmarks/bot_defence.py
    python benchmarks/bot_defence.py --assessments 20000 --concurrency 32 --store redis

Every order and queue join of a purchase is shown to the ``HeuristicBotDefence`` once.
This runs ``--assessments`` order signals of distinct paced buyers (each from an address
of its own, with a device id, admitted a few seconds before: the common, allowed case)
through it, ``--concurrency`` at once, as one API process would, and reports the verdicts
(all must be ``allow``), latency percentiles and this process's CPU per assessment: what
the defence adds to a purchase's CPU and round trips. On Redis each assessment is one
round trip (one pipeline of sliding-window scripts); keys live under a prefix of the
run's own, deleted at the end. The result is one JSON object on stdout.
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
from datetime import UTC, datetime, timedelta
from typing import Any

import redis.asyncio as aioredis
from waiting_room import percentile  # the benchmark beside this one (run as a script)

from openticket.adapters.bot_defence import HeuristicBotDefence
from openticket.adapters.memory.signal_counter import MemorySignalCounter
from openticket.adapters.redis.signal_counter import RedisSignalCounter
from openticket.application.ports.bot_defence import BotAction, Signal, SignalKind
from openticket.application.ports.signal_counter import SignalCounter
from openticket.domain.shared import SessionId, UserId

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """Assess ``args.assessments`` paced orders; the figures of the run."""
    client = None
    prefix = f"bench:bot-defence:{uuid.uuid4().hex[:12]}:"
    counter: SignalCounter
    if args.store == "redis":
        client = aioredis.Redis.from_url(args.redis_url)
        counter = RedisSignalCounter(client, prefix=prefix)
    else:
        counter = MemorySignalCounter()
    defence = HeuristicBotDefence(counter)
    session = SessionId(uuid.uuid4())
    start = datetime.now(UTC)
    latencies: list[float] = []
    verdicts: dict[str, int] = {}
    gate = asyncio.Semaphore(args.concurrency)

    async def one(n: int) -> None:
        at = start + timedelta(milliseconds=n)
        signal = Signal(
            kind=SignalKind.ORDER,
            session_id=session,
            user_id=UserId(uuid.UUID(int=n + 1)),
            at=at,
            address=f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}",
            device_id=f"device-{n}",
            joined_at=at - timedelta(seconds=40),
            admitted_at=at - timedelta(seconds=5),
        )
        async with gate:
            began = time.perf_counter()
            verdict = await defence.assess(signal)
            latencies.append(time.perf_counter() - began)
        verdicts[verdict.action.value] = verdicts.get(verdict.action.value, 0) + 1

    cpu, wall = time.process_time(), time.perf_counter()
    try:
        await asyncio.gather(*(one(n) for n in range(args.assessments)))
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    finally:
        if client is not None:
            async for key in client.scan_iter(match=f"{prefix}*", count=1000):
                await client.delete(key)
            await client.aclose()
    latencies.sort()
    return {
        "store": args.store,
        "assessments": args.assessments,
        "concurrency": args.concurrency,
        "assessments_per_s": round(args.assessments / wall, 1),
        "p50_ms": round(percentile(latencies, 50) * 1000, 3),
        "p99_ms": round(percentile(latencies, 99) * 1000, 3),
        "cpu_us_per_assessment": round(cpu / args.assessments * 1e6, 1),
        "verdicts": verdicts,
        "all_allowed": verdicts == {BotAction.ALLOW.value: args.assessments},
    }


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Parse the arguments, run, print the JSON result and return it."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--assessments", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--store", choices=("redis", "memory"), default="redis")
    parser.add_argument(
        "--redis-url", default=os.environ.get("OPENTICKET_REDIS_URL", DEFAULT_REDIS_URL)
    )
    args = parser.parse_args(argv)
    result = asyncio.run(run(args))
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return result


if __name__ == "__main__":
    main()
