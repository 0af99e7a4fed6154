"""Request and response bodies of the HTTP API (msgspec Structs) and their mapping.

Request bodies forbid unknown fields: a buyer who sends ``status``, ``total``,
``user_id`` or a price gets a 400, and nothing is stored.

One module, over 500 lines: every body of the API in one place, so the OpenAPI
document, the fuzzer and a reader see each field's pattern once.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Literal
from uuid import UUID

import msgspec
from litestar.params import QueryParameter

from openticket.adapters.paging import CURSOR_PATTERN
from openticket.adapters.payments.mock import MockOutcome
from openticket.application.gate.waiting_room import QueueEntry, QueueStatus
from openticket.application.ports.repositories import Page
from openticket.application.sales import SalesFigures
from openticket.application.seating.board import SeatView
from openticket.domain.catalog import (
    Event,
    EventStatus,
    PriceCategory,
    SaleState,
    Session,
    SessionStatus,
)
from openticket.domain.identity import Role, User
from openticket.domain.ordering import Order, OrderStatus
from openticket.domain.payment import Payment, PaymentStatus
from openticket.domain.seating import SeatStatus
from openticket.domain.shared import Money, ValidationError
from openticket.domain.ticketing import Ticket, TicketStatus
from openticket.domain.venue import Venue, VenueStatus

_INVISIBLE = (
    r"\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b\u200e\u200f"
    r"\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb"
    # beyond the BMP as the characters themselves: a JSON Schema (ECMA-262, unicode
    # mode) and Python's re both read them as one code point each
    "\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3"
    "\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f"
)
"""Invisible format characters (Unicode category Cf) but the joiners U+200C and U+200D:
zero-width space, soft hyphen, byte-order mark, bidirectional marks, embeddings,
overrides and isolates, tags... — what makes one string look like another."""
_FORBIDDEN = rf"\x00-\x1f\x7f-\x9f\u2028\u2029{_INVISIBLE}"
"""Characters no line of text may hold: controls, line and paragraph separators, and
the invisible ones. The domain refuses the same (``openticket.domain.shared.
refused_character``), so nothing the schema lets through is refused behind it."""
_FORBIDDEN_IN_TEXT = rf"\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f{_INVISIBLE}"
"""The same for a text of several lines: it keeps tabs and line breaks."""


def whole(expression: str) -> str:
    r"""A pattern the whole string must match, read alike by every regex dialect.

    JSON Schema patterns are ECMA-262 regexes, searched; msgspec checks them with
    Python's ``re``, where ``$`` also matches before a final newline — so ``"A\n"``
    would pass ``^[A-Z]$``. The lookahead ``(?!\n)`` closes that gap and changes
    nothing for ECMA-262, where ``$`` is the end of the string.
    """
    return rf"^(?:{expression})$(?!\n)"


LINE_PATTERN = whole(rf"[^{_FORBIDDEN}]*")
"""One line of text: no controls, no invisible characters."""
NAME_PATTERN = whole(rf"[^\s{_FORBIDDEN}](?:[^{_FORBIDDEN}]*[^\s{_FORBIDDEN}])?")
"""A name: one line that starts and ends with something visible."""
TEXT_PATTERN = whole(rf"[^{_FORBIDDEN_IN_TEXT}]*")
"""Free text over several lines."""
LABEL_PATTERN = whole(r"[A-Za-z0-9_]{1,16}")
"""An area id or a row label: short, and without '-' so a seat id splits back."""
SEAT_ID_PATTERN = whole(r"[A-Za-z0-9_]{1,16}-[A-Za-z0-9_]{1,16}-[1-9][0-9]{0,4}")
"""``{area_id}-{row}-{number}``, the number 1-99999."""
_ADDRESS_CHAR = r"[!-?A-~]"  # printable ASCII without '@'
_DOMAIN_CHAR = r"[!-\-/-?A-~]"  # ... and without '.'
EMAIL_PATTERN = whole(rf" *{_ADDRESS_CHAR}{{1,64}}@{_DOMAIN_CHAR}+(?:\.{_DOMAIN_CHAR}+)+ *")
"""An e-mail address in ASCII (international domains in their xn-- form): one spelling
per mailbox, no lookalikes. Spaces around it are trimmed."""
PASSWORD_PATTERN = LINE_PATTERN
AMOUNT_PATTERN = whole(r"[0-9]{1,8}(?:\.[0-9]{1,2})?")
"""A price: a decimal string with at most two places, below 100,000,000."""
CURRENCY_PATTERN = whole(r"[A-Z]{3}")
PROVIDER_PATTERN = whole(r"[a-z][a-z0-9_]{0,19}")
CURSOR = whole(CURSOR_PATTERN.removeprefix("^").removesuffix("$"))
"""A list cursor as the lists hand them out."""

PATTERN_MEANINGS = {
    LINE_PATTERN: "one line of text without control or invisible characters",
    NAME_PATTERN: "a name: one line without control or invisible characters, not starting"
    " or ending with a space",
    TEXT_PATTERN: "text without control or invisible characters (tabs and line breaks allowed)",
    LABEL_PATTERN: "1-16 letters, digits or '_' (no '-')",
    SEAT_ID_PATTERN: "a seat id such as `A-3-12`: area, row and number (1-99999)",
    EMAIL_PATTERN: "an e-mail address in ASCII, e.g. `me@example.com`",
    AMOUNT_PATTERN: "a decimal amount with at most two places, e.g. `1200.00`",
    CURRENCY_PATTERN: "an ISO 4217 currency code, e.g. `TWD`",
    PROVIDER_PATTERN: "a provider name: lower-case letters, digits and '_'",
    CURSOR: "the `next_cursor` of a page of this list",
}
"""What each of the patterns means, for error messages."""

Limit = Annotated[
    int, QueryParameter(ge=1, le=200, description="How many items a page holds at most.")
]
Cursor = Annotated[
    str | None,
    QueryParameter(
        min_length=11,
        max_length=11,
        pattern=CURSOR,
        description="The `next_cursor` of the page before; none for the first page.",
    ),
]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=NAME_PATTERN)]
DisplayName = Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=NAME_PATTERN)]
Text = Annotated[str, msgspec.Meta(max_length=5000, pattern=TEXT_PATTERN)]
Label = Annotated[str, msgspec.Meta(min_length=1, max_length=16, pattern=LABEL_PATTERN)]
Email = Annotated[str, msgspec.Meta(min_length=3, max_length=254, pattern=EMAIL_PATTERN)]
NewPassword = Annotated[str, msgspec.Meta(min_length=8, max_length=128, pattern=PASSWORD_PATTERN)]
Password = Annotated[str, msgspec.Meta(min_length=1, max_length=1024, pattern=PASSWORD_PATTERN)]
SeatIdText = Annotated[str, msgspec.Meta(min_length=5, max_length=50, pattern=SEAT_ID_PATTERN)]
Short = Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=NAME_PATTERN)]
AddressKey = Annotated[str, msgspec.Meta(min_length=1, max_length=50, pattern=NAME_PATTERN)]
"""A part of an address: ``street``, ``city``, ``postal_code``, ``市``..."""
AwareTime = Annotated[datetime, msgspec.Meta(tz=True)]
"""An RFC 3339 time with its UTC offset (a time without one is refused)."""


def _unique(*, min_length: int, max_length: int) -> msgspec.Meta:
    """A list constraint: its items are distinct (the service refuses repeats)."""
    return msgspec.Meta(
        min_length=min_length, max_length=max_length, extra_json_schema={"uniqueItems": True}
    )


class Body(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Base of request bodies: unknown fields are refused."""


