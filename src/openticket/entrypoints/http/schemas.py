"""Request and response bodies of the HTTP API (msgspec Structs) and their mapping.

Request bodies forbid unknown fields: a buyer who sends ``status``, ``total``,
``user_id`` or a price gets a 400, and nothing is stored.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any
from uuid import UUID

import msgspec

from openticket.application.facade import SeatView
from openticket.application.ports.repositories import Page
from openticket.domain.catalog import Event, PriceCategory, Session
from openticket.domain.identity import User
from openticket.domain.ordering import Order
from openticket.domain.payment import Payment
from openticket.domain.shared import Money, ValidationError
from openticket.domain.ticketing import Ticket
from openticket.domain.venue import Venue

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Text = Annotated[str, msgspec.Meta(max_length=5000)]
Label = Annotated[str, msgspec.Meta(min_length=1, max_length=16)]
Email = Annotated[str, msgspec.Meta(min_length=3, max_length=254)]
Password = Annotated[str, msgspec.Meta(max_length=1024)]
SeatIdText = Annotated[str, msgspec.Meta(min_length=5, max_length=50)]
Short = Annotated[str, msgspec.Meta(max_length=200)]


class Body(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Base of request bodies: unknown fields are refused."""


# --- requests ---------------------------------------------------------------------------


class RegisterBody(Body):
    """A new account."""

    email: Email
    password: Password
    display_name: Name


class TokenBody(Body):
    """Sign in."""

    email: Annotated[str, msgspec.Meta(max_length=1024)]
    password: Password


class RowBody(Body):
    """A row of an area: its label and seat numbers."""

    row: Label
    seats: Annotated[
        list[Annotated[int, msgspec.Meta(ge=1, le=99_999)]],
        msgspec.Meta(min_length=1, max_length=2000),
    ]


class AreaBody(Body):
    """An area of a seat map."""

    area_id: Label
    name: Name
    rows: Annotated[list[RowBody], msgspec.Meta(min_length=1, max_length=1000)]


class SeatMapBody(Body):
    """Areas → rows → seats."""

    areas: Annotated[list[AreaBody], msgspec.Meta(min_length=1, max_length=200)]


class VenueBody(Body):
    """A new venue."""

    name: Name
    address: Annotated[dict[Short, Short], msgspec.Meta(max_length=20)]
    seat_map: SeatMapBody


class EventBody(Body):
    """A new event at a venue."""

    venue_id: UUID
    name: Name
    description: Text = ""


class MoneyBody(Body):
    """An amount as a decimal string and an ISO currency."""

    amount: Annotated[str, msgspec.Meta(max_length=20)]
    currency: Annotated[str, msgspec.Meta(min_length=3, max_length=3)]

    def to_money(self) -> Money:
        """The domain value (``ValidationError`` for a malformed amount)."""
        try:
            amount = Decimal(self.amount)
        except InvalidOperation as e:
            raise ValidationError(f"amount {self.amount!r} is not a decimal") from e
        if not amount.is_finite() or amount != amount.quantize(Decimal("0.01")):
            raise ValidationError("amounts have at most two decimal places")
        if amount > Decimal("99999999.99"):
            raise ValidationError("amount too large")
        return Money(amount, self.currency)


class PriceCategoryBody(Body):
    """A price for some areas of an event."""

    name: Name
    area_ids: Annotated[list[Label], msgspec.Meta(min_length=1, max_length=200)]
    price: MoneyBody
    quota: Annotated[int, msgspec.Meta(ge=0, le=1_000_000)] | None = None


class SessionBody(Body):
    """A performance with its sale window."""

    start_time: datetime
    end_time: datetime
    sale_start_time: datetime
    sale_end_time: datetime
    queue_enabled: bool = False
    max_seats_per_order: Annotated[int, msgspec.Meta(ge=1, le=100)] | None = None


class OrderBody(Body):
    """Hold these seats of a session."""

    session_id: UUID
    seat_ids: Annotated[list[SeatIdText], msgspec.Meta(min_length=1, max_length=100)]


class PaymentBody(Body):
    """Pay an order with a provider (``outcome`` steers the mock provider)."""

    provider: Annotated[str, msgspec.Meta(min_length=1, max_length=20)]
    outcome: Annotated[str, msgspec.Meta(max_length=40)] | None = None
    return_url: Annotated[str, msgspec.Meta(max_length=2000)] | None = None


class CheckInBody(Body):
    """The code on a ticket."""

    qr_code: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


# --- responses ----------------------------------------------------------------------------


class MoneyOut(msgspec.Struct):
    """Money: the amount as a decimal string with two places."""

    amount: str
    currency: str


def money_out(money: Money) -> MoneyOut:
    """The API form of an amount."""
    return MoneyOut(f"{money.amount:.2f}", money.currency)


class UserOut(msgspec.Struct):
    """An account as its owner sees it."""

    user_id: UUID
    email: str
    display_name: str
    roles: list[str]


def user_out(user: User) -> UserOut:
    """The API form of a user."""
    return UserOut(user.user_id, user.email, user.display_name, sorted(r.value for r in user.roles))


class TokenOut(msgspec.Struct):
    """A bearer token."""

    access_token: str
    token_type: str
    expires_in: int


class RowOut(msgspec.Struct):
    """A row."""

    row: str
    seats: list[int]


