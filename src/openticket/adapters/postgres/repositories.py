"""Repositories over PostgreSQL: each aggregate to its rows and back.

Every write checks what the port promises at the statement itself: ``add`` relies on
the primary and unique keys, ``save`` updates only the version it loaded (else
``ConcurrencyError``). Reads build fresh aggregates, so they are detached copies.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, LiteralString
from uuid import UUID

from psycopg.types.json import Jsonb

from openticket.adapters.paging import decode_cursor, encode_cursor
from openticket.application.ports.errors import (
    ConcurrencyError,
    DuplicateError,
)
from openticket.application.ports.repositories import DEFAULT_PAGE_SIZE, Page
from openticket.domain.catalog import (
    Event,
    EventStatus,
    PriceCategory,
    Session,
    SessionStatus,
)
from openticket.domain.identity import Role, User, UserStatus, email_to_find
from openticket.domain.ordering import Order, OrderItem, OrderLimits, OrderStatus
from openticket.domain.payment import Payment, PaymentStatus
from openticket.domain.shared import (
    AreaId,
    CategoryId,
    EventId,
    HoldId,
    Money,
    OrderId,
    PaymentId,
    SeatId,
    SessionId,
    TicketId,
    UserId,
    VenueId,
)
from openticket.domain.ticketing import Ticket, TicketStatus
from openticket.domain.venue import Area, Row, SeatMap, Venue, VenueStatus, parse_seat_id

if TYPE_CHECKING:
    from openticket.adapters.postgres.unit_of_work import PostgresUnitOfWork

DbRow = tuple[Any, ...]


def _limit(limit: int) -> int:
    if limit < 1:
        raise ValueError("limit must be at least 1")
    return limit


def _storable(*keys: str) -> bool:
    """Whether PostgreSQL could hold every key; a lookup by one it cannot finds nothing.

    Text with NUL or a lone surrogate cannot be sent at all: asking for it would be an
    error (a 4xx), where a code or a transaction id that was never issued is "none".
    """
    return all("\x00" not in key and _encodable(key) for key in keys)


def _encodable(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _page(rows: list[DbRow], limit: int, build: Any) -> Page[Any]:
    """Rows fetched with ``LIMIT limit + 1`` whose last column is ``seq``."""
    items = tuple(build(row) for row in rows[:limit])
    more = len(rows) > limit
    return Page(items, encode_cursor(rows[limit - 1][-1]) if more else None)


def versioned(update: LiteralString) -> LiteralString:
    """``update`` (a write of one row) as a statement that fails when it wrote none.

    The server raises ``division_by_zero`` for 0 rows, which aborts the transaction: a
    ``COMMIT`` sent after it in the same round trip does not run. The unit of work turns it
    into ``ConcurrencyError``.
    """
    return "WITH changed AS (" + update + " RETURNING 1) SELECT 1 / count(*) FROM changed"


async def _update(  # noqa: PLR0917  # one call shape for every aggregate
    uow: PostgresUnitOfWork,
    table: str,
    key: object,
    aggregate: Any,
    query: LiteralString,
    params: dict[str, Any],
) -> None:
    """Queue ``query`` (which must check ``%(expected)s`` and set ``%(version)s``).

    It travels with the unit's next statement or its commit, which raises
    ``ConcurrencyError`` if it matched no row (someone saved first, or it was never
    stored).
    """
    expected, version = uow.versions_to_save(table, key, aggregate)
    uow.defer(versioned(query), {**params, "expected": expected, "version": version})
    uow.wrote(table, key, aggregate, aggregate.version, version)


# --- users --------------------------------------------------------------------------------

_USER = "user_id, email, display_name, password_hash, roles, status, created_at, version"


def _user(row: DbRow) -> User:
    return User(
        user_id=UserId(row[0]),
        email=row[1],
        display_name=row[2],
        password_hash=row[3],
        roles=frozenset(Role(r) for r in row[4]),
        status=UserStatus(row[5]),
        created_at=row[6],
        version=row[7],
    )


def _user_params(user: User) -> dict[str, Any]:
    return {
        "user_id": user.user_id,
        "email": user.email,
        "display_name": user.display_name,
        "password_hash": user.password_hash,
        "roles": sorted(r.value for r in user.roles),
        "status": user.status.value,
        "created_at": user.created_at,
    }


class PostgresUserRepository:
    """Users in PostgreSQL; e-mails are unique (``EmailTaken``)."""

    def __init__(self, uow: PostgresUnitOfWork) -> None:
        self._uow = uow

    async def add(self, user: User) -> None:
        """Store a new user."""
        version = self._uow.version_to_add("users", user.user_id, user)
        await self._uow.write(
            "INSERT INTO users (user_id, email, display_name, password_hash, roles, status,"
            " created_at, version) VALUES (%(user_id)s, %(email)s, %(display_name)s,"
            " %(password_hash)s, %(roles)s, %(status)s, %(created_at)s, %(version)s)",
            {**_user_params(user), "version": version},
        )
        self._uow.wrote("users", user.user_id, user, 0, version)

    async def get(self, user_id: UserId) -> User | None:
        """The user with this id, if any."""
        row = await self._uow.fetch_one(f"SELECT {_USER} FROM users WHERE user_id = %s", (user_id,))
        return None if row is None else _user(row)

    async def get_by_email(self, email: str) -> User | None:
        """The user with this e-mail (compared normalised); None for what is no address."""
        address = email_to_find(email)
        if address is None:
            return None
        row = await self._uow.fetch_one(f"SELECT {_USER} FROM users WHERE email = %s", (address,))
        return None if row is None else _user(row)

    async def save(self, user: User) -> None:
        """Store changes to a loaded user."""
        await _update(
            self._uow,
            "users",
            user.user_id,
            user,
            "UPDATE users SET email = %(email)s, display_name = %(display_name)s,"
            " password_hash = %(password_hash)s, roles = %(roles)s, status = %(status)s,"
            " version = %(version)s WHERE user_id = %(user_id)s AND version = %(expected)s",
            _user_params(user),
        )


# --- venues -------------------------------------------------------------------------------


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
                tuple(Row(row["row"], tuple(row["seats"])) for row in area["rows"]),
            )
            for area in layout
        )
    )


class PostgresVenueRepository:
    """Venues in PostgreSQL, their seat maps in ``seat_maps``."""

    def __init__(self, uow: PostgresUnitOfWork) -> None:
        self._uow = uow

    async def add(self, venue: Venue) -> None:
        """Store a new venue and its seat map."""
        version = self._uow.version_to_add("venues", venue.venue_id, venue)
        await self._uow.write(
            "INSERT INTO venues (venue_id, name, address, status, version)"
            " VALUES (%s, %s, %s, %s, %s)",
            (venue.venue_id, venue.name, Jsonb(dict(venue.address)), venue.status.value, version),
        )
        await self._uow.write(
            "INSERT INTO seat_maps (venue_id, layout, seats) VALUES (%s, %s, %s)",
            (venue.venue_id, Jsonb(_layout(venue.seat_map)), venue.seat_map.capacity),
        )
        self._uow.wrote("venues", venue.venue_id, venue, 0, version)

    async def get(self, venue_id: VenueId) -> Venue | None:
        """The venue with this id, if any."""
        row = await self._uow.fetch_one(
            "SELECT v.venue_id, v.name, v.address, v.status, v.version, m.layout"
            " FROM venues v JOIN seat_maps m USING (venue_id) WHERE v.venue_id = %s",
            (venue_id,),
        )
        if row is None:
            return None
        return Venue(
            venue_id=VenueId(row[0]),
            name=row[1],
            address=row[2],
            status=VenueStatus(row[3]),
            version=row[4],
            seat_map=_seat_map(row[5]),
        )

    async def save(self, venue: Venue) -> None:
        """Store changes to a loaded venue (and its seat map)."""
        await _update(
            self._uow,
            "venues",
            venue.venue_id,
            venue,
            "UPDATE venues SET name = %(name)s, address = %(address)s, status = %(status)s,"
            " version = %(version)s WHERE venue_id = %(venue_id)s AND version = %(expected)s",
            {
                "venue_id": venue.venue_id,
                "name": venue.name,
                "address": Jsonb(dict(venue.address)),
                "status": venue.status.value,
            },
        )
        await self._uow.write(
            "UPDATE seat_maps SET layout = %s, seats = %s WHERE venue_id = %s",
            (Jsonb(_layout(venue.seat_map)), venue.seat_map.capacity, venue.venue_id),
        )


# --- events -------------------------------------------------------------------------------

_EVENT = "event_id, venue_id, organizer_id, name, description, status, created_at, version, seq"


def _event(row: DbRow) -> Event:
    return Event(
        event_id=EventId(row[0]),
        venue_id=VenueId(row[1]),
        organizer_id=UserId(row[2]),
        name=row[3],
        description=row[4],
        status=EventStatus(row[5]),
        created_at=row[6],
        version=row[7],
    )


class PostgresEventRepository:
    """Catalog events in PostgreSQL."""

    def __init__(self, uow: PostgresUnitOfWork) -> None:
        self._uow = uow

    async def add(self, event: Event) -> None:
        """Store a new event."""
        version = self._uow.version_to_add("events", event.event_id, event)
        await self._uow.write(
            "INSERT INTO events (event_id, venue_id, organizer_id, name, description, status,"
            " created_at, version) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            (
                event.event_id,
                event.venue_id,
                event.organizer_id,
                event.name,
                event.description,
                event.status.value,
                event.created_at,
                version,
            ),
        )
        self._uow.wrote("events", event.event_id, event, 0, version)

    async def get(self, event_id: EventId) -> Event | None:
        """The event with this id, if any."""
        row = await self._uow.fetch_one(
            f"SELECT {_EVENT} FROM events WHERE event_id = %s", (event_id,)
        )
        return None if row is None else _event(row)

    async def save(self, event: Event) -> None:
        """Store changes to a loaded event."""
        await _update(
            self._uow,
            "events",
            event.event_id,
            event,
            "UPDATE events SET venue_id = %(venue_id)s, organizer_id = %(organizer_id)s,"
            " name = %(name)s, description = %(description)s, status = %(status)s,"
            " version = %(version)s WHERE event_id = %(event_id)s AND version = %(expected)s",
            {
                "event_id": event.event_id,
                "venue_id": event.venue_id,
                "organizer_id": event.organizer_id,
                "name": event.name,
                "description": event.description,
                "status": event.status.value,
            },
        )

    async def list(
        self,
        *,
        limit: int = DEFAULT_PAGE_SIZE,
        cursor: str | None = None,
        organizer_id: UserId | None = None,
    ) -> Page[Event]:
        """Events oldest first, optionally one organizer's."""
        after = decode_cursor(cursor)
        if organizer_id is None:
            rows = await self._uow.fetch_all(
                f"SELECT {_EVENT} FROM events WHERE seq > %s ORDER BY seq LIMIT %s",
                (after, _limit(limit) + 1),
            )
        else:
            rows = await self._uow.fetch_all(
                f"SELECT {_EVENT} FROM events WHERE organizer_id = %s AND seq > %s"
                " ORDER BY seq LIMIT %s",
                (organizer_id, after, _limit(limit) + 1),
            )
        return _page(rows, limit, _event)


