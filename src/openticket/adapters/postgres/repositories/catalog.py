"""The catalog in PostgreSQL: venues (and their seat maps), events, sessions, price categories."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final, LiteralString

from psycopg.types.json import Jsonb

from openticket.adapters.paging import decode_cursor
from openticket.adapters.postgres.executor import Executor, Row
from openticket.adapters.postgres.repositories.shared import (
    Table,
    checked_limit,
    insert_versioned,
    page,
    save_versioned,
)
from openticket.application.ports.repositories import DEFAULT_PAGE_SIZE, Page
from openticket.domain.catalog import Event, EventStatus, PriceCategory, Session, SessionStatus
from openticket.domain.shared import AreaId, CategoryId, EventId, Money, SessionId, UserId, VenueId
from openticket.domain.venue import Area, SeatMap, Venue, VenueStatus
from openticket.domain.venue import Row as SeatRow

# --- venues -------------------------------------------------------------------------------

VENUES: Final = Table("venues", ("venue_id", "name", "address", "status", "version"))
SEAT_MAPS: Final = Table("seat_maps", ("venue_id", "layout", "seats"))

_VENUE_INSERT: Final[LiteralString] = VENUES.insert()
_SEAT_MAP_INSERT: Final[LiteralString] = SEAT_MAPS.insert()
_VENUE_BY_ID: Final[LiteralString] = (
    VENUES.select("m.layout", alias="v")
    + " JOIN seat_maps m USING (venue_id) WHERE v.venue_id = %(venue_id)s"
)
_VENUE_UPDATE: Final[LiteralString] = VENUES.update("name", "address", "status")
_SEAT_MAP_UPDATE: Final[LiteralString] = SEAT_MAPS.update("layout", "seats", versioned=False)


def _layout(seat_map: SeatMap) -> list[dict[str, Any]]:
    return [
        {
            "area_id": area.area_id,
            "name": area.name,
            "rows": [{"row": row.row, "seats": list(row.seats)} for row in area.rows],
        }
        for area in seat_map.areas
    ]


def _seat_map(layout: list[dict[str, Any]]) -> SeatMap:
    return SeatMap(
        tuple(
            Area(
                area["area_id"],
                area["name"],
                tuple(SeatRow(row["row"], tuple(row["seats"])) for row in area["rows"]),
            )
            for area in layout
        )
    )


def _venue_params(venue: Venue) -> dict[str, Any]:
    return {
        "venue_id": venue.venue_id,
        "name": venue.name,
        "address": Jsonb(dict(venue.address)),
        "status": venue.status.value,
    }


def _seat_map_params(venue: Venue) -> dict[str, Any]:
    return {
        "venue_id": venue.venue_id,
        "layout": Jsonb(_layout(venue.seat_map)),
        "seats": venue.seat_map.capacity,
    }


class PostgresVenueRepository:
    """Venues in PostgreSQL, their seat maps in ``seat_maps``."""

    def __init__(self, uow: Executor) -> None:
        self._uow = uow

    async def add(self, venue: Venue) -> None:
        """Store a new venue and its seat map."""
        version = self._uow.version_to_add(VENUES.name, venue.venue_id, venue)
        await self._uow.write(_VENUE_INSERT, {**_venue_params(venue), "version": version})
        await self._uow.write(_SEAT_MAP_INSERT, _seat_map_params(venue))
        self._uow.wrote(VENUES.name, venue.venue_id, venue, 0, version)

    async def get(self, venue_id: VenueId) -> Venue | None:
        """The venue with this id, if any."""
        row = await self._uow.fetch_one(_VENUE_BY_ID, {"venue_id": venue_id})
        if row is None:
            return None
        return Venue(
            venue_id=VenueId(row.venue_id),
            name=row.name,
            address=row.address,
            status=VenueStatus(row.status),
            version=row.version,
            seat_map=_seat_map(row.layout),
        )

    async def save(self, venue: Venue) -> None:
        """Store changes to a loaded venue (and its seat map)."""
        await save_versioned(
            self._uow, VENUES, venue.venue_id, venue, _VENUE_UPDATE, _venue_params(venue)
        )
        await self._uow.write(_SEAT_MAP_UPDATE, _seat_map_params(venue))


# --- events -------------------------------------------------------------------------------

EVENTS: Final = Table(
    "events",
    (
        "event_id",
        "venue_id",
        "organizer_id",
        "name",
        "description",
        "status",
        "created_at",
        "version",
    ),
)

_EVENT_INSERT: Final[LiteralString] = EVENTS.insert()
_EVENT_BY_ID: Final[LiteralString] = EVENTS.select("seq") + " WHERE event_id = %(event_id)s"
_EVENTS_AFTER: Final[LiteralString] = (
    EVENTS.select("seq") + " WHERE seq > %(after)s ORDER BY seq LIMIT %(limit)s"
)
_EVENTS_OF_ORGANIZER_AFTER: Final[LiteralString] = (
    EVENTS.select("seq")
    + " WHERE organizer_id = %(organizer_id)s AND seq > %(after)s ORDER BY seq LIMIT %(limit)s"
)
_EVENT_UPDATE: Final[LiteralString] = EVENTS.update(
    "venue_id", "organizer_id", "name", "description", "status"
)


def _event(row: Row) -> Event:
    return Event(
        event_id=EventId(row.event_id),
        venue_id=VenueId(row.venue_id),
        organizer_id=UserId(row.organizer_id),
        name=row.name,
        description=row.description,
        status=EventStatus(row.status),
        created_at=row.created_at,
        version=row.version,
    )


def _event_params(event: Event) -> dict[str, Any]:
    return {
        "event_id": event.event_id,
        "venue_id": event.venue_id,
        "organizer_id": event.organizer_id,
        "name": event.name,
        "description": event.description,
        "status": event.status.value,
        "created_at": event.created_at,
    }


class PostgresEventRepository:
    """Catalog events in PostgreSQL."""

    def __init__(self, uow: Executor) -> None:
        self._uow = uow

    async def add(self, event: Event) -> None:
        """Store a new event."""
        await insert_versioned(
            self._uow, EVENTS, event.event_id, event, _EVENT_INSERT, _event_params(event)
        )

    async def get(self, event_id: EventId) -> Event | None:
        """The event with this id, if any."""
        row = await self._uow.fetch_one(_EVENT_BY_ID, {"event_id": event_id})
        return None if row is None else _event(row)

    async def save(self, event: Event) -> None:
        """Store changes to a loaded event."""
        await save_versioned(
            self._uow, EVENTS, event.event_id, event, _EVENT_UPDATE, _event_params(event)
        )

    async def list(
        self,
        *,
        limit: int = DEFAULT_PAGE_SIZE,
        cursor: str | None = None,
        organizer_id: UserId | None = None,
    ) -> Page[Event]:
        """Events oldest first, optionally one organizer's."""
        params = {"after": decode_cursor(cursor), "limit": checked_limit(limit) + 1}
        if organizer_id is None:
            rows = await self._uow.fetch_all(_EVENTS_AFTER, params)
        else:
            rows = await self._uow.fetch_all(
                _EVENTS_OF_ORGANIZER_AFTER, {**params, "organizer_id": organizer_id}
            )
        return page(rows, limit, _event)


