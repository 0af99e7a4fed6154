"""``openticket worker``: partition actors and the saga's consumers, in a process of their own.

A worker keeps leases on its preferred partitions (``--partitions 0-7``) in NATS KV,
takes over the partitions of a worker that stopped or died, and answers the seat
commands of the partitions it owns (``seat.lock.request.<n>``). Taking a partition
over drops whatever this process remembered of it: its actor rebuilds from the lock
store and the database before deciding the first command.

It also runs the saga's roles (``ticketing``, ``order-saga``, ``payments``) as durable
JetStream consumers shared by every worker (:mod:`openticket.adapters.nats.roles`):
whatever process committed an event, and whether or not an API process already ran
its step, a worker handles it at least once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
from collections.abc import Sequence
from datetime import timedelta

import structlog

from openticket.adapters.nats.command_path import PartitionHost
from openticket.adapters.nats.connection import NatsUnreachable
from openticket.adapters.nats.feeds import SeatEventForwarder
from openticket.adapters.nats.leases import PartitionLeases
from openticket.adapters.nats.roles import RoleConsumers
from openticket.adapters.nats.streams import ROUTES, stream_name
from openticket.adapters.postgres import DatabaseUnreachable, MigrationError
from openticket.adapters.redis.connection import RedisUnreachable
from openticket.application.facade import OpenTicket
from openticket.application.ports.errors import AdapterUnavailable
from openticket.application.ports.lifecycle import stop_task
from openticket.application.seating.actor import PartitionLoaded
from openticket.application.seating.service import SeatingService
from openticket.domain.seating import SeatEvent
from openticket.entrypoints.bootstrap import build_container
from openticket.entrypoints.container import Container
from openticket.entrypoints.heap import settle_heap
from openticket.entrypoints.logging import configure_logging
from openticket.entrypoints.migrate import apply_migrations
from openticket.entrypoints.settings import Settings
from openticket.entrypoints.task_dump import dump_tasks_on_sigusr1

_log = structlog.get_logger("openticket.worker")


def parse_partitions(text: str, count: int) -> list[int]:
    """``"0-3,6"`` → ``[0, 1, 2, 3, 6]``; every number must be below ``count``."""
    chosen: set[int] = set()
    for part in filter(None, (p.strip() for p in text.split(","))):
        first, _, last = part.partition("-")
        try:
            low, high = int(first), int(last or first)
        except ValueError as e:
            raise ValueError(f"not a partition or range: {part!r}") from e
        if low > high or low < 0 or high >= count:
            raise ValueError(f"partitions {part!r} are not within 0-{count - 1}")
        chosen.update(range(low, high + 1))
    return sorted(chosen)


async def work(settings: Settings, *, partitions: Sequence[int], worker_id: str | None) -> int:
    """Run one worker until SIGINT or SIGTERM; the process exit code."""
    configure_logging()
    if settings.messaging != "nats" or settings.storage != "postgres":
        print(
            "openticket worker: set OPENTICKET_NATS_URL (the command path and leases) and "
            "OPENTICKET_DATABASE_URL (the catalog and tickets every process shares)",
            file=sys.stderr,
        )
        return 2
    name = worker_id or f"{socket.gethostname()}-{os.getpid()}"
    container = build_container(settings, process="worker")
    app: OpenTicket = container.app()
    local: SeatingService = container.local_seating()
    try:
        await apply_migrations(
            settings.database_url, settings.database_schema or None, prefix="openticket worker"
        )
        await app.start(sweeper=False)  # connections, streams, buckets
    except (DatabaseUnreachable, MigrationError, RedisUnreachable, NatsUnreachable) as e:
        print(f"openticket worker: {e}", file=sys.stderr)
        return 1
    nats = container.nats()
    forward = SeatEventForwarder(container.nats_events())
    leases = _leases(container, settings, name, partitions, forward)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    dump_tasks_on_sigusr1()
    consumers = RoleConsumers(
        nats.client,
        nats.js,
        app.roles,
        prefix=settings.nats_prefix,
        instances=settings.worker_consumers,
        max_deliver=settings.consumer_max_deliver,
        ack_wait=timedelta(seconds=settings.consumer_ack_wait_seconds),
        replicas=settings.nats_replicas,
    )
    await local.start()
    try:
        await leases.start()
        await consumers.start()
    except AdapterUnavailable as e:
        print(f"openticket worker: {e}", file=sys.stderr)
        await leases.stop()
        await local.stop()
        await forward.stop()
        await app.stop()
        return 1
    roles = ", ".join(role.name for role in app.roles)
    print(
        f"openticket worker {name}: {settings.partitions} partitions, prefers "
        f"{_ranges(partitions) or 'none (takes over orphans)'}; saga roles {roles} "
        f"({settings.worker_consumers} consumers each); Ctrl+C to stop",
        flush=True,
    )
    sweep = asyncio.create_task(_sweep(local, settings.sweep_interval_seconds, stopping))
    settle_heap()
    await stopping.wait()
    print(f"openticket worker {name}: handing its work over...", flush=True)
    await consumers.stop()  # running saga steps finish; the rest goes to the other workers
    await leases.stop()
    await stop_task(sweep)
    await local.stop()
    await forward.stop()  # the seat events decided last
    await app.stop()
    return 0


def _leases(
    container: Container,
    settings: Settings,
    name: str,
    partitions: Sequence[int],
    forward: SeatEventForwarder,
) -> PartitionLeases:
    """The leases of this worker, serving each partition it holds on the command path."""
    app: OpenTicket = container.app()
    local: SeatingService = container.local_seating()
    nats = container.nats()
    host = PartitionHost(nats.client, local, prefix=settings.nats_prefix)
    for kind in ROUTES:  # the actors' seat events also go to the SEATS stream
        if issubclass(kind, SeatEvent) or kind is PartitionLoaded:
            app.bus.subscribe(kind, "forward_to_seats_stream", forward)

    async def acquired(partition: int) -> None:
        local.actors[partition].forget()  # whatever we knew may be stale: rebuild
        await host.serve(partition)
        _log.info("partition_acquired", worker=name, partition=partition)

    async def lost(partition: int) -> None:
        await host.release(partition)
        local.actors[partition].forget()
        _log.info("partition_lost", worker=name, partition=partition)

    lease = timedelta(seconds=settings.worker_lease_seconds)
    leases = PartitionLeases(
        nats.js,
        worker_id=name,
        partitions=settings.partitions,
        preferred=partitions,
        bucket=stream_name("openticket_leases", settings.nats_prefix),
        ttl=lease,
        heartbeat=lease / 3,
        clock=container.clock(),
        on_acquired=acquired,
        on_lost=lost,
        replicas=settings.nats_replicas,
    )
    local.fence(leases.epoch)  # an actor decides only under a lease held now
    return leases


async def _sweep(local: SeatingService, interval: float, stopping: asyncio.Event) -> None:
    """Expire the due holds of the partitions this worker owns, every ``interval``."""
    while not stopping.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), interval)
        try:
            await local.expire_due()
        except Exception as e:  # a sweep that fails is tried again next time
            _log.warning("worker_sweep_failed", error=str(e))


def _ranges(partitions: Sequence[int]) -> str:
    runs: list[str] = []
    for p in sorted(partitions):
        if runs and runs[-1].split("-")[-1] == str(p - 1):
            runs[-1] = f"{runs[-1].split('-')[0]}-{p}"
        else:
            runs.append(str(p))
    return ",".join(runs)
