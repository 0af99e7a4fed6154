"""Repositories: one per aggregate, used only inside a unit of work.

Reads hand out detached copies: changing one changes nothing stored until it is
saved and the unit of work commits. ``add`` stores a new aggregate (its ``version``
must be 0); ``save`` stores a loaded one and raises ``ConcurrencyError`` when someone
else saved it since it was loaded. Lists are ordered oldest first and paged with an
opaque cursor.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Generic, Protocol, TypeVar
from uuid import UUID

import attrs

from openticket.domain.catalog import Event, PriceCategory, Session
from openticket.domain.identity import User
from openticket.domain.ordering import Order, OrderLimits
from openticket.domain.payment import Payment
from openticket.domain.shared import (
    AreaId,
    CategoryId,
    EventId,
    OrderId,
    PaymentId,
    SeatId,
    SessionId,
    TicketId,
    UserId,
    VenueId,
)
from openticket.domain.ticketing import Ticket
from openticket.domain.venue import Venue

T = TypeVar("T")

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200


@attrs.frozen
class Page(Generic[T]):
    """One page of a list, and the cursor of the next page (``None`` at the end)."""

    items: tuple[T, ...]
    next_cursor: str | None = None


class InvalidCursor(ValueError):
    """A cursor that this repository did not hand out."""


class UserRepository(Protocol):
    """Users, found by id or by normalised e-mail. ``add`` raises ``EmailTaken``."""

    async def add(self, user: User) -> None:
        """Store a new user."""
        ...

    async def get(self, user_id: UserId) -> User | None:
        """The user with this id, if any."""
        ...

    async def get_by_email(self, email: str) -> User | None:
        """The user with this e-mail, compared as ``normalise_email`` spells it.

        None when nobody has it, and for a string that is no address at all.
        """
        ...

    async def save(self, user: User) -> None:
        """Store changes to a loaded user."""
        ...


class VenueRepository(Protocol):
    """Venues and their seat maps."""

    async def add(self, venue: Venue) -> None:
        """Store a new venue."""
        ...

    async def get(self, venue_id: VenueId) -> Venue | None:
        """The venue with this id, if any."""
        ...

    async def save(self, venue: Venue) -> None:
        """Store changes to a loaded venue."""
        ...


class EventRepository(Protocol):
    """Catalog events."""

    async def add(self, event: Event) -> None:
        """Store a new event."""
        ...

    async def get(self, event_id: EventId) -> Event | None:
        """The event with this id, if any."""
        ...

    async def save(self, event: Event) -> None:
        """Store changes to a loaded event."""
        ...

    async def list(
        self,
        *,
        limit: int = DEFAULT_PAGE_SIZE,
        cursor: str | None = None,
        organizer_id: UserId | None = None,
    ) -> Page[Event]:
        """Events oldest first, optionally only one organizer's."""
        ...


class SessionRepository(Protocol):
    """Sessions (performances) of events."""

    async def add(self, session: Session) -> None:
        """Store a new session."""
        ...

    async def get(self, session_id: SessionId) -> Session | None:
        """The session with this id, if any."""
        ...

    async def save(self, session: Session) -> None:
        """Store changes to a loaded session."""
        ...

    async def list_for_event(self, event_id: EventId) -> Sequence[Session]:
        """An event's sessions, earliest start first."""
        ...


class PriceCategoryRepository(Protocol):
    """Price categories of events (immutable once added)."""

    async def add(self, category: PriceCategory) -> None:
        """Store a new category."""
        ...

    async def get(self, category_id: CategoryId) -> PriceCategory | None:
        """The category with this id, if any."""
        ...

    async def list_for_event(self, event_id: EventId) -> Sequence[PriceCategory]:
        """An event's categories in the order they were added."""
        ...