# --- sessions -----------------------------------------------------------------------------

SESSIONS: Final = Table(
    "sessions",
    (
        "session_id",
        "event_id",
        "start_time",
        "end_time",
        "sale_start_time",
        "sale_end_time",
        "queue_enabled",
        "max_seats_per_order",
        "status",
        "version",
        "max_seats_per_user",
        "challenge_required",
    ),
)

_SESSION_INSERT: Final[LiteralString] = SESSIONS.insert()
_SESSION_BY_ID: Final[LiteralString] = SESSIONS.select() + " WHERE session_id = %(session_id)s"
_SESSIONS_OF_EVENT: Final[LiteralString] = (
    SESSIONS.select() + " WHERE event_id = %(event_id)s ORDER BY start_time, seq"
)
_SESSION_UPDATE: Final[LiteralString] = SESSIONS.update(
    "event_id",
    "start_time",
    "end_time",
    "sale_start_time",
    "sale_end_time",
    "queue_enabled",
    "max_seats_per_order",
    "max_seats_per_user",
    "challenge_required",
    "status",
)


def _session(row: Row) -> Session:
    return Session(
        session_id=SessionId(row.session_id),
        event_id=EventId(row.event_id),
        start_time=row.start_time,
        end_time=row.end_time,
        sale_start_time=row.sale_start_time,
        sale_end_time=row.sale_end_time,
        queue_enabled=row.queue_enabled,
        max_seats_per_order=row.max_seats_per_order,
        status=SessionStatus(row.status),
        version=row.version,
        max_seats_per_user=row.max_seats_per_user,
        challenge_required=row.challenge_required,
    )


