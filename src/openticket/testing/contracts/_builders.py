"""Small builders the contract suites share: valid aggregates with fresh random ids.

Every builder goes through the domain's own constructors and factories, so what a
suite stores is exactly what the application would store. Ids are random (uuid4),
so suites can run against a server that other tests share.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import attrs
from attrs import AttrsInstance

from openticket.domain.catalog import Event, PriceCategory, Session
from openticket.domain.identity import Role, User
from openticket.domain.ordering import Order, OrderItem
from openticket.domain.payment import Payment
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
from openticket.domain.ticketing import Ticket
from openticket.domain.venue import Area, Row, SeatMap, Venue, area_of

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
"""The moment the builders use when a test does not say otherwise."""

CURRENCY = "EUR"

STORED_HASH = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA"
"""What the builders store as a user's password hash (the suites never check it)."""


def new_id() -> UUID:
    """A fresh random id (the ``IdFactory`` the builders hand to the domain)."""
    return uuid4()


def price(amount: str = "25.00") -> Money:
    """An amount in the suites' currency."""
    return Money(Decimal(amount), CURRENCY)


def seat(area: str, row: int | str, number: int) -> SeatId:
    """The seat id ``"{area}-{row}-{number}"``."""
    return SeatId(f"{area}-{row}-{number}")


def seats(area: str, count: int, *, row: int | str = 1) -> tuple[SeatId, ...]:
    """``count`` seats of one row of ``area``, numbered from 1."""
    return tuple(seat(area, row, n) for n in range(1, count + 1))


def unique_email(name: str = "buyer") -> str:
    """An e-mail address no other test uses."""
    return f"{name}.{uuid4().hex}@example.com"


def new_user(
    *,
    email: str | None = None,
    roles: Iterable[Role] = (Role.BUYER,),
    created_at: datetime = T0,
) -> User:
    """A new active user; a unique e-mail unless ``email`` is given."""
    return User(
        user_id=UserId(uuid4()),
        email=email if email is not None else unique_email(),
        display_name="Ada Lovelace",
        password_hash=STORED_HASH,
        roles=frozenset(roles),
        created_at=created_at,
    )


def new_seat_map() -> SeatMap:
    """Two areas: ``A`` (rows 1-2, seats 1-4) and ``B`` (row 1, seats 1-3)."""
    return SeatMap(
        (
            Area("A", "Stalls", (Row("1", (1, 2, 3, 4)), Row("2", (1, 2, 3, 4)))),
            Area("B", "Balcony", (Row("1", (1, 2, 3)),)),
        )
    )


def new_venue(*, name: str = "Concert Hall") -> Venue:
    """A new venue with :func:`new_seat_map`."""
    return Venue(
        venue_id=VenueId(uuid4()),
        name=name,
        address={"street": "1 Music Lane", "city": "Vienna", "country": "AT"},
        seat_map=new_seat_map(),
    )


def new_event(
    *,
    organizer_id: UserId | None = None,
    venue_id: VenueId | None = None,
    name: str = "Symphony No. 9",
    created_at: datetime = T0,
) -> Event:
    """A new published event."""
    return Event(
        event_id=EventId(uuid4()),
        venue_id=venue_id if venue_id is not None else VenueId(uuid4()),
        organizer_id=organizer_id if organizer_id is not None else UserId(uuid4()),
        name=name,
        description="An evening of music.",
        created_at=created_at,
    )


def new_session(
    *,
    event_id: EventId | None = None,
    start_time: datetime = T0 + timedelta(days=30),
    max_seats_per_user: int | None = None,
    queue_enabled: bool = False,
    challenge_required: bool = False,
) -> Session:
    """A new session of ``event_id`` starting at ``start_time``; its sale is open at ``T0``."""
    return Session(
        session_id=SessionId(uuid4()),
        event_id=event_id if event_id is not None else EventId(uuid4()),
        start_time=start_time,
        end_time=start_time + timedelta(hours=3),
        sale_start_time=T0 - timedelta(days=1),
        sale_end_time=start_time,
        max_seats_per_order=6,
        max_seats_per_user=max_seats_per_user,
        queue_enabled=queue_enabled,
        challenge_required=challenge_required,
    )


def new_price_category(
    *,
    event_id: EventId,
    areas: Iterable[str] = ("A",),
    amount: str = "25.00",
    name: str = "Stalls",
    quota: int | None = None,
) -> PriceCategory:
    """A new price category of ``event_id`` covering ``areas``."""
    return PriceCategory(
        category_id=CategoryId(uuid4()),
        event_id=event_id,
        name=name,
        area_ids=frozenset(AreaId(a) for a in areas),
        price=price(amount),
        quota=quota,
    )


def new_order(
    *,
    user_id: UserId | None = None,
    session_id: SessionId | None = None,
    seat_ids: Sequence[SeatId] | None = None,
    now: datetime = T0,
    ttl: timedelta = timedelta(minutes=2),
    fencing_token: int = 1,
) -> Order:
    """A new order (``Order.create``) for held seats; it expires ``ttl`` after ``now``."""
    chosen = seat_ids if seat_ids is not None else seats("A", 2)
    return Order.create(
        order_id=OrderId(uuid4()),
        user_id=user_id if user_id is not None else UserId(uuid4()),
        session_id=session_id if session_id is not None else SessionId(uuid4()),
        area_id=area_of(chosen[0]),
        hold_id=HoldId(uuid4()),
        fencing_token=fencing_token,
        items=[OrderItem(s, price()) for s in chosen],
        now=now,
        expires_at=now + ttl,
        ids=new_id,
    )


def new_payment(
    order: Order,
    *,
    provider: str = "mock",
    idempotency_key: str | None = None,
    now: datetime = T0,
) -> Payment:
    """A new payment (``Payment.initiate``) of ``order``'s total."""
    return Payment.initiate(
        payment_id=PaymentId(uuid4()),
        order_id=order.order_id,
        user_id=order.user_id,
        provider=provider,
        amount=order.total,
        idempotency_key=idempotency_key if idempotency_key is not None else f"pay-{uuid4().hex}",
        now=now,
        ids=new_id,
    )


def new_ticket(
    *,
    session_id: SessionId,
    seat_id: SeatId,
    user_id: UserId | None = None,
    order_id: OrderId | None = None,
    now: datetime = T0,
) -> Ticket:
    """A new ticket (``Ticket.issue``) with a unique QR code."""
    return Ticket.issue(
        ticket_id=TicketId(uuid4()),
        order_id=order_id if order_id is not None else OrderId(uuid4()),
        session_id=session_id,
        area_id=area_of(seat_id),
        seat_id=seat_id,
        user_id=user_id if user_id is not None else UserId(uuid4()),
        price=price(),
        qr_code=f"qr{uuid4().hex}",
        now=now,
        ids=new_id,
    )


_NOT_STATE = frozenset({"version", "_pending_events"})


def state_of(aggregate: AttrsInstance) -> Mapping[str, Any]:
    """An aggregate's stored fields by name, without ``version`` and pending events.

    Comparing two of these says whether a repository gave back what was stored,
    whatever version each copy was loaded at.
    """
    return {
        field.name: getattr(aggregate, field.name)
        for field in attrs.fields(type(aggregate))
        if field.name not in _NOT_STATE
    }
