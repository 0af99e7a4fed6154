"""Catalog use cases: venues, events, price categories, sessions; and what a sale needs."""

from __future__ import annotations

import attrs

from openticket.application.access import Requester
from openticket.application.catalog.commands import (
    AddPriceCategory,
    CreateEvent,
    CreateSession,
    CreateVenue,
)
from openticket.application.errors import NotFound
from openticket.application.ports.clock import Clock, IdGenerator
from openticket.application.ports.repositories import DEFAULT_PAGE_SIZE, Page
from openticket.application.ports.unit_of_work import UnitOfWork, UnitOfWorkFactory
from openticket.domain.catalog import (
    DEFAULT_MAX_SEATS_PER_ORDER,
    Event,
    PriceCategory,
    PriceList,
    Session,
)
from openticket.domain.identity import Role
from openticket.domain.shared import (
    AreaId,
    CategoryId,
    EventId,
    SeatId,
    SessionId,
    UserId,
    VenueId,
)
from openticket.domain.venue import Venue


@attrs.frozen
class EventDetails:
    """An event with its sessions and price categories."""

    event: Event
    sessions: tuple[Session, ...]
    categories: tuple[PriceCategory, ...]


@attrs.frozen
class SaleContext:
    """Everything a sale of one session needs from the catalog."""

    session: Session
    event: Event
    venue: Venue
    prices: PriceList


class CatalogService:
    """Organizers set up what is sold; everybody reads it.

    Seat maps never change once a venue exists, so what a sale needs is cached per
    session and dropped whenever this service changes the session or its prices.
    """

    def __init__(self, *, uow: UnitOfWorkFactory, clock: Clock, ids: IdGenerator) -> None:
        self._uow = uow
        self._clock = clock
        self._ids = ids
        self._sales: dict[SessionId, SaleContext] = {}

    # --- writes -----------------------------------------------------------------------

    async def create_venue(self, command: CreateVenue) -> Venue:
        """A new venue with its seat map (organizers and admins)."""
        command.by.require(Role.ORGANIZER)
        venue = Venue(
            venue_id=VenueId(self._ids.new_id()),
            name=command.name,
            address=command.address,
            seat_map=command.seat_map,
        )
        async with self._uow() as uow:
            await uow.venues.add(venue)
            await uow.commit()
        return venue

    async def create_event(self, command: CreateEvent) -> Event:
        """A new event at an existing venue, organized by the caller."""
        by = command.by
        by.require(Role.ORGANIZER)
        async with self._uow() as uow:
            if await uow.venues.get(command.venue_id) is None:
                raise NotFound(f"no venue {command.venue_id}")
            event = Event(
                event_id=EventId(self._ids.new_id()),
                venue_id=command.venue_id,
                organizer_id=by.user_id,
                name=command.name,
                description=command.description,
                created_at=self._clock.now(),
            )
            await uow.events.add(event)
            await uow.commit()
        return event

    async def add_price_category(self, command: AddPriceCategory) -> PriceCategory:
        """Price some areas of one of the caller's events."""
        by, event_id = command.by, command.event_id
        by.require(Role.ORGANIZER)
        async with self._uow() as uow:
            event = await self._managed_event(uow, by, event_id)
            venue = await self._venue(uow, event.venue_id)
            category = PriceCategory(
                category_id=CategoryId(self._ids.new_id()),
                event_id=event_id,
                name=command.name,
                area_ids=[AreaId(a) for a in command.area_ids],
                price=command.price,
                quota=command.quota,
            )
            existing = await uow.price_categories.list_for_event(event_id)
            PriceList(tuple(existing)).with_category(category, venue.seat_map)
            await uow.price_categories.add(category)
            await uow.commit()
        self._sales.clear()
        return category

    async def create_session(self, command: CreateSession) -> Session:
        """A performance of one of the caller's events, with its sale window.

        A ``challenge_required`` session must be ``queue_enabled`` (``ValidationError``
        otherwise, nothing stored).
        """
        by, event_id = command.by, command.event_id
        by.require(Role.ORGANIZER)
        async with self._uow() as uow:
            await self._managed_event(uow, by, event_id)
            max_seats_per_order = command.max_seats_per_order
            session = Session(
                session_id=SessionId(self._ids.new_id()),
                event_id=event_id,
                start_time=command.start_time,
                end_time=command.end_time,
                sale_start_time=command.sale_start_time,
                sale_end_time=command.sale_end_time,
                queue_enabled=command.queue_enabled,
                max_seats_per_order=(
                    DEFAULT_MAX_SEATS_PER_ORDER
                    if max_seats_per_order is None
                    else max_seats_per_order
                ),
                max_seats_per_user=command.max_seats_per_user,
                challenge_required=command.challenge_required,
            )
            await uow.sessions.add(session)
            await uow.commit()
        return session

    # --- reads ------------------------------------------------------------------------

    async def get_venue(self, venue_id: VenueId) -> Venue:
        """A venue (``NotFound`` if there is none)."""
        async with self._uow() as uow:
            return await self._venue(uow, venue_id)

    async def get_event(self, event_id: EventId) -> EventDetails:
        """An event with its sessions and categories."""
        async with self._uow() as uow:
            event = await uow.events.get(event_id)
            if event is None:
                raise NotFound(f"no event {event_id}")
            sessions = await uow.sessions.list_for_event(event_id)
            categories = await uow.price_categories.list_for_event(event_id)
        return EventDetails(event, tuple(sessions), tuple(categories))

    async def list_events(
        self,
        *,
        limit: int = DEFAULT_PAGE_SIZE,
        cursor: str | None = None,
        organizer_id: UserId | None = None,
    ) -> Page[Event]:
        """Events, oldest first, one page at a time."""
        async with self._uow() as uow:
            return await uow.events.list(limit=limit, cursor=cursor, organizer_id=organizer_id)

    async def get_session(self, session_id: SessionId) -> Session:
        """A session (``NotFound`` if there is none)."""
        return (await self.sale_context(session_id)).session

    async def sale_context(self, session_id: SessionId) -> SaleContext:
        """The session, its event, venue and prices (cached)."""
        cached = self._sales.get(session_id)
        if cached is not None:
            return cached
        async with self._uow() as uow:
            session = await uow.sessions.get(session_id)
            if session is None:
                raise NotFound(f"no session {session_id}")
            event = await uow.events.get(session.event_id)
            if event is None:
                raise NotFound(f"no event {session.event_id}")
            venue = await self._venue(uow, event.venue_id)
            categories = await uow.price_categories.list_for_event(event.event_id)
        context = SaleContext(session, event, venue, PriceList(tuple(categories)))
        self._sales[session_id] = context
        return context

    async def seat_layout(self, session_id: SessionId, area_id: AreaId) -> frozenset[SeatId]:
        """The seats of a session's area (what a partition actor manages)."""
        context = await self.sale_context(session_id)
        return frozenset(context.venue.seat_map.area(area_id).seat_ids())

    # --- helpers -----------------------------------------------------------------------

    @staticmethod
    async def _venue(uow: UnitOfWork, venue_id: VenueId) -> Venue:
        venue = await uow.venues.get(venue_id)
        if venue is None:
            raise NotFound(f"no venue {venue_id}")
        return venue

    @staticmethod
    async def _managed_event(uow: UnitOfWork, by: Requester, event_id: EventId) -> Event:
        event = await uow.events.get(event_id)
        if event is None or not (by.is_admin or event.is_managed_by(by.user_id)):
            raise NotFound(f"no event {event_id} of yours")
        return event