# --- sessions -----------------------------------------------------------------------------

_SESSION = (
    "session_id, event_id, start_time, end_time, sale_start_time, sale_end_time,"
    " queue_enabled, max_seats_per_order, status, version, max_seats_per_user,"
    " challenge_required"
)


def _session(row: DbRow) -> Session:
    return Session(
        session_id=SessionId(row[0]),
        event_id=EventId(row[1]),
        start_time=row[2],
        end_time=row[3],
        sale_start_time=row[4],
        sale_end_time=row[5],
        queue_enabled=row[6],
        max_seats_per_order=row[7],
        status=SessionStatus(row[8]),
        version=row[9],
        max_seats_per_user=row[10],
        challenge_required=row[11],
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

    def __init__(self, uow: PostgresUnitOfWork) -> None:
        self._uow = uow

    async def add(self, session: Session) -> None:
        """Store a new session."""
        version = self._uow.version_to_add("sessions", session.session_id, session)
        await self._uow.write(
            f"INSERT INTO sessions ({_SESSION}) VALUES (%(session_id)s, %(event_id)s,"
            " %(start_time)s, %(end_time)s, %(sale_start_time)s, %(sale_end_time)s,"
            " %(queue_enabled)s, %(max_seats_per_order)s, %(status)s, %(version)s,"
            " %(max_seats_per_user)s, %(challenge_required)s)",
            {**_session_params(session), "version": version},
        )
        self._uow.wrote("sessions", session.session_id, session, 0, version)

    async def get(self, session_id: SessionId) -> Session | None:
        """The session with this id, if any."""
        row = await self._uow.fetch_one(
            f"SELECT {_SESSION} FROM sessions WHERE session_id = %s", (session_id,)
        )
        return None if row is None else _session(row)

    async def save(self, session: Session) -> None:
        """Store changes to a loaded session."""
        await _update(
            self._uow,
            "sessions",
            session.session_id,
            session,
            "UPDATE sessions SET event_id = %(event_id)s, start_time = %(start_time)s,"
            " end_time = %(end_time)s, sale_start_time = %(sale_start_time)s,"
            " sale_end_time = %(sale_end_time)s, queue_enabled = %(queue_enabled)s,"
            " max_seats_per_order = %(max_seats_per_order)s,"
            " max_seats_per_user = %(max_seats_per_user)s,"
            " challenge_required = %(challenge_required)s, status = %(status)s,"
            " version = %(version)s WHERE session_id = %(session_id)s"
            " AND version = %(expected)s",
            _session_params(session),
        )

    async def list_for_event(self, event_id: EventId) -> Sequence[Session]:
        """An event's sessions, earliest start first."""
        rows = await self._uow.fetch_all(
            f"SELECT {_SESSION} FROM sessions WHERE event_id = %s ORDER BY start_time, seq",
            (event_id,),
        )
        return [_session(row) for row in rows]


# --- price categories ---------------------------------------------------------------------

_CATEGORY = "category_id, event_id, name, area_ids, price, currency, quota"


def _category(row: DbRow) -> PriceCategory:
    return PriceCategory(
        category_id=CategoryId(row[0]),
        event_id=EventId(row[1]),
        name=row[2],
        area_ids=frozenset(AreaId(a) for a in row[3]),
        price=Money(row[4], row[5]),
        quota=row[6],
    )


class PostgresPriceCategoryRepository:
    """Price categories in PostgreSQL (immutable once added)."""

    def __init__(self, uow: PostgresUnitOfWork) -> None:
        self._uow = uow

    async def add(self, category: PriceCategory) -> None:
        """Store a new category."""
        self._uow.require_active()
        await self._uow.write(
            f"INSERT INTO price_categories ({_CATEGORY}) VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (
                category.category_id,
                category.event_id,
                category.name,
                sorted(category.area_ids),
                category.price.amount,
                category.price.currency,
                category.quota,
            ),
        )

    async def get(self, category_id: CategoryId) -> PriceCategory | None:
        """The category with this id, if any."""
        row = await self._uow.fetch_one(
            f"SELECT {_CATEGORY} FROM price_categories WHERE category_id = %s", (category_id,)
        )
        return None if row is None else _category(row)

    async def list_for_event(self, event_id: EventId) -> Sequence[PriceCategory]:
        """An event's categories in the order they were added."""
        rows = await self._uow.fetch_all(
            f"SELECT {_CATEGORY} FROM price_categories WHERE event_id = %s ORDER BY seq",
            (event_id,),
        )
        return [_category(row) for row in rows]


