"""Venues, events, price categories, sessions and their seats; a session's sale."""

from __future__ import annotations

from uuid import UUID

from litestar import Controller, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, JSONBody

from openticket.application.access import Requester
from openticket.application.facade import OpenTicket
from openticket.application.ports.clock import Clock
from openticket.domain.identity import Role
from openticket.domain.shared import EventId, SessionId, VenueId
from openticket.domain.venue import Area, Row, SeatMap
from openticket.entrypoints.http.auth import provide_requester, role_guard
from openticket.entrypoints.http.caching import REVALIDATE, VENUE_LIFETIME, revalidated
from openticket.entrypoints.http.openapi import INPUT, READ, SIGNED_IN, problems
from openticket.entrypoints.http.schemas import (
    CategoryOut,
    Cursor,
    EventBody,
    EventOut,
    EventPage,
    Limit,
    PriceCategoryBody,
    SalesOut,
    SeatMapOut,
    SessionBody,
    SessionOut,
    VenueBody,
    VenueOut,
    category_out,
    event_out,
    event_page,
    sales_out,
    seat_out,
    session_out,
    venue_out,
)

organizers = role_guard(Role.ORGANIZER)
ORGANIZING = problems(*READ, *INPUT, 401, 403, 404, 422)
"""What an organizer's write can answer besides success."""


class VenueController(Controller):
    """Venues and their seat maps."""

    path = "/api/venues"
    tags = ["catalog"]
    dependencies = {"requester": Provide(provide_requester)}
    response_class = revalidated(VENUE_LIFETIME)

    @post(
        "/",
        status_code=201,
        guards=[organizers],
        summary="Create a venue",
        operation_id="createVenue",
        security=SIGNED_IN,
        responses=problems(*READ, *INPUT, 401, 403, 422),
    )
    async def create(
        self,
        data: JSONBody[VenueBody],
        tickets: NamedDependency[OpenTicket],
        requester: NamedDependency[Requester],
    ) -> VenueOut:
        """A venue with its seat map (organizers, admins).

        Area ids are unique within the map and row labels within their area (422
        otherwise); a map holds at most 500,000 seats.
        """
        seat_map = SeatMap(
            [
                Area(a.area_id, a.name, [Row(r.row, r.seats) for r in a.rows])
                for a in data.seat_map.areas
            ]
        )
        venue = await tickets.create_venue(
            requester, name=data.name, address=data.address, seat_map=seat_map
        )
        return venue_out(venue)

    @get(
        "/{venue_id:uuid}",
        summary="A venue",
        operation_id="readVenue",
        responses=problems(*READ, 404),
    )
    async def read(
        self, venue_id: FromPath[UUID], tickets: NamedDependency[OpenTicket]
    ) -> VenueOut:
        """A venue with its seat map."""
        return venue_out(await tickets.get_venue(VenueId(venue_id)))


