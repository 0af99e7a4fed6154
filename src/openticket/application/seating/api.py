"""``Seating``: the seat-hold API the application uses, whoever runs the actors.

``SeatingService`` runs the partition actors in this process; the NATS adapter's
``RemoteSeating`` sends every command to the worker process that owns the partition.
Use cases only ever see this protocol.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping, Sequence
from typing import Protocol

from openticket.application.seating.actor import PartitionActor, SaleRecorded
from openticket.application.seating.router import PartitionRouter
from openticket.domain.seating import SeatHold, SeatStatus
from openticket.domain.shared import AreaId, HoldId, OrderId, SeatId, SessionId, UserId


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

    def hold(
        self,
        *,
        session_id: SessionId,
        area_id: AreaId,
        hold_id: HoldId,
        holder_id: UserId,
        order_id: OrderId,
        seat_ids: Sequence[SeatId],
        max_seats: int | None = None,
    ) -> Awaitable[SeatHold]:
        """Hold all of ``seat_ids`` for one TTL, or raise ``SeatsUnavailable``."""
        ...

    def release(
        self, session_id: SessionId, area_id: AreaId, hold_id: HoldId
    ) -> Awaitable[SeatHold]:
        """Give a live hold's seats back."""
        ...

    def extend(
        self, session_id: SessionId, area_id: AreaId, hold_id: HoldId
    ) -> Awaitable[SeatHold]:
        """Keep a live hold for another TTL from now."""
        ...

    def sell(
        self,
        *,
        session_id: SessionId,
        area_id: AreaId,
        hold_id: HoldId,
        fencing_token: int,
        order_id: OrderId,
        seat_ids: Sequence[SeatId],
    ) -> Awaitable[SaleRecorded]:
        """Sell a hold's seats to its order."""
        ...

    def return_seats(
        self,
        *,
        session_id: SessionId,
        area_id: AreaId,
        hold_id: HoldId,
        order_id: OrderId,
        seat_ids: Sequence[SeatId],
    ) -> Awaitable[tuple[SeatId, ...]]:
        """Make an order's sold seats available again."""
        ...

    async def seat_statuses(
        self, session_id: SessionId, area_ids: Sequence[AreaId]
    ) -> dict[SeatId, SeatStatus]:
        """Every seat of the given areas with its status now."""
        ...