# --- orders -------------------------------------------------------------------------------

_ORDER = (
    "o.order_id, o.user_id, o.session_id, o.hold_id, o.fencing_token, o.total_amount,"
    " o.currency, o.status, o.created_at, o.expires_at, o.payment_id, o.completed_at,"
    " o.closed_at, o.failure_reason, o.version,"
    " ARRAY(SELECT i.seat_id FROM order_items i WHERE i.order_id = o.order_id"
    " ORDER BY i.position),"
    " ARRAY(SELECT i.price FROM order_items i WHERE i.order_id = o.order_id"
    " ORDER BY i.position),"
    " o.seq"
)


def _order(row: DbRow) -> Order:
    currency = row[6]
    return Order(
        order_id=OrderId(row[0]),
        user_id=UserId(row[1]),
        session_id=SessionId(row[2]),
        hold_id=HoldId(row[3]),
        fencing_token=row[4],
        total=Money(row[5], currency),
        status=OrderStatus(row[7]),
        created_at=row[8],
        expires_at=row[9],
        payment_id=None if row[10] is None else PaymentId(row[10]),
        completed_at=row[11],
        closed_at=row[12],
        failure_reason=row[13],
        version=row[14],
        items=tuple(
            OrderItem(SeatId(seat), Money(price, currency))
            for seat, price in zip(row[15], row[16], strict=True)
        ),
    )