def request_bodies() -> list[type[Body]]:
    """Every request body type (the document describes them as msgspec checks them)."""
    found: list[type[Body]] = []
    pending: list[type[Body]] = [Body]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if cls is not Body:
            found.append(cls)
    return sorted(found, key=lambda cls: cls.__name__)


# --- requests ---------------------------------------------------------------------------


class RegisterBody(Body):
    """A new account."""

    email: Email
    password: NewPassword
    display_name: DisplayName


class TokenBody(Body):
    """Sign in."""

    email: Annotated[str, msgspec.Meta(min_length=1, max_length=1024, pattern=LINE_PATTERN)]
    password: Password


class RowBody(Body):
    """A row of an area: its label and seat numbers (each once)."""

    row: Label
    seats: Annotated[
        list[Annotated[int, msgspec.Meta(ge=1, le=99_999)]], _unique(min_length=1, max_length=2000)
    ]


class AreaBody(Body):
    """An area of a seat map; row labels are unique within it."""

    area_id: Label
    name: Name
    rows: Annotated[list[RowBody], msgspec.Meta(min_length=1, max_length=1000)]


class SeatMapBody(Body):
    """Areas → rows → seats; area ids are unique within the map."""

    areas: Annotated[list[AreaBody], msgspec.Meta(min_length=1, max_length=200)]


