"""A ready-made world for tests, simulations and benchmarks: a venue, an event, a sale.

::

    app = openticket.bootstrap(clock=FakeClock())
    world = await build_world(app, clock)
    async with app:
        order = await app.place_order(world.buyer(1), world.session_id, ["A-1-1"])
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from datetime import timedelta
from decimal import Decimal
from uuid import UUID

import attrs

from openticket.application.access import Requester
from openticket.application.facade import OpenTicket
from openticket.application.ports.clock import Clock
from openticket.application.seating.commands import HoldSeats
from openticket.domain.identity import Role
from openticket.domain.seating import SeatsUnavailable
from openticket.domain.shared import EventId, HoldId, Money, OrderId, SeatId, SessionId, UserId
from openticket.domain.venue import Area, Row, SeatMap, parse_seat_id


@attrs.frozen
class World:
    """A platform with one session on sale, and the people who use it."""

    app: OpenTicket
    clock: Clock
    event_id: EventId
    session_id: SessionId
    seat_map: SeatMap
    organizer: Requester
    staff: Requester
    admin: Requester

    def buyer(self, n: int) -> Requester:
        """Buyer number ``n`` (the same id for the same ``n``)."""
        return Requester(UserId(UUID(int=1_000_000 + n)))


def grid_seat_map(areas: Mapping[str, tuple[int, int]]) -> SeatMap:
    """Areas of ``rows × seats`` each: ``{"A": (20, 50)}`` is rows 1-20 of seats 1-50."""
    return SeatMap(
        [
            Area(
                area_id,
                f"Area {area_id}",
                [Row(str(r), range(1, seats + 1)) for r in range(1, rows + 1)],
            )
            for area_id, (rows, seats) in areas.items()
        ]
    )


DEFAULT_SEAT_MAP = {"A": (2, 10), "B": (1, 5)}
DEFAULT_PRICES = {"A": "1200.00", "B": "800.00"}


async def build_world(
    app: OpenTicket,
    clock: Clock,
    *,
    seat_map: SeatMap | None = None,
    prices: Mapping[str, str] | None = None,
    currency: str = "TWD",
    max_seats_per_order: int = 4,
    max_seats_per_user: int | None = None,
    unpriced_areas: Sequence[str] = (),
) -> World:
    """Create a venue, an event priced per area, and a session on sale from now on.

    ``max_seats_per_user`` defaults to the per-order cap, as a session's does: a world
    whose few buyers buy again and again raises it.
    """
    organizer = Requester(UserId(UUID(int=1)), frozenset({Role.ORGANIZER}))
    seats = seat_map or grid_seat_map(DEFAULT_SEAT_MAP)
    venue = await app.create_venue(
        organizer, name="Arena", address={"city": "Taipei"}, seat_map=seats
    )
    event = await app.create_event(organizer, venue_id=venue.venue_id, name="Flash Sale Live")
    for area_id, amount in (prices or DEFAULT_PRICES).items():
        if area_id not in unpriced_areas:
            await app.add_price_category(
                organizer,
                event.event_id,
                name=f"Area {area_id}",
                area_ids=[area_id],
                price=Money(Decimal(amount), currency),
            )
    now = clock.now()
    session = await app.create_session(
        organizer,
        event.event_id,
        start_time=now + timedelta(days=7),
        end_time=now + timedelta(days=7, hours=3),
        sale_start_time=now - timedelta(minutes=1),
        sale_end_time=now + timedelta(days=6),
        max_seats_per_order=max_seats_per_order,
        max_seats_per_user=max_seats_per_user,
    )
    return World(
        app=app,
        clock=clock,
        event_id=event.event_id,
        session_id=session.session_id,
        seat_map=seats,
        organizer=organizer,
        staff=Requester(UserId(UUID(int=2)), frozenset({Role.STAFF})),
        admin=Requester(UserId(UUID(int=3)), frozenset({Role.ADMIN})),
    )


async def race_for_one_seat(world: World, seat_id: str, buyers: int = 1000) -> int:
    """``buyers`` different buyers ask at once to hold ``seat_id``; how many got it.

    Straight at the seating service (the partition actor and its lock store), with fresh
    hold ids: the answer must be 1 whatever the lock store (reliability.md #1).
    """
    seat = SeatId(seat_id)
    area = parse_seat_id(seat).area_id

    async def buy(n: int) -> bool:
        try:
            await world.app.seating.ask(
                HoldSeats(
                    session_id=world.session_id,
                    area_id=area,
                    hold_id=HoldId(UUID(int=10_000_000 + n)),
                    holder_id=world.buyer(n).user_id,
                    order_id=OrderId(UUID(int=20_000_000 + n)),
                    seat_ids=(seat,),
                )
            )
        except SeatsUnavailable:
            return False
        return True

    outcomes = await asyncio.gather(*(buy(n) for n in range(buyers)))
    return outcomes.count(True)