def _order_params(order: Order) -> dict[str, Any]:
    return {
        "order_id": order.order_id,
        "status": order.status.value,
        "expires_at": order.expires_at,
        "payment_id": order.payment_id,
        "completed_at": order.completed_at,
        "closed_at": order.closed_at,
        "failure_reason": order.failure_reason,
    }


class PostgresOrderRepository:
    """Orders in PostgreSQL, their seats in ``order_items``."""

    def __init__(self, uow: PostgresUnitOfWork) -> None:
        self._uow = uow

    async def add(self, order: Order, limits: OrderLimits | None = None) -> None:
        """Store a new order and its items; with ``limits``, only within them.

        ``order_limits_check`` (migration 0004) goes just before the insert, in the same
        round trip: it takes the buyer's (and the quota's) advisory lock, counts, and
        refuses with an error the unit turns into ``UserLimitReached`` or
        ``QuotaExhausted``. One unit should add one limited order: two in one unit take
        locks in an order another unit may take the other way round (a deadlock the
        server breaks by refusing one, ``ConcurrencyError``).
        """
        version = self._uow.version_to_add("orders", order.order_id, order)
        if limits is not None:
            quota_seats = limits.seats_in_quota(order.seat_ids)
            self._uow.defer(
                "SELECT order_limits_check(%(session_id)s, %(user_id)s, %(order_id)s,"
                " %(seats)s, %(cap)s, %(quota)s, %(areas)s::text[], %(quota_seats)s)",
                {
                    "session_id": order.session_id,
                    "user_id": order.user_id,
                    "order_id": order.order_id,
                    "seats": len(order.items),
                    "cap": limits.seats_per_user,
                    "quota": limits.quota,
                    "areas": sorted(limits.quota_areas),
                    "quota_seats": quota_seats,
                },
            )
        # the order and its items in one statement, sent with the commit
        self._uow.defer(
            "WITH stored AS (INSERT INTO orders (order_id, user_id, session_id, hold_id,"
            " fencing_token, total_amount, currency, status, created_at, expires_at,"
            " payment_id, completed_at, closed_at, failure_reason, version) VALUES"
            " (%(order_id)s, %(user_id)s, %(session_id)s, %(hold_id)s, %(fencing_token)s,"
            " %(total_amount)s, %(currency)s, %(status)s, %(created_at)s, %(expires_at)s,"
            " %(payment_id)s, %(completed_at)s, %(closed_at)s, %(failure_reason)s,"
            " %(version)s) RETURNING order_id)"
            " INSERT INTO order_items (order_id, position, seat_id, price, currency)"
            " SELECT stored.order_id, i.n, i.seat, i.price, %(currency)s FROM stored,"
            " unnest(%(seats)s::text[], %(prices)s::numeric[]) WITH ORDINALITY"
            " AS i(seat, price, n)",
            {
                **_order_params(order),
                "user_id": order.user_id,
                "session_id": order.session_id,
                "hold_id": order.hold_id,
                "fencing_token": order.fencing_token,
                "total_amount": order.total.amount,
                "currency": order.total.currency,
                "created_at": order.created_at,
                "version": version,
                "seats": [item.seat_id for item in order.items],
                "prices": [item.price.amount for item in order.items],
            },
        )
        self._uow.wrote("orders", order.order_id, order, 0, version)

    async def get(self, order_id: OrderId) -> Order | None:
        """The order with this id, if any."""
        row = await self._uow.fetch_one(
            f"SELECT {_ORDER} FROM orders o WHERE o.order_id = %s", (order_id,)
        )
        return None if row is None else _order(row)

    async def save(self, order: Order) -> None:
        """Store changes to a loaded order (its items never change)."""
        await _update(
            self._uow,
            "orders",
            order.order_id,
            order,
            "UPDATE orders SET status = %(status)s, expires_at = %(expires_at)s,"
            " payment_id = %(payment_id)s, completed_at = %(completed_at)s,"
            " closed_at = %(closed_at)s, failure_reason = %(failure_reason)s,"
            " version = %(version)s WHERE order_id = %(order_id)s AND version = %(expected)s",
            _order_params(order),
        )

    async def seats_taken(self, session_id: SessionId, user_id: UserId) -> int:
        """The buyer's seats in live and completed orders of the session."""
        row = await self._uow.fetch_one(
            "SELECT count(*) FROM orders o JOIN order_items i ON i.order_id = o.order_id"
            " WHERE o.session_id = %s AND o.user_id = %s"
            " AND o.status IN ('created', 'payment_pending', 'completed')",
            (session_id, user_id),
        )
        return 0 if row is None else int(row[0])

    async def list_for_user(
        self, user_id: UserId, *, limit: int = DEFAULT_PAGE_SIZE, cursor: str | None = None
    ) -> Page[Order]:
        """A buyer's orders, oldest first."""
        rows = await self._uow.fetch_all(
            f"SELECT {_ORDER} FROM orders o WHERE o.user_id = %s AND o.seq > %s"
            " ORDER BY o.seq LIMIT %s",
            (user_id, decode_cursor(cursor), _limit(limit) + 1),
        )
        return _page(rows, limit, _order)

    async def list_due(self, now: datetime, *, limit: int = DEFAULT_PAGE_SIZE) -> Sequence[Order]:
        """Open orders due at ``now``, soonest due first."""
        rows = await self._uow.fetch_all(
            f"SELECT {_ORDER} FROM orders o"
            " WHERE o.status IN ('created', 'payment_pending') AND o.expires_at <= %s"
            " ORDER BY o.expires_at LIMIT %s",
            (now, _limit(limit)),
        )
        return [_order(row) for row in rows]