class VenueBody(Body):
    """A new venue."""

    name: Name
    address: Annotated[
        dict[AddressKey, Short],
        msgspec.Meta(max_length=20),
    ]
    seat_map: SeatMapBody


class EventBody(Body):
    """A new event at a venue."""

    venue_id: UUID
    name: Name
    description: Text = ""


class MoneyBody(Body):
    """An amount as a decimal string and an ISO 4217 currency."""

    amount: Annotated[str, msgspec.Meta(min_length=1, max_length=11, pattern=AMOUNT_PATTERN)]
    currency: Annotated[str, msgspec.Meta(min_length=3, max_length=3, pattern=CURRENCY_PATTERN)]

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
    area_ids: Annotated[list[Label], _unique(min_length=1, max_length=200)]
    price: MoneyBody
    quota: Annotated[int, msgspec.Meta(ge=0, le=1_000_000)] | None = None


class SessionBody(Body):
    """A performance with its sale window.

    The times must follow each other: ``start_time < end_time``, ``sale_start_time <
    sale_end_time <= end_time`` (422 otherwise). ``challenge_required``: a buyer passes a
    human check (a challenge) before joining the waiting room; it needs ``queue_enabled``
    (422 otherwise).
    """

    start_time: AwareTime
    end_time: AwareTime
    sale_start_time: AwareTime
    sale_end_time: AwareTime
    queue_enabled: bool = False
    max_seats_per_order: Annotated[int, msgspec.Meta(ge=1, le=100)] | None = None
    max_seats_per_user: Annotated[int, msgspec.Meta(ge=1, le=1000)] | None = None
    challenge_required: bool = False


class OrderBody(Body):
    """Hold these seats of a session (all in one area, each once)."""

    session_id: UUID
    seat_ids: Annotated[list[SeatIdText], _unique(min_length=1, max_length=100)]


class PaymentBody(Body):
    """Pay an order with a provider (``outcome`` steers the mock provider)."""

    provider: Annotated[str, msgspec.Meta(min_length=1, max_length=20, pattern=PROVIDER_PATTERN)]
    outcome: MockOutcome | None = None


class CheckInBody(Body):
    """The code on a ticket."""

    qr_code: Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=LINE_PATTERN)]


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
    roles: list[Role]


def user_out(user: User) -> UserOut:
    """The API form of a user."""
    return UserOut(user.user_id, user.email, user.display_name, sorted(user.roles))