class AreaOut(msgspec.Struct):
    """An area."""

    area_id: str
    name: str
    rows: list[RowOut]


class VenueOut(msgspec.Struct):
    """A venue with its seat map."""

    venue_id: UUID
    name: str
    address: dict[str, str]
    capacity: int
    status: str
    seat_map: dict[str, list[AreaOut]]


def venue_out(venue: Venue) -> VenueOut:
    """The API form of a venue."""
    areas = [
        AreaOut(a.area_id, a.name, [RowOut(r.row, list(r.seats)) for r in a.rows])
        for a in venue.seat_map.areas
    ]
    return VenueOut(
        venue.venue_id,
        venue.name,
        dict(venue.address),
        venue.capacity,
        venue.status.value,
        {"areas": areas},
    )


class CategoryOut(msgspec.Struct):
    """A price category."""

    category_id: UUID
    event_id: UUID
    name: str
    area_ids: list[str]
    price: MoneyOut
    quota: int | None


def category_out(c: PriceCategory) -> CategoryOut:
    """The API form of a price category."""
    return CategoryOut(
        c.category_id, c.event_id, c.name, sorted(c.area_ids), money_out(c.price), c.quota
    )


class SessionOut(msgspec.Struct):
    """A session and whether it sells now."""

    session_id: UUID
    event_id: UUID
    start_time: datetime
    end_time: datetime
    sale_start_time: datetime
    sale_end_time: datetime
    queue_enabled: bool
    max_seats_per_order: int
    status: str
    sale_state: str


def session_out(s: Session, now: datetime) -> SessionOut:
    """The API form of a session at ``now``."""
    return SessionOut(
        s.session_id,
        s.event_id,
        s.start_time,
        s.end_time,
        s.sale_start_time,
        s.sale_end_time,
        s.queue_enabled,
        s.max_seats_per_order,
        s.status.value,
        s.sale_state(now).value,
    )


class EventOut(msgspec.Struct):
    """An event (with its sessions and categories when read alone)."""

    event_id: UUID
    venue_id: UUID
    organizer_id: UUID
    name: str
    description: str
    status: str
    created_at: datetime
    sessions: list[SessionOut] | None = None
    price_categories: list[CategoryOut] | None = None


def event_out(
    e: Event,
    sessions: list[SessionOut] | None = None,
    categories: list[CategoryOut] | None = None,
) -> EventOut:
    """The API form of an event."""
    return EventOut(
        e.event_id,
        e.venue_id,
        e.organizer_id,
        e.name,
        e.description,
        e.status.value,
        e.created_at,
        sessions,
        categories,
    )


class SeatOut(msgspec.Struct):
    """A seat of a session with its status and price."""

    seat_id: str
    area_id: str
    row: str
    number: int
    status: str
    price: MoneyOut | None


def seat_out(v: SeatView) -> SeatOut:
    """The API form of a seat."""
    return SeatOut(
        v.seat_id,
        v.area_id,
        v.row,
        v.number,
        v.status.value,
        None if v.price is None else money_out(v.price),
    )


class ItemOut(msgspec.Struct):
    """One seat of an order."""

    seat_id: str
    price: MoneyOut


class OrderOut(msgspec.Struct):
    """An order."""

    order_id: UUID
    user_id: UUID
    session_id: UUID
    status: str
    items: list[ItemOut]
    total: MoneyOut
    created_at: datetime
    expires_at: datetime
    payment_id: UUID | None = None


def order_out(o: Order) -> OrderOut:
    """The API form of an order."""
    return OrderOut(
        o.order_id,
        o.user_id,
        o.session_id,
        o.status.value,
        [ItemOut(i.seat_id, money_out(i.price)) for i in o.items],
        money_out(o.total),
        o.created_at,
        o.expires_at,
        o.payment_id,
    )


class PaymentOut(msgspec.Struct, omit_defaults=True):
    """A payment attempt."""

    payment_id: UUID
    order_id: UUID
    provider: str
    status: str
    amount: MoneyOut
    failure_reason: str | None = None
    redirect_url: str | None = None
    client_secret: str | None = None


def payment_out(
    p: Payment, *, redirect_url: str | None = None, client_secret: str | None = None
) -> PaymentOut:
    """The API form of a payment (with what the buyer needs next, just after it started)."""
    return PaymentOut(
        p.payment_id,
        p.order_id,
        p.provider,
        p.status.value,
        money_out(p.amount),
        p.failure_reason,
        redirect_url,
        client_secret,
    )


class TicketOut(msgspec.Struct):
    """A ticket."""

    ticket_id: UUID
    order_id: UUID
    session_id: UUID
    seat_id: str
    status: str
    qr_code: str
    price: MoneyOut
    used_at: datetime | None = None


def ticket_out(t: Ticket) -> TicketOut:
    """The API form of a ticket."""
    return TicketOut(
        t.ticket_id,
        t.order_id,
        t.session_id,
        t.seat_id,
        t.status.value,
        t.qr_code,
        money_out(t.price),
        t.used_at,
    )


class PageOut(msgspec.Struct):
    """A page of a list and the cursor of the next one."""

    items: list[Any]
    next_cursor: str | None = None


def page_out(page: Page[Any], convert: Any) -> PageOut:
    """The API form of a page, each item converted."""
    return PageOut([convert(item) for item in page.items], page.next_cursor)