# --- payments -----------------------------------------------------------------------------

_PAYMENT = (
    "payment_id, order_id, user_id, provider, amount, currency, idempotency_key, status,"
    " provider_transaction_id, failure_reason, refund_reason, created_at, processed_at,"
    " refunded_at, version, redirect_url"
)


def _payment(row: DbRow) -> Payment:
    return Payment(
        payment_id=PaymentId(row[0]),
        order_id=OrderId(row[1]),
        user_id=UserId(row[2]),
        provider=row[3],
        amount=Money(row[4], row[5]),
        idempotency_key=row[6],
        status=PaymentStatus(row[7]),
        provider_transaction_id=row[8],
        failure_reason=row[9],
        refund_reason=row[10],
        created_at=row[11],
        processed_at=row[12],
        refunded_at=row[13],
        version=row[14],
        redirect_url=row[15],
    )


def _payment_params(payment: Payment) -> dict[str, Any]:
    return {
        "payment_id": payment.payment_id,
        "order_id": payment.order_id,
        "user_id": payment.user_id,
        "provider": payment.provider,
        "amount": payment.amount.amount,
        "currency": payment.amount.currency,
        "idempotency_key": payment.idempotency_key,
        "status": payment.status.value,
        "provider_transaction_id": payment.provider_transaction_id,
        "redirect_url": payment.redirect_url,
        "failure_reason": payment.failure_reason,
        "refund_reason": payment.refund_reason,
        "created_at": payment.created_at,
        "processed_at": payment.processed_at,
        "refunded_at": payment.refunded_at,
    }