class EventController(Controller):
    """Events, their price categories and sessions."""

    path = "/api/events"
    tags = ["catalog"]
    dependencies = {"requester": Provide(provide_requester)}
    response_class = revalidated(REVALIDATE)  # sessions go on sale on the second

    @post(
        "/",
        status_code=201,
        guards=[organizers],
        summary="Create an event",
        operation_id="createEvent",
        security=SIGNED_IN,
        responses=ORGANIZING,
    )
    async def create(
        self,
        data: JSONBody[EventBody],
        tickets: NamedDependency[OpenTicket],
        requester: NamedDependency[Requester],
    ) -> EventOut:
        """An event at a venue, organized by the caller."""
        event = await tickets.create_event(
            requester, venue_id=VenueId(data.venue_id), name=data.name, description=data.description
        )
        return event_out(event)

    @get(
        "/",
        summary="List events",
        operation_id="listEvents",
        responses=problems(*READ, 400),
    )
    async def list_events(
        self, tickets: NamedDependency[OpenTicket], limit: Limit = 50, cursor: Cursor = None
    ) -> EventPage:
        """Events, oldest first, a page at a time."""
        return event_page(await tickets.list_events(limit=limit, cursor=cursor))

    @get(
        "/{event_id:uuid}",
        summary="An event with its sessions and prices",
        operation_id="readEvent",
        responses=problems(*READ, 404),
    )
    async def read(
        self,
        event_id: FromPath[UUID],
        tickets: NamedDependency[OpenTicket],
        clock: NamedDependency[Clock],
    ) -> EventOut:
        """An event with its sessions and price categories."""
        details = await tickets.get_event(EventId(event_id))
        now = clock.now()
        return event_out(
            details.event,
            [session_out(s, now) for s in details.sessions],
            [category_out(c) for c in details.categories],
        )

    @post(
        "/{event_id:uuid}/price-categories",
        status_code=201,
        guards=[organizers],
        summary="Price some areas",
        operation_id="addPriceCategory",
        security=SIGNED_IN,
        responses=problems(*READ, *INPUT, 401, 403, 404, 409, 422),
    )
    async def add_category(
        self,
        event_id: FromPath[UUID],
        data: JSONBody[PriceCategoryBody],
        tickets: NamedDependency[OpenTicket],
        requester: NamedDependency[Requester],
    ) -> CategoryOut:
        """A price for some areas of one of the caller's events.

        The areas must be on the event's venue (422) and not priced yet (409
        ``area_already_priced``); all prices of an event share one currency (409
        ``currency_differs``).
        """
        category = await tickets.add_price_category(
            requester,
            EventId(event_id),
            name=data.name,
            area_ids=data.area_ids,
            price=data.price.to_money(),
            quota=data.quota,
        )
        return category_out(category)

    @post(
        "/{event_id:uuid}/sessions",
        status_code=201,
        guards=[organizers],
        summary="Add a session",
        operation_id="addSession",
        security=SIGNED_IN,
        responses=ORGANIZING,
    )
    async def add_session(
        self,
        event_id: FromPath[UUID],
        data: JSONBody[SessionBody],
        tickets: NamedDependency[OpenTicket],
        requester: NamedDependency[Requester],
        clock: NamedDependency[Clock],
    ) -> SessionOut:
        """A performance of one of the caller's events.

        ``start_time < end_time`` and ``sale_start_time < sale_end_time <= end_time``
        (422 otherwise). ``challenge_required`` (a human check before joining the
        waiting room) needs ``queue_enabled`` (422 otherwise).
        """
        session = await tickets.create_session(
            requester,
            EventId(event_id),
            start_time=data.start_time,
            end_time=data.end_time,
            sale_start_time=data.sale_start_time,
            sale_end_time=data.sale_end_time,
            queue_enabled=data.queue_enabled,
            max_seats_per_order=data.max_seats_per_order,
            max_seats_per_user=data.max_seats_per_user,
            challenge_required=data.challenge_required,
        )
        return session_out(session, clock.now())


class SessionController(Controller):
    """Sessions and their seats."""

    path = "/api/sessions"
    tags = ["catalog"]
    response_class = revalidated(REVALIDATE)  # seats change every second of a sale

    @get(
        "/{session_id:uuid}",
        summary="A session",
        operation_id="readSession",
        responses=problems(*READ, 404),
    )
    async def read(
        self,
        session_id: FromPath[UUID],
        tickets: NamedDependency[OpenTicket],
        clock: NamedDependency[Clock],
    ) -> SessionOut:
        """A session and whether it sells now."""
        return session_out(await tickets.get_session(SessionId(session_id)), clock.now())

    @get(
        "/{session_id:uuid}/seats",
        summary="Every seat with its status and price",
        operation_id="readSeatMap",
        responses=problems(*READ, 404),
    )
    async def seats(
        self, session_id: FromPath[UUID], tickets: NamedDependency[OpenTicket]
    ) -> SeatMapOut:
        """Every seat of the session: available, held or sold."""
        return SeatMapOut([seat_out(v) for v in await tickets.seats(SessionId(session_id))])


class SalesController(Controller):
    """A session's sale as its organizer watches it: private, so never cached."""

    path = "/api/sessions"
    tags = ["catalog"]
    dependencies = {"requester": Provide(provide_requester)}

    @get(
        "/{session_id:uuid}/sales",
        guards=[organizers],
        summary="A session's sale now, for its organizer",
        operation_id="readSales",
        security=SIGNED_IN,
        responses=problems(*READ, 401, 403, 404),
    )
    async def sales(
        self,
        session_id: FromPath[UUID],
        tickets: NamedDependency[OpenTicket],
        requester: NamedDependency[Requester],
        clock: NamedDependency[Clock],
    ) -> SalesOut:
        """The seats sellable, held and sold now, the queue depth, the orders of the last minute.

        For the organizer of the session's event and admins; another organizer's
        session answers 404. The seat counts are the seat board's (seats with a
        price); ``queue_depth`` counts the buyers waiting in the session's waiting
        room (0 for a session sold without one). ``orders_last_minute`` counts the
        orders placed in the 60 seconds up to ``at`` that this API process saw placed:
        every order in the embedded profile; where several API processes serve one
        sale, the share of the process that answers. Meant to be polled every few
        seconds next to the seat feed; never cached.
        """
        figures = await tickets.sales(requester, SessionId(session_id), clock.now())
        return sales_out(figures)