class OrderRepository(Protocol):
    """Orders."""

    async def add(self, order: Order, limits: OrderLimits | None = None) -> None:
        """Store a new order; with ``limits``, only if it stays within them.

        The seats counted are those of the session's live and completed orders that
        are committed or added in this unit (``OrderLimits`` says which), and the
        decision is atomic across every process sharing the store: of two units adding
        orders of one buyer, or of one category with a quota, the second counts the
        first's order once it committed, so both never pass together. A refused order
        raises ``UserLimitReached`` or ``QuotaExhausted`` here, or from the unit's next
        statement or its commit; nothing of the unit is stored then.
        """
        ...

    async def seats_taken(self, session_id: SessionId, user_id: UserId) -> int:
        """The buyer's seats in live and completed orders of the session (committed ones).

        What ``OrderLimits.seats_per_user`` is counted against.
        """
        ...

    async def placed_since(self, session_id: SessionId, since: datetime) -> int:
        """How many orders of the session were placed after ``since`` (whatever became of them).

        The pace of a sale, as its organizer watches it (committed orders).
        """
        ...

    async def get(self, order_id: OrderId) -> Order | None:
        """The order with this id, if any."""
        ...

    async def save(self, order: Order) -> None:
        """Store changes to a loaded order."""
        ...

    async def list_for_user(
        self, user_id: UserId, *, limit: int = DEFAULT_PAGE_SIZE, cursor: str | None = None
    ) -> Page[Order]:
        """A buyer's orders, oldest first."""
        ...

    async def list_due(self, now: datetime, *, limit: int = DEFAULT_PAGE_SIZE) -> Sequence[Order]:
        """Open orders (created, payment_pending) whose ``expires_at`` is at or before ``now``."""
        ...


class PaymentRepository(Protocol):
    """Payments. ``add`` raises ``DuplicateError`` for a reused idempotency key."""

    async def add(self, payment: Payment) -> None:
        """Store a new payment."""
        ...

    async def get(self, payment_id: PaymentId) -> Payment | None:
        """The payment with this id, if any."""
        ...

    async def save(self, payment: Payment) -> None:
        """Store changes to a loaded payment."""
        ...

    async def get_by_idempotency_key(self, key: str) -> Payment | None:
        """The payment created with this idempotency key, if any."""
        ...

    async def get_by_provider_transaction(
        self, provider: str, provider_transaction_id: str
    ) -> Payment | None:
        """The payment a provider knows by this transaction id, if any."""
        ...

    async def list_for_order(self, order_id: OrderId) -> Sequence[Payment]:
        """Every payment attempt of an order, oldest first."""
        ...

    async def list_unsettled(self, *, limit: int = DEFAULT_PAGE_SIZE) -> Sequence[Payment]:
        """Payments still initiated or pending at their provider, oldest first."""
        ...


class TicketRepository(Protocol):
    """Tickets. ``add`` raises ``SeatAlreadyTicketed`` while a live ticket holds the seat."""

    async def add(self, ticket: Ticket) -> None:
        """Store a new ticket; at most one live (not voided) ticket per session and seat."""
        ...

    async def get(self, ticket_id: TicketId) -> Ticket | None:
        """The ticket with this id, if any."""
        ...

    async def save(self, ticket: Ticket) -> None:
        """Store changes to a loaded ticket."""
        ...

    async def get_by_qr_code(self, qr_code: str) -> Ticket | None:
        """The ticket showing this QR code, if any."""
        ...

    async def list_for_user(
        self, user_id: UserId, *, limit: int = DEFAULT_PAGE_SIZE, cursor: str | None = None
    ) -> Page[Ticket]:
        """A user's tickets (voided ones too), oldest first."""
        ...

    async def list_for_order(self, order_id: OrderId) -> Sequence[Ticket]:
        """The tickets of one order."""
        ...

    async def sold_seats(
        self, session_id: SessionId, area_id: AreaId | None = None
    ) -> Mapping[SeatId, OrderId]:
        """Seats with a live ticket in a session (optionally one area) and the order of each.

        What a partition actor rebuilds its sold seats from.
        """
        ...


class ProcessedEventRepository(Protocol):
    """Which consumer handled which event: the dedupe record of idempotent handlers."""

    async def add(self, consumer: str, event_id: UUID) -> bool:
        """Record that ``consumer`` handled ``event_id``; False if it was recorded before."""
        ...

    async def claim(self, consumer: str, event_id: UUID) -> None:
        """Record that ``consumer`` handles ``event_id`` in this unit, or refuse the unit.

        Unlike :meth:`add` it answers nothing: if the event was recorded before (or is
        by a racing unit that commits first), ``DuplicateError`` is raised here or by the
        unit's next statement or its commit, and nothing of the unit is stored. An
        adapter may so send it with the unit's other writes in one round trip.
        """
        ...

    async def contains(self, consumer: str, event_id: UUID) -> bool:
        """Whether ``consumer`` handled ``event_id`` already."""
        ...