class PostgresPaymentRepository:
    """Payments in PostgreSQL; idempotency keys and provider transaction ids are unique."""

    def __init__(self, uow: PostgresUnitOfWork) -> None:
        self._uow = uow

    async def add(self, payment: Payment) -> None:
        """Store a new payment."""
        version = self._uow.version_to_add("payments", payment.payment_id, payment)
        self._uow.defer(
            f"INSERT INTO payments ({_PAYMENT}) VALUES (%(payment_id)s, %(order_id)s,"
            " %(user_id)s, %(provider)s, %(amount)s, %(currency)s, %(idempotency_key)s,"
            " %(status)s, %(provider_transaction_id)s, %(failure_reason)s, %(refund_reason)s,"
            " %(created_at)s, %(processed_at)s, %(refunded_at)s, %(version)s,"
            " %(redirect_url)s)",
            {**_payment_params(payment), "version": version},
        )
        self._uow.wrote("payments", payment.payment_id, payment, 0, version)

    async def get(self, payment_id: PaymentId) -> Payment | None:
        """The payment with this id, if any."""
        row = await self._uow.fetch_one(
            f"SELECT {_PAYMENT} FROM payments WHERE payment_id = %s", (payment_id,)
        )
        return None if row is None else _payment(row)

    async def save(self, payment: Payment) -> None:
        """Store changes to a loaded payment."""
        await _update(
            self._uow,
            "payments",
            payment.payment_id,
            payment,
            "UPDATE payments SET status = %(status)s,"
            " provider_transaction_id = %(provider_transaction_id)s,"
            " redirect_url = %(redirect_url)s,"
            " failure_reason = %(failure_reason)s, refund_reason = %(refund_reason)s,"
            " processed_at = %(processed_at)s, refunded_at = %(refunded_at)s,"
            " amount = %(amount)s, currency = %(currency)s, version = %(version)s"
            " WHERE payment_id = %(payment_id)s AND version = %(expected)s",
            _payment_params(payment),
        )

    async def get_by_idempotency_key(self, key: str) -> Payment | None:
        """The payment created with this idempotency key, if any."""
        row = await self._uow.fetch_one(
            f"SELECT {_PAYMENT} FROM payments WHERE idempotency_key = %s", (key,)
        )
        return None if row is None else _payment(row)

    async def get_by_provider_transaction(
        self, provider: str, provider_transaction_id: str
    ) -> Payment | None:
        """The payment a provider knows by this transaction id, if any."""
        if not _storable(provider, provider_transaction_id):
            return None
        row = await self._uow.fetch_one(
            f"SELECT {_PAYMENT} FROM payments WHERE provider = %s AND provider_transaction_id = %s",
            (provider, provider_transaction_id),
        )
        return None if row is None else _payment(row)

    async def list_for_order(self, order_id: OrderId) -> Sequence[Payment]:
        """Every payment attempt of an order, oldest first."""
        rows = await self._uow.fetch_all(
            f"SELECT {_PAYMENT} FROM payments WHERE order_id = %s ORDER BY seq", (order_id,)
        )
        return [_payment(row) for row in rows]

    async def list_unsettled(self, *, limit: int = DEFAULT_PAGE_SIZE) -> Sequence[Payment]:
        """Payments still initiated or pending, oldest first."""
        rows = await self._uow.fetch_all(
            f"SELECT {_PAYMENT} FROM payments WHERE status IN ('initiated', 'pending')"
            " ORDER BY created_at, seq LIMIT %s",
            (_limit(limit),),
        )
        return [_payment(row) for row in rows]


# --- tickets ------------------------------------------------------------------------------

