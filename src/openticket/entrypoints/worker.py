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

The container builds all of it (:class:`~openticket.adapters.nats.worker_node.WorkerNode`);
this command checks the settings, migrates, starts it and stops it on a signal.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import sys
from collections.abc import Sequence

from openticket.adapters.nats.connection import NatsUnreachable
from openticket.adapters.nats.worker_node import WorkerNode
from openticket.adapters.postgres import DatabaseUnreachable, MigrationError
from openticket.adapters.redis.connection import RedisUnreachable
from openticket.application.facade import OpenTicket
from openticket.application.ports.errors import AdapterUnavailable
from openticket.entrypoints.bootstrap import build_container
from openticket.entrypoints.heap import settle_heap
from openticket.entrypoints.logging import configure_logging
from openticket.entrypoints.migrate import apply_migrations
from openticket.entrypoints.settings import Settings
from openticket.entrypoints.task_dump import dump_tasks_on_sigusr1
from openticket.entrypoints.tracing import start_tracing, stop_tracing
from openticket.entrypoints.worker_metrics import WorkerMetrics


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


def replica_number(text: str, hostname: str) -> int:
    """``--replica``: a number, or ``auto``: the trailing ``-<n>`` of ``hostname``.

    A StatefulSet's pod is named (and its host name is) ``<statefulset>-<ordinal>``, so
    ``auto`` is the pod's ordinal: ``openticket-worker-2`` → ``2``.
    """
    if text == "auto":
        ordinal = re.search(r"-(\d+)$", hostname)
        if ordinal is None:
            raise ValueError(
                f"--replica auto: the host name {hostname!r} does not end in -<number>"
                " (a StatefulSet pod's ordinal); give the replica's number instead"
            )
        return int(ordinal.group(1))
    if not (text.isascii() and text.isdigit()):
        raise ValueError(f"--replica {text!r}: use auto or a number of 0 or more")
    return int(text)


def replica_partitions(replica: int, replicas: int, count: int) -> list[int]:
    """The partitions replica ``replica`` of ``replicas`` prefers: its share of ``count``.

    The partitions are cut into ``replicas`` contiguous ranges whose sizes differ by at
    most one, replica 0 taking the first: 16 partitions over 2 replicas are 0-7 and 8-15,
    over 3 replicas 0-4, 5-9 and 10-15. With more replicas than partitions, some prefer
    none and take over the partitions of replicas that stop.
    """
    if replicas < 1:
        raise ValueError(f"--replicas {replicas}: use 1 or more")
    if not 0 <= replica < replicas:
        raise ValueError(
            f"replica {replica} is not within 0-{replicas - 1} (--replicas {replicas}):"
            " raise --replicas to the number of workers"
        )
    return list(range(replica * count // replicas, (replica + 1) * count // replicas))


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
    traced = (
        start_tracing(settings.otlp_endpoint, service="openticket-worker", instance=name)
        if settings.otlp_endpoint
        else None
    )
    try:
        return await _work(settings, partitions=partitions, name=name)
    finally:
        stop_tracing(traced)


async def _work(settings: Settings, *, partitions: Sequence[int], name: str) -> int:
    container = build_container(settings, process="worker")
    app: OpenTicket = container.app()
    try:
        await apply_migrations(
            settings.database_url, settings.database_schema or None, prefix="openticket worker"
        )
        await app.start(sweeper=False)  # connections, streams, buckets
    except (DatabaseUnreachable, MigrationError, RedisUnreachable, NatsUnreachable) as e:
        print(f"openticket worker: {e}", file=sys.stderr)
        return 1
    metrics = (
        WorkerMetrics(app.bus, name, settings.partitions) if settings.worker_metrics_port else None
    )
    node: WorkerNode = container.worker_node(worker_id=name, preferred=partitions)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    dump_tasks_on_sigusr1()
    try:
        await node.start()
    except AdapterUnavailable as e:
        print(f"openticket worker: {e}", file=sys.stderr)
        await app.stop()
        return 1
    scrape = ""
    if metrics is not None:
        metrics.follow(node)
        metrics.follow_actors(node.seating)
        metrics.follow_consumers(node.consumers)
        try:
            where = metrics.serve(settings.worker_metrics_host, settings.worker_metrics_port)
        except OSError as e:
            print(f"openticket worker: cannot serve /metrics: {e}", file=sys.stderr)
            await node.stop()
            await app.stop()
            return 1
        scrape = f"; metrics on {where}"
    roles = ", ".join(role.name for role in app.roles)
    print(
        f"openticket worker {name}: {settings.partitions} partitions, prefers "
        f"{_ranges(partitions) or 'none (takes over orphans)'}; saga roles {roles} "
        f"({settings.worker_consumers} consumers each){scrape}"
        f"{f'; traces to {settings.otlp_endpoint}' if settings.otlp_endpoint else ''}"
        "; Ctrl+C to stop",
        flush=True,
    )
    settle_heap()
    await stopping.wait()
    print(f"openticket worker {name}: handing its work over...", flush=True)
    await node.stop()
    if metrics is not None:
        metrics.stop()
    await app.stop()
    return 0


def _ranges(partitions: Sequence[int]) -> str:
    runs: list[str] = []
    for p in sorted(partitions):
        if runs and runs[-1].split("-")[-1] == str(p - 1):
            runs[-1] = f"{runs[-1].split('-')[0]}-{p}"
        else:
            runs.append(str(p))
    return ",".join(runs)
