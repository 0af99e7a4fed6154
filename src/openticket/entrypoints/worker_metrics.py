"""A worker's Prometheus ``/metrics``: what its partition actors and saga steps decide.

Holds are decided in the workers in the production profile, so the API processes'
hold counters stay at zero there; each worker counts its own (the same metrics as the
API's, from its own event bus) and says which partitions it owns. Served by
``prometheus_client``'s small HTTP server on ``OPENTICKET_WORKER_METRICS_PORT``, in a
thread of its own: a busy event loop never delays a scrape.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from wsgiref.simple_server import WSGIServer

import structlog
from prometheus_client import Gauge, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from openticket.adapters.nats.roles import RoleConsumers
from openticket.adapters.nats.worker_node import WorkerNode
from openticket.application.messagebus import MessageBus
from openticket.application.seating.service import SeatingService
from openticket.entrypoints.http.observability import Metrics

_log = structlog.get_logger("openticket.worker.metrics")


class WorkerMetrics:
    """The API's metrics, counted from a worker's bus, and the worker's own partitions.

    ``partitions`` is the deployment's partition count, exported as a gauge so that an
    alert can compare the partitions owned with it.
    """

    def __init__(self, bus: MessageBus, worker_id: str, partitions: int) -> None:
        self.metrics = Metrics()
        self.metrics.watch(bus)
        registry = self.metrics.registry
        Gauge(
            "openticket_partitions_configured",
            "seat-hold partitions of the deployment (OPENTICKET_PARTITIONS): the workers'"
            " openticket_worker_partitions_owned should add up to it",
            registry=registry,
        ).set(partitions)
        self.partitions_owned = Gauge(
            "openticket_worker_partitions_owned",
            "partitions whose lease this worker holds now (-1: the worker did not answer)",
            ["worker"],
            registry=registry,
        )
        self._worker_id = worker_id
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    def follow(self, node: WorkerNode) -> None:
        """Report how many partitions ``node`` owns, read at each scrape, and its lease moves.

        Leases tell time by the event loop's clock, so the scrape's thread asks the loop
        (waiting a second at most; -1 when the loop does not answer in time).
        """
        leases = node.leases
        loop = asyncio.get_running_loop()

        async def owned() -> int:
            return len(leases.owned)

        def read() -> float:
            try:
                return asyncio.run_coroutine_threadsafe(owned(), loop).result(timeout=1)
            except (TimeoutError, RuntimeError):
                return -1

        self.partitions_owned.labels(self._worker_id).set_function(read)
        self.metrics.registry.register(_LeaseMoves(node, self._worker_id))

    def follow_actors(self, seating: SeatingService) -> None:
        """Report each partition actor's mailbox depth, batches and commands decided."""
        self.metrics.registry.register(_ActorCollector(seating, asyncio.get_running_loop()))

    def follow_consumers(self, consumers: RoleConsumers) -> None:
        """Report the saga's durables' backlog and the parked messages, asked of NATS."""
        self.metrics.registry.register(_ConsumerCollector(consumers, asyncio.get_running_loop()))

    def serve(self, host: str, port: int) -> str:
        """Listen on ``host:port``; the address of ``/metrics``."""
        self._server, self._thread = start_http_server(
            port, addr=host, registry=self.metrics.registry
        )
        return f"http://{host}:{port}/metrics"

    def stop(self) -> None:
        """Stop listening."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()


class _ActorCollector(Collector):
    """The partition actors' figures, read in their event loop at each scrape."""

    def __init__(self, seating: SeatingService, loop: asyncio.AbstractEventLoop) -> None:
        self._seating = seating
        self._loop = loop

    def collect(self) -> Iterator[Metric]:
        """Mailbox depth (gauge), batches and commands decided (counters), per partition."""

        async def figures() -> list[tuple[str, int, int, int]]:
            return [
                (str(n), actor.mailbox_depth, actor.batches, actor.decided)
                for n, actor in sorted(self._seating.actors.items())
            ]

        try:
            rows = asyncio.run_coroutine_threadsafe(figures(), self._loop).result(timeout=1)
        except (TimeoutError, RuntimeError):
            rows = []
        depth = GaugeMetricFamily(
            "openticket_worker_mailbox_depth",
            "seat commands waiting for a partition actor's next batch",
            labels=["partition"],
        )
        batches = CounterMetricFamily(
            "openticket_worker_batches",
            "batches a partition actor decided (one lock-store call each)",
            labels=["partition"],
        )
        decided = CounterMetricFamily(
            "openticket_worker_commands_decided",
            "seat commands a partition actor decided (over batches: the mean batch size)",
            labels=["partition"],
        )
        for partition, waiting, batch_count, command_count in rows:
            depth.add_metric([partition], waiting)
            batches.add_metric([partition], batch_count)
            decided.add_metric([partition], command_count)
        yield from (depth, batches, decided)


class _ConsumerCollector(Collector):
    """The saga's durable consumers as JetStream sees them, read at each scrape."""

    def __init__(self, consumers: RoleConsumers, loop: asyncio.AbstractEventLoop) -> None:
        self._consumers = consumers
        self._loop = loop

    def collect(self) -> Iterator[Metric]:
        """Pending and unacknowledged messages per durable; parked messages."""

        async def figures() -> tuple[dict[str, tuple[int, int]], int]:
            return await self._consumers.backlog(), await self._consumers.parked()

        backlog: dict[str, tuple[int, int]] = {}
        parked: int | None = None
        try:
            backlog, parked = asyncio.run_coroutine_threadsafe(figures(), self._loop).result(
                timeout=2
            )
        except Exception:  # NATS away or slow: the figures are left out of this scrape
            _log.warning("consumer_metrics_unavailable", exc_info=True)
        pending = GaugeMetricFamily(
            "openticket_consumer_pending",
            "messages of a saga durable not delivered yet (its lag)",
            labels=["durable"],
        )
        unacked = GaugeMetricFamily(
            "openticket_consumer_ack_pending",
            "messages of a saga durable delivered and not acknowledged yet",
            labels=["durable"],
        )
        for durable, (waiting, delivered) in sorted(backlog.items()):
            pending.add_metric([durable], waiting)
            unacked.add_metric([durable], delivered)
        yield from (pending, unacked)
        if parked is not None:
            yield GaugeMetricFamily(
                "openticket_parked_messages",
                "messages parked for an operator (PARKED stream): alert on any",
                value=parked,
            )


class _LeaseMoves(Collector):
    """Partitions a worker took over and gave up (read without the loop: plain counts)."""

    def __init__(self, node: WorkerNode, worker_id: str) -> None:
        self._node = node
        self._worker_id = worker_id

    def collect(self) -> Iterator[Metric]:
        """``openticket_worker_lease_moves_total{worker, kind}``."""
        moves = CounterMetricFamily(
            "openticket_worker_lease_moves",
            "partitions this worker acquired (its own at start, others' when they stopped)"
            " or lost, since it started",
            labels=["worker", "kind"],
        )
        for kind, count in sorted(dict(self._node.lease_moves).items()):
            moves.add_metric([self._worker_id, kind], count)
        yield moves