_TICKET = (
    "ticket_id, order_id, session_id, seat_id, user_id, price, currency, qr_code, status,"
    " issued_at, used_at, voided_at, version, seq"
)


def _ticket(row: DbRow) -> Ticket:
    return Ticket(
        ticket_id=TicketId(row[0]),
        order_id=OrderId(row[1]),
        session_id=SessionId(row[2]),
        seat_id=SeatId(row[3]),
        user_id=UserId(row[4]),
        price=Money(row[5], row[6]),
        qr_code=row[7],
        status=TicketStatus(row[8]),
        issued_at=row[9],
        used_at=row[10],
        voided_at=row[11],
        version=row[12],
    )


def _ticket_params(ticket: Ticket) -> dict[str, Any]:
    return {
        "ticket_id": ticket.ticket_id,
        "order_id": ticket.order_id,
        "session_id": ticket.session_id,
        "seat_id": ticket.seat_id,
        "user_id": ticket.user_id,
        "price": ticket.price.amount,
        "currency": ticket.price.currency,
        "qr_code": ticket.qr_code,
        "status": ticket.status.value,
        "issued_at": ticket.issued_at,
        "used_at": ticket.used_at,
        "voided_at": ticket.voided_at,
    }


_TICKET_VALUES = (
    "%(ticket_id)s, %(order_id)s, %(session_id)s, %(seat_id)s, %(user_id)s, %(price)s,"
    " %(currency)s, %(qr_code)s, %(status)s, %(issued_at)s, %(used_at)s, %(voided_at)s,"
    " %(version)s"
)
_TICKET_COLUMNS = (
    "ticket_id, order_id, session_id, seat_id, user_id, price, currency, qr_code, status,"
    " issued_at, used_at, voided_at, version"
)


