"""``Seating``: the seat-hold API the application uses, whoever runs the actors.

``SeatingService`` runs the partition actors in this process; the NATS adapter's
``RemoteSeating`` sends every command to the worker process that owns the partition.
Use cases only ever see this protocol, and give it commands
(:mod:`openticket.application.seating.commands`) through its one entry point, ``ask``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Mapping, Sequence
from typing import Protocol

from openticket.application.seating.actor import PartitionActor
from openticket.application.seating.commands import R, ReadSeats, SeatCommand
from openticket.application.seating.router import PartitionRouter
from openticket.domain.seating import SeatStatus
from openticket.domain.shared import AreaId, SeatId, SessionId


class Seating(Protocol):
    """Holds, releases, extensions and sales of seats, decided by partition actors."""

    router: PartitionRouter

    @property
    def actors(self) -> Mapping[int, PartitionActor]:
        """The actors running in this process (none when they run elsewhere)."""
        ...

    async def start(self) -> None:
        """Get ready to take commands."""
        ...

    async def stop(self) -> None:
        """Finish what was asked and stop."""
        ...

    def ready(self) -> bool:
        """Whether commands can be decided now (readiness)."""
        ...

    async def flush_events(self) -> None:
        """Wait until the events decided so far here are published."""
        ...

    async def expire_due(self) -> None:
        """Expire due holds (of the actors in this process)."""
        ...

    def ask(self, command: SeatCommand[R]) -> Awaitable[R]:
        """Have the actor of the command's partition decide it; resolves to its reply.

        The one entry point for every seat command (``HoldSeats``, ``ReleaseSeats``,
        ``ExtendSeats``, ``SellSeats``, ``ReturnSeats``, ``ReadSeats``). Raises the
        command's error (``SeatsUnavailable``, ``NotHolder``…) when awaited, or
        ``SeatingUnavailable`` when no actor can decide it now.
        """
        ...


async def seat_statuses(
    seating: Seating, session_id: SessionId, area_ids: Sequence[AreaId]
) -> dict[SeatId, SeatStatus]:
    """Every seat of the given areas with its status now (one ``ReadSeats`` per area)."""
    answers = await asyncio.gather(
        *(seating.ask(ReadSeats(session_id=session_id, area_id=area_id)) for area_id in area_ids)
    )
    statuses: dict[SeatId, SeatStatus] = {}
    for by_status in answers:
        for status, seats in by_status.items():
            statuses.update(dict.fromkeys(seats, status))
    return statuses
