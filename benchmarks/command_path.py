"""The seat command path over NATS, alone: what one command costs from ask to answer.

    python benchmarks/command_path.py
    python benchmarks/command_path.py --commands 5000 --concurrency 1,100

One process holds all three parts: an embedded OpenTicket whose partition actors
answer through a ``PartitionHost`` on one NATS connection, and a ``RemoteSeating`` on
another that asks them, under a prefix of the run's own on the local NATS
(``--nats-url``). Each buyer holds one seat and releases it, again and again;
``--concurrency`` buyers do so at once (each on seats of its own, so every hold is
granted). Nothing else runs: no HTTP, no database, no event streams.

The figure that matters is ``cpu_us_per_command``: the CPU of the whole process per
command (asking, both connections' I/O, the host, the actor). At concurrency 1 it is a
round trip's cost; with many buyers, ``commands_per_message`` shows how many commands
shared a message. Progress goes to stderr; each concurrency value prints one JSON
object on stdout.
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
from typing import Any

import nats

from openticket import bootstrap
from openticket.adapters.memory import FakeClock, SequentialIdGenerator, SequentialTicketCodes
from openticket.adapters.nats.command_path import PartitionHost, RemoteSeating
from openticket.application.seating.api import seat_statuses
from openticket.application.seating.commands import HoldSeats, ReleaseSeats
from openticket.application.seating.router import PartitionRouter
from openticket.application.seating.service import SeatingService
from openticket.domain.shared import AreaId, HoldId, OrderId, SeatId, SessionId, UserId
from openticket.entrypoints.settings import Settings
from openticket.testing.world import build_world

PARTITIONS = 4


def percentile(values: Sequence[float], p: float) -> float:
    """The ``p``-th percentile (0-100) of already sorted values."""
    return values[min(len(values) - 1, int(len(values) * p / 100))] if values else 0.0


async def buyer(
    remote: RemoteSeating, session: SessionId, seat: SeatId, first: int, count: int
) -> list[float]:
    """Hold ``seat`` and release it ``count`` times; the seconds each command took."""
    took: list[float] = []
    clock = time.perf_counter
    for n in range(first, first + count):
        hold_id = HoldId(uuid.UUID(int=1_000_000 + n))
        started = clock()
        await remote.ask(
            HoldSeats(
                session_id=session,
                area_id=AreaId(seat.split("-")[0]),
                hold_id=hold_id,
                holder_id=UserId(uuid.UUID(int=5)),
                order_id=OrderId(uuid.UUID(int=10_000_000 + n)),
                seat_ids=(seat,),
            )
        )
        held = clock()
        await remote.ask(
            ReleaseSeats(session_id=session, area_id=AreaId(seat.split("-")[0]), hold_id=hold_id)
        )
        took += [held - started, clock() - held]
    return took


async def run(nats_url: str, commands: int, concurrency: int) -> dict[str, Any]:
    """One measurement: ``commands`` commands from ``concurrency`` buyers at once."""
    clock = FakeClock()
    app = bootstrap(
        Settings(partitions=PARTITIONS, hold_ttl_seconds=120),
        clock=clock,
        ids=SequentialIdGenerator(7),
        ticket_codes=SequentialTicketCodes(7),
    )
    world = await build_world(app, clock)
    await app.start(sweeper=False)
    prefix = f"BENCH{uuid.uuid4().hex[:8].upper()}"
    hosting = await nats.connect(nats_url)
    asking = await nats.connect(nats_url)
    local = app.seating
    if not isinstance(local, SeatingService):
        raise SystemExit("the embedded profile runs its actors in this process")
    host = PartitionHost(hosting, local, prefix=prefix)
    try:
        for partition in range(PARTITIONS):
            await host.serve(partition)
        remote = RemoteSeating(asking, PartitionRouter(PARTITIONS), prefix=prefix, timeout=5)
        session = world.session_id
        statuses = await seat_statuses(app.seating, session, [AreaId("A"), AreaId("B")])
        seats = sorted(statuses)
        if concurrency > len(seats):
            raise SystemExit(f"at most {len(seats)} buyers: one seat each")
        rounds = max(commands // (2 * concurrency), 1)
        warm = [buyer(remote, session, seats[k], k * 100_000, 20) for k in range(concurrency)]
        await asyncio.gather(*warm)
        sent = remote.messages
        cpu, wall = time.process_time(), time.perf_counter()
        took = await asyncio.gather(
            *(
                buyer(remote, session, seats[k], k * 100_000 + 50, rounds)
                for k in range(concurrency)
            )
        )
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        latencies = sorted(t for each in took for t in each)
        done = len(latencies)
        await remote.stop()
        return {
            "concurrency": concurrency,
            "commands": done,
            "commands_per_s": round(done / wall, 1),
            "command_p50_ms": round(percentile(latencies, 50) * 1000, 3),
            "command_p99_ms": round(percentile(latencies, 99) * 1000, 3),
            "cpu_us_per_command": round(cpu / done * 1e6, 1),
            "commands_per_message": round(done / max(remote.messages - sent, 1), 2),
        }
    finally:
        await host.stop()
        await app.stop()
        await hosting.close()
        await asking.close()


async def main(argv: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Parse the arguments, run each concurrency value, print one JSON line each."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=4000)
    parser.add_argument("--concurrency", default="1,12", help="buyers at once, a list")
    parser.add_argument(
        "--nats-url", default=os.environ.get("OPENTICKET_NATS_URL", "nats://127.0.0.1:4222")
    )
    args = parser.parse_args(argv)
    results = []
    for value in (int(v) for v in args.concurrency.split(",")):
        print(f"{value} buyers: {args.commands} commands", file=sys.stderr, flush=True)
        result = await run(args.nats_url, args.commands, value)
        print(json.dumps(result), flush=True)
        results.append(result)
    return results


if __name__ == "__main__":
    asyncio.run(main())