class PostgresTicketRepository:
    """Tickets in PostgreSQL.

    Live tickets are in ``tickets``, whose ``UNIQUE(session_id, seat_id)`` refuses a
    second ticket for a seat (``SeatAlreadyTicketed``); voiding a ticket moves it to
    ``voided_tickets``, which frees the seat for a new sale.
    """

    def __init__(self, uow: PostgresUnitOfWork) -> None:
        self._uow = uow

    async def add(self, ticket: Ticket) -> None:
        """Store a new ticket; the seat's unique key is the final double-sale fence.

        A live ticket travels with the unit's next statement or its commit, which
        raises ``SeatAlreadyTicketed`` when the seat has a live ticket, ``DuplicateError``
        when a live ticket has its id, and ``ConcurrencyError`` when a voided one has
        (ids are random: the same ticket stored twice).
        """
        version = self._uow.version_to_add("tickets", ticket.ticket_id, ticket)
        params = {**_ticket_params(ticket), "version": version}
        if ticket.is_live:
            self._uow.defer(
                versioned(
                    f"INSERT INTO tickets ({_TICKET_COLUMNS}, seq) SELECT {_TICKET_VALUES},"
                    " nextval('tickets_seq_seq') WHERE NOT EXISTS"
                    " (SELECT 1 FROM voided_tickets WHERE ticket_id = %(ticket_id)s)"
                ),
                params,
            )
        else:
            touched = await self._uow.write(
                f"INSERT INTO voided_tickets ({_TICKET_COLUMNS}, seq) SELECT {_TICKET_VALUES},"
                " nextval('tickets_seq_seq') WHERE NOT EXISTS"
                " (SELECT 1 FROM tickets WHERE ticket_id = %(ticket_id)s)",
                params,
            )
            if touched != 1:
                raise DuplicateError(f"Ticket {ticket.ticket_id} exists already")
        self._uow.wrote("tickets", ticket.ticket_id, ticket, 0, version)

    async def get(self, ticket_id: TicketId) -> Ticket | None:
        """The ticket with this id, if any (voided ones too)."""
        row = await self._uow.fetch_one(
            f"SELECT {_TICKET} FROM all_tickets WHERE ticket_id = %s", (ticket_id,)
        )
        return None if row is None else _ticket(row)

    async def save(self, ticket: Ticket) -> None:
        """Store changes to a loaded ticket; a voided one moves to ``voided_tickets``."""
        expected, version = self._uow.versions_to_save("tickets", ticket.ticket_id, ticket)
        params = {**_ticket_params(ticket), "expected": expected, "version": version}
        if ticket.is_live:
            touched = await self._uow.write(
                "UPDATE tickets SET status = %(status)s, used_at = %(used_at)s,"
                " voided_at = %(voided_at)s, version = %(version)s"
                " WHERE ticket_id = %(ticket_id)s AND version = %(expected)s",
                params,
            )
        else:
            moved = await self._uow.write_returning(
                "WITH gone AS (DELETE FROM tickets WHERE ticket_id = %(ticket_id)s"
                " AND version = %(expected)s RETURNING seq)"
                f" INSERT INTO voided_tickets ({_TICKET_COLUMNS}, seq)"
                f" SELECT {_TICKET_VALUES}, gone.seq FROM gone RETURNING 1",
                params,
            )
            touched = 1 if moved is not None else 0
            if not touched:
                touched = await self._uow.write(
                    "UPDATE voided_tickets SET used_at = %(used_at)s,"
                    " voided_at = %(voided_at)s, version = %(version)s"
                    " WHERE ticket_id = %(ticket_id)s AND version = %(expected)s",
                    params,
                )
        if touched != 1:
            raise ConcurrencyError(
                f"Ticket {ticket.ticket_id} changed meanwhile or was never stored"
            )
        self._uow.wrote("tickets", ticket.ticket_id, ticket, ticket.version, version)

    async def get_by_qr_code(self, qr_code: str) -> Ticket | None:
        """The ticket showing this QR code, if any."""
        if not _storable(qr_code):
            return None
        row = await self._uow.fetch_one(
            f"SELECT {_TICKET} FROM all_tickets WHERE qr_code = %s", (qr_code,)
        )
        return None if row is None else _ticket(row)

    async def list_for_user(
        self, user_id: UserId, *, limit: int = DEFAULT_PAGE_SIZE, cursor: str | None = None
    ) -> Page[Ticket]:
        """A user's tickets (voided ones too), oldest first."""
        rows = await self._uow.fetch_all(
            f"SELECT {_TICKET} FROM all_tickets WHERE user_id = %s AND seq > %s"
            " ORDER BY seq LIMIT %s",
            (user_id, decode_cursor(cursor), _limit(limit) + 1),
        )
        return _page(rows, limit, _ticket)

    async def list_for_order(self, order_id: OrderId) -> Sequence[Ticket]:
        """The tickets of one order."""
        rows = await self._uow.fetch_all(
            f"SELECT {_TICKET} FROM all_tickets WHERE order_id = %s ORDER BY seq", (order_id,)
        )
        return [_ticket(row) for row in rows]

    async def sold_seats(
        self, session_id: SessionId, area_id: AreaId | None = None
    ) -> Mapping[SeatId, OrderId]:
        """Seats with a live ticket in a session (optionally one area), and their orders."""
        if area_id is None:
            rows = await self._uow.fetch_all(
                "SELECT seat_id, order_id FROM tickets WHERE session_id = %s", (session_id,)
            )
        else:
            rows = await self._uow.fetch_all(
                "SELECT seat_id, order_id FROM tickets WHERE session_id = %s"
                " AND left(seat_id, %s) = %s",
                (session_id, len(area_id) + 1, f"{area_id}-"),
            )
        return {
            SeatId(seat): OrderId(order)
            for seat, order in rows
            if area_id is None or parse_seat_id(seat).area_id == area_id
        }


# --- processed events ---------------------------------------------------------------------


class PostgresProcessedEventRepository:
    """Which consumer handled which event, in ``processed_events``."""

    def __init__(self, uow: PostgresUnitOfWork) -> None:
        self._uow = uow

    async def add(self, consumer: str, event_id: UUID) -> bool:
        """Record the event as handled; False if it was before (waits for a racing unit)."""
        row = await self._uow.write_returning(
            "INSERT INTO processed_events (consumer, event_id) VALUES (%s, %s)"
            " ON CONFLICT DO NOTHING RETURNING 1",
            (consumer, event_id),
        )
        return row is not None

    async def claim(self, consumer: str, event_id: UUID) -> None:
        """Record the event as handled with the unit's next statement or its commit.

        The primary key refuses a second record (``DuplicateError``, the unit rolls back);
        a racing unit's record makes this one wait for its end, as ``add`` does.
        """
        self._uow.require_active()
        self._uow.defer(
            "INSERT INTO processed_events (consumer, event_id) VALUES (%s, %s)",
            (consumer, event_id),
        )

    async def contains(self, consumer: str, event_id: UUID) -> bool:
        """Whether the consumer handled the event."""
        row = await self._uow.fetch_one(
            "SELECT 1 FROM processed_events WHERE consumer = %s AND event_id = %s",
            (consumer, event_id),
        )
        return row is not None


__all__ = [
    "PostgresEventRepository",
    "PostgresOrderRepository",
    "PostgresPaymentRepository",
    "PostgresPriceCategoryRepository",
    "PostgresProcessedEventRepository",
    "PostgresSessionRepository",
    "PostgresTicketRepository",
    "PostgresUserRepository",
    "PostgresVenueRepository",
]
