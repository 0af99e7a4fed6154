"""The seat board: every seat of a session with its status and price, and its stock.

Statuses come from the shared seat-status cache where it is complete (API processes of
the production profile), else from the partition actors that own the seats.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import attrs
import structlog

from openticket.application.catalog.service import CatalogService
from openticket.application.ports.errors import AdapterUnavailable
from openticket.application.ports.seat_cache import SeatStatusCache
from openticket.application.seating.api import Seating, seat_statuses
from openticket.domain.seating import SeatStatus
from openticket.domain.shared import AreaId, Money, SeatId, SessionId
from openticket.domain.venue import area_of

_log = structlog.get_logger("openticket.seats")


@attrs.frozen
class SeatView:
    """One seat of a session as a buyer sees it."""

    seat_id: SeatId
    area_id: AreaId
    row: str
    number: int
    status: SeatStatus
    price: Money | None


@attrs.frozen
class Stock:
    """A session's seats that have a price, by what can still happen to them.

    ``sellable`` seats are available now; ``held`` ones may come back (a hold that
    runs out, an order cancelled or declined); ``sold`` ones will not.
    """

    sellable: int
    held: int
    sold: int

    @property
    def sold_out(self) -> bool:
        """Nothing is available and nothing held may come back."""
        return self.sellable == 0 and self.held == 0


class SeatBoard:
    """Reads a session's seats: one view per seat, or the counts of its stock."""

    def __init__(
        self,
        *,
        catalog: CatalogService,
        seating: Seating,
        seat_cache: SeatStatusCache | None = None,
    ) -> None:
        self._catalog = catalog
        self._seating = seating
        self._seat_cache = seat_cache

    async def seats(self, session_id: SessionId) -> list[SeatView]:
        """Every seat of a session with its status now and its price."""
        context = await self._catalog.sale_context(session_id)
        areas = context.venue.seat_map.areas
        statuses = await self._statuses(session_id, [a.area_id for a in areas])
        views = []
        for area in areas:
            category = context.prices.category_of_area(area.area_id)
            price = None if category is None else category.price
            for row in area.rows:
                for number in row.seats:
                    seat = SeatId(f"{area.area_id}-{row.row}-{number}")
                    status = statuses.get(seat, SeatStatus.AVAILABLE)
                    views.append(SeatView(seat, area.area_id, row.row, number, status, price))
        return views

    async def stock(self, session_id: SessionId) -> Stock:
        """How many priced seats are available, held and sold now.

        Counted from the statuses alone (the waiting room's admitter asks every tick):
        the priced seats' number, less those held or sold.
        """
        context = await self._catalog.sale_context(session_id)
        areas = context.venue.seat_map.areas
        priced = {a.area_id for a in areas if context.prices.category_of_area(a.area_id)}
        capacity = sum(a.capacity for a in areas if a.area_id in priced)
        statuses = await self._statuses(session_id, [a.area_id for a in areas])
        held = sold = 0
        for seat, status in statuses.items():
            if status is SeatStatus.AVAILABLE or area_of(seat) not in priced:
                continue
            if status is SeatStatus.HELD:
                held += 1
            else:
                sold += 1
        return Stock(sellable=capacity - held - sold, held=held, sold=sold)

    async def _statuses(
        self, session_id: SessionId, area_ids: list[AreaId]
    ) -> Mapping[SeatId, SeatStatus]:
        """From the shared seat-status cache where it is complete, else from the actors."""
        cache = self._seat_cache
        if cache is None:
            return await seat_statuses(self._seating, session_id, area_ids)
        try:
            cached, complete = await asyncio.gather(
                cache.statuses(session_id), cache.complete_areas(session_id)
            )
        except AdapterUnavailable as e:
            _log.warning("seat_cache_unavailable", error=str(e))
            return await seat_statuses(self._seating, session_id, area_ids)
        missing = [a for a in area_ids if a not in complete]
        if not missing:
            return cached  # absent seats are available
        live = await seat_statuses(self._seating, session_id, missing)
        return {**{s: v for s, v in cached.items() if area_of(s) in complete}, **live}
