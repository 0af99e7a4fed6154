"""One worker process's part of a deployment: its partitions and the saga's consumers.

The container builds it (``Container.worker_node``) from the process's adapters; the
``openticket worker`` command only starts it, waits for a signal and stops it.

- **Partitions.** It keeps leases on its preferred partitions in NATS KV and takes
  over the partitions of a worker that stopped or died; for each partition it holds,
  its actor answers the seat commands of the command path (``PartitionHost``), and
  decides only while the lease is held (the actors are fenced by the lease's epoch).
  Taking a partition over drops whatever the actor remembered of it: it rebuilds from
  the lock store and the database before deciding the first command.
- **Seat events.** What the actors decide goes to the SEATS stream too, for the API
  processes' live feeds (``SeatEventForwarder``).
- **Saga.** The saga's roles run as durable consumers shared by every worker
  (``RoleConsumers``).
- **Expiry.** Every ``sweep_interval`` it expires the due holds of the partitions it
  owns.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta

import structlog
from nats.js import JetStreamContext

from openticket.adapters.nats.command_path import PartitionHost
from openticket.adapters.nats.feeds import SeatEventForwarder
from openticket.adapters.nats.leases import PartitionLeases
from openticket.adapters.nats.roles import RoleConsumers
from openticket.adapters.nats.streams import ROUTES
from openticket.application.messagebus import MessageBus
from openticket.application.ports.clock import Clock
from openticket.application.ports.errors import AdapterUnavailable
from openticket.application.ports.lifecycle import stop_task
from openticket.application.seating.actor import PartitionLoaded
from openticket.application.seating.service import SeatingService
from openticket.domain.seating import SeatEvent

_log = structlog.get_logger("openticket.worker")


class WorkerNode:
    """A worker's partitions, seat-event forwarding, saga consumers and expiry sweep."""

    def __init__(  # the container passes each part by name
        self,
        *,
        worker_id: str,
        preferred: Sequence[int],
        seating: SeatingService,
        bus: MessageBus,
        host: PartitionHost,
        forward: SeatEventForwarder,
        consumers: RoleConsumers,
        js: JetStreamContext,
        clock: Clock,
        partitions: int,
        leases_bucket: str,
        lease: timedelta,
        replicas: int = 1,
        sweep_interval: timedelta = timedelta(seconds=1),
    ) -> None:
        self.worker_id = worker_id
        self.seating = seating
        self.consumers = consumers
        self._host = host
        self._forward = forward
        self._sweep_interval = sweep_interval
        self._sweeper: asyncio.Task[None] | None = None
        self.lease_moves = {"acquired": 0, "lost": 0}
        """Partitions this worker took over and gave up since it started (its metrics)."""
        for kind in ROUTES:  # the actors' seat events also go to the SEATS stream
            if issubclass(kind, SeatEvent) or kind is PartitionLoaded:
                bus.subscribe(kind, "forward_to_seats_stream", forward)
        self.leases = PartitionLeases(
            js,
            worker_id=worker_id,
            partitions=partitions,
            preferred=preferred,
            bucket=leases_bucket,
            ttl=lease,
            heartbeat=lease / 3,
            clock=clock,
            on_acquired=self._acquired,
            on_lost=self._lost,
            replicas=replicas,
        )
        seating.fence(self.leases.epoch)  # an actor decides only under a lease held now

    async def start(self) -> None:
        """Start the actors, claim partitions, consume the saga's roles, sweep.

        Raises ``AdapterUnavailable`` (having stopped what it started) when NATS
        refuses the leases' bucket or the consumers.
        """
        await self.seating.start()
        try:
            await self.leases.start()
            await self.consumers.start()
        except AdapterUnavailable:
            await self.leases.stop()
            await self.seating.stop()
            await self._forward.stop()
            raise
        self._sweeper = asyncio.create_task(self._sweep(), name="worker-expiry-sweeper")

    async def stop(self) -> None:
        """Hand the work over: running saga steps finish, the partitions are let go."""
        await self.consumers.stop()  # the rest goes to the other workers
        await self.leases.stop()
        sweeper, self._sweeper = self._sweeper, None
        await stop_task(sweeper)
        await self.seating.stop()
        await self._forward.stop()  # the seat events decided last

    async def _acquired(self, partition: int) -> None:
        self.seating.actors[partition].forget()  # whatever we knew may be stale: rebuild
        await self._host.serve(partition)
        self.lease_moves["acquired"] += 1
        _log.info("partition_acquired", worker=self.worker_id, partition=partition)

    async def _lost(self, partition: int) -> None:
        await self._host.release(partition)
        self.seating.actors[partition].forget()
        self.lease_moves["lost"] += 1
        _log.info("partition_lost", worker=self.worker_id, partition=partition)

    async def _sweep(self) -> None:
        interval = self._sweep_interval.total_seconds()
        while True:
            await asyncio.sleep(interval)
            try:
                await self.seating.expire_due()
            except Exception as e:  # a sweep that fails is tried again next time
                _log.warning("worker_sweep_failed", error=str(e))
