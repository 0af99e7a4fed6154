"""Seating: routes seat commands to their partition actor and publishes what they decide."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from uuid import UUID

import structlog

from openticket.application.correlation import correlated
from openticket.application.errors import SeatingUnavailable
from openticket.application.messagebus import Publish
from openticket.application.ports.clock import Clock, IdGenerator
from openticket.application.ports.lifecycle import stop_task
from openticket.application.ports.lock_store import LockStore
from openticket.application.ports.unit_of_work import UnitOfWorkFactory
from openticket.application.seating.actor import (
    ExpireHolds,
    PartitionActor,
    SeatLayout,
    SoldSeats,
)
from openticket.application.seating.commands import R, SeatCommand
from openticket.application.seating.router import PartitionRouter
from openticket.domain.shared import AreaId, DomainEvent, OrderId, SeatId, SessionId


class TicketedSeats:
    """``SoldSeats`` read from the ticket repository: the database decides who owns a seat."""

    def __init__(self, uow: UnitOfWorkFactory) -> None:
        self._uow = uow

    async def __call__(self, session_id: SessionId, area_id: AreaId) -> Mapping[SeatId, OrderId]:
        """Seats of the area with a live ticket, and their orders."""
        async with self._uow() as uow:
            return await uow.tickets.sold_seats(session_id, area_id)


class SeatingService:
    """The seat-hold API of the application: one actor per partition, in this process.

    Events the actors decide are published in order by one pump task, so an actor
    never waits for event handlers (which may themselves ask an actor something).
    """

    def __init__(
        self,
        *,
        router: PartitionRouter,
        lock_store: LockStore,
        layout: SeatLayout,
        sold_seats: SoldSeats,
        clock: Clock,
        ids: IdGenerator,
        hold_ttl: timedelta,
        publish: Publish,
        partitions: Sequence[int] | None = None,
    ) -> None:
        self.router = router
        self.hold_ttl = hold_ttl
        self._clock = clock
        self._publish = publish
        self._events: asyncio.Queue[tuple[list[DomainEvent], dict[UUID, str]]] = asyncio.Queue()
        self._pump: asyncio.Task[None] | None = None
        owned = range(router.partitions) if partitions is None else partitions
        self.actors: dict[int, PartitionActor] = {
            n: PartitionActor(
                n,
                lock_store=lock_store,
                layout=layout,
                sold_seats=sold_seats,
                clock=clock,
                ids=ids,
                hold_ttl=hold_ttl,
                emit=lambda events, tags: self._events.put_nowait((events, tags)),
            )
            for n in owned
        }

    # --- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Start every actor and the event pump."""
        for actor in self.actors.values():
            actor.start()
        if self._pump is None:
            self._pump = asyncio.create_task(self._pump_events(), name="seating-event-pump")

    async def stop(self) -> None:
        """Stop the actors, publish what they decided, then stop the pump."""
        for actor in self.actors.values():
            await actor.stop()
        await self.flush_events()
        pump, self._pump = self._pump, None
        await stop_task(pump)

    def fence(self, tenure_of: Callable[[int], int | None]) -> None:
        """Have each actor decide only while this process holds its partition's lease.

        ``tenure_of(partition)`` is the epoch of the lease held on it now, or ``None``
        (see :mod:`openticket.application.seating.actor`). Workers set it from their
        partition leases; the embedded profile owns every partition and sets nothing.
        """
        for n, actor in self.actors.items():
            actor.tenure = functools.partial(tenure_of, n)

    def ready(self) -> bool:
        """Whether every actor of this process consumes its mailbox."""
        return all(actor.running for actor in self.actors.values())

    async def flush_events(self) -> None:
        """Wait until every event decided so far has been published."""
        await self._events.join()

    async def restart_partition(self, partition: int) -> None:
        """Crash and restart one actor: its memory is lost and rebuilt from the stores."""
        actor = self.actors[partition]
        await actor.stop()
        actor.forget()
        actor.start()

    async def _pump_events(self) -> None:
        queue = self._events
        while True:
            batches = [await queue.get()]
            while not queue.empty():  # publish what piled up meanwhile in one go
                batches.append(queue.get_nowait())
            try:
                for correlation, events in _by_correlation(batches):
                    if correlation is None:
                        await self._publish(events)
                        continue
                    # handlers run as part of the request that caused the events
                    with (
                        correlated(correlation),
                        structlog.contextvars.bound_contextvars(request_id=correlation),
                    ):
                        await self._publish(events)
            finally:
                for _ in batches:
                    queue.task_done()

    # --- commands ----------------------------------------------------------------------

    def ask(self, command: SeatCommand[R]) -> asyncio.Future[R]:
        """Have the partition's actor decide ``command``; the future is its reply.

        It returns the actor's reply future itself, no coroutine around it: this is the
        hot path, and every awaited frame costs.
        """
        key = self.router.key(command.session_id, command.area_id)
        actor = self.actors.get(key.partition)
        if actor is None:
            reply: asyncio.Future[R] = asyncio.get_running_loop().create_future()
            reply.set_exception(
                SeatingUnavailable(f"partition {key.partition} has no actor in this process")
            )
            return reply
        return actor.submit(command, key)

    async def expire_due(self) -> None:
        """Have every actor expire its due holds now."""
        await asyncio.gather(*(a.submit(ExpireHolds(), None) for a in self.actors.values()))


def _by_correlation(
    batches: list[tuple[list[DomainEvent], dict[UUID, str]]],
) -> list[tuple[str | None, list[DomainEvent]]]:
    """The events in order, in runs of the same correlation (request id)."""
    if not any(tags for _, tags in batches):  # the common case: nothing to split
        return [(None, [event for events, _ in batches for event in events])]
    runs: list[tuple[str | None, list[DomainEvent]]] = []
    for events, tags in batches:
        for event in events:
            correlation = tags.get(event.event_id) if tags else None
            if runs and runs[-1][0] == correlation:
                runs[-1][1].append(event)
            else:
                runs.append((correlation, [event]))
    return runs