class TokenOut(msgspec.Struct):
    """A bearer token."""

    access_token: str
    token_type: Literal["bearer"]
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
    status: VenueStatus
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
        venue.status,
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
    max_seats_per_user: int
    """The seats one buyer may have in live and completed orders (default: the per-order cap)."""
    challenge_required: bool
    """Whether a buyer passes a challenge before joining the waiting room."""
    status: SessionStatus
    sale_state: SaleState


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
        s.seat_cap_per_user,
        s.challenge_required,
        s.status,
        s.sale_state(now),
    )


class EventOut(msgspec.Struct):
    """An event (with its sessions and categories when read alone)."""

    event_id: UUID
    venue_id: UUID
    organizer_id: UUID
    name: str
    description: str
    status: EventStatus
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
        e.status,
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
    status: SeatStatus
    price: MoneyOut | None


def seat_out(v: SeatView) -> SeatOut:
    """The API form of a seat."""
    return SeatOut(
        v.seat_id,
        v.area_id,
        v.row,
        v.number,
        v.status,
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
    status: OrderStatus
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
        o.status,
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
    status: PaymentStatus
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
        p.status,
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
    status: TicketStatus
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
        t.status,
        t.qr_code,
        money_out(t.price),
        t.used_at,
    )


class EventPage(msgspec.Struct):
    """A page of events and the cursor of the next one (null on the last page)."""

    items: list[EventOut]
    next_cursor: str | None


class OrderPage(msgspec.Struct):
    """A page of orders and the cursor of the next one (null on the last page)."""

    items: list[OrderOut]
    next_cursor: str | None


class TicketPage(msgspec.Struct):
    """A page of tickets and the cursor of the next one (null on the last page)."""

    items: list[TicketOut]
    next_cursor: str | None


class SeatMapOut(msgspec.Struct):
    """Every seat of a session with its status and price."""

    items: list[SeatOut]


class SalesOut(msgspec.Struct):
    """A session's sale now, as its organizer watches it.

    ``sellable``, ``held`` and ``sold`` count the seats that have a price;
    ``queue_depth`` the buyers waiting to be let in (0 without a waiting room);
    ``orders_last_minute`` the orders placed in the minute up to ``at``.
    """

    session_id: UUID
    sellable: int
    held: int
    sold: int
    queue_depth: int
    orders_last_minute: int
    at: datetime


def sales_out(figures: SalesFigures) -> SalesOut:
    """The API form of one reading of a session's sale."""
    return SalesOut(
        figures.session_id,
        figures.sellable,
        figures.held,
        figures.sold,
        figures.queue_depth,
        figures.orders_last_minute,
        figures.at,
    )


def event_page(page: Page[Event]) -> EventPage:
    """The API form of a page of events."""
    return EventPage([event_out(e) for e in page.items], page.next_cursor)


def order_page(page: Page[Order]) -> OrderPage:
    """The API form of a page of orders."""
    return OrderPage([order_out(o) for o in page.items], page.next_cursor)


def ticket_page(page: Page[Ticket]) -> TicketPage:
    """The API form of a page of tickets."""
    return TicketPage([ticket_out(t) for t in page.items], page.next_cursor)


class QueueOut(msgspec.Struct):
    """A buyer's entry in a session's waiting room (api.md, "Waiting room").

    ``position`` is null before the draw at ``draw_at`` (the sale start) and when sold
    out, 0 once admitted. ``admission_token`` goes in ``X-Admission-Token`` of
    ``POST /api/orders`` until ``admitted_until``.
    """

    queue_id: UUID
    session_id: UUID
    status: QueueStatus
    position: int | None
    draw_at: datetime | None = None
    estimated_wait_s: int | None = None
    admission_token: str | None = None
    admitted_until: datetime | None = None


def queue_out(entry: QueueEntry) -> QueueOut:
    """The API form of a queue entry."""
    return QueueOut(
        entry.queue_id,
        entry.session_id,
        entry.status,
        entry.position,
        entry.draw_at,
        entry.estimated_wait_s,
        entry.admission_token,
        entry.admitted_until,
    )