def _session_params(session: Session) -> dict[str, Any]:
    return {
        "session_id": session.session_id,
        "event_id": session.event_id,
        "start_time": session.start_time,
        "end_time": session.end_time,
        "sale_start_time": session.sale_start_time,
        "sale_end_time": session.sale_end_time,
        "queue_enabled": session.queue_enabled,
        "max_seats_per_order": session.max_seats_per_order,
        "max_seats_per_user": session.max_seats_per_user,
        "challenge_required": session.challenge_required,
        "status": session.status.value,
    }


class PostgresSessionRepository:
    """Sessions in PostgreSQL."""

    def __init__(self, uow: Executor) -> None:
        self._uow = uow

    async def add(self, session: Session) -> None:
        """Store a new session."""
        params = _session_params(session)
        await insert_versioned(
            self._uow, SESSIONS, session.session_id, session, _SESSION_INSERT, params
        )

    async def get(self, session_id: SessionId) -> Session | None:
        """The session with this id, if any."""
        row = await self._uow.fetch_one(_SESSION_BY_ID, {"session_id": session_id})
        return None if row is None else _session(row)

    async def save(self, session: Session) -> None:
        """Store changes to a loaded session."""
        await save_versioned(
            self._uow,
            SESSIONS,
            session.session_id,
            session,
            _SESSION_UPDATE,
            _session_params(session),
        )

    async def list_for_event(self, event_id: EventId) -> Sequence[Session]:
        """An event's sessions, earliest start first."""
        rows = await self._uow.fetch_all(_SESSIONS_OF_EVENT, {"event_id": event_id})
        return [_session(row) for row in rows]


# --- price categories ---------------------------------------------------------------------

PRICE_CATEGORIES: Final = Table(
    "price_categories",
    ("category_id", "event_id", "name", "area_ids", "price", "currency", "quota"),
)

_CATEGORY_INSERT: Final[LiteralString] = PRICE_CATEGORIES.insert()
_CATEGORY_BY_ID: Final[LiteralString] = (
    PRICE_CATEGORIES.select() + " WHERE category_id = %(category_id)s"
)
_CATEGORIES_OF_EVENT: Final[LiteralString] = (
    PRICE_CATEGORIES.select() + " WHERE event_id = %(event_id)s ORDER BY seq"
)


def _category(row: Row) -> PriceCategory:
    return PriceCategory(
        category_id=CategoryId(row.category_id),
        event_id=EventId(row.event_id),
        name=row.name,
        area_ids=frozenset(AreaId(a) for a in row.area_ids),
        price=Money(row.price, row.currency),
        quota=row.quota,
    )


class PostgresPriceCategoryRepository:
    """Price categories in PostgreSQL (immutable once added)."""

    def __init__(self, uow: Executor) -> None:
        self._uow = uow

    async def add(self, category: PriceCategory) -> None:
        """Store a new category."""
        self._uow.require_active()
        await self._uow.write(
            _CATEGORY_INSERT,
            {
                "category_id": category.category_id,
                "event_id": category.event_id,
                "name": category.name,
                "area_ids": sorted(category.area_ids),
                "price": category.price.amount,
                "currency": category.price.currency,
                "quota": category.quota,
            },
        )

    async def get(self, category_id: CategoryId) -> PriceCategory | None:
        """The category with this id, if any."""
        row = await self._uow.fetch_one(_CATEGORY_BY_ID, {"category_id": category_id})
        return None if row is None else _category(row)

    async def list_for_event(self, event_id: EventId) -> Sequence[PriceCategory]:
        """An event's categories in the order they were added."""
        rows = await self._uow.fetch_all(_CATEGORIES_OF_EVENT, {"event_id": event_id})
        return [_category(row) for row in rows]
