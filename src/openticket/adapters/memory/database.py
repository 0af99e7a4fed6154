"""Repositories and a unit of work in process memory, with real transaction semantics.

A ``MemoryDatabase`` keeps committed rows per table. Each ``MemoryUnitOfWork`` stages
its writes and applies them in ``commit`` after checking versions (optimistic
concurrency) and unique keys against what others committed meanwhile — so code that
is correct here is correct on PostgreSQL too. Nothing in ``commit`` awaits, which
makes it atomic within the event loop.

One module, over 500 lines: every table, repository and the unit of work share the
staged-write and commit checks that give it real transaction semantics.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Generic, Self, TypeVar
from uuid import UUID

from openticket.adapters.paging import decode_cursor, encode_cursor
from openticket.adapters.units import RepositoriesOnFirstUse
from openticket.application.ports.errors import (
    ConcurrencyError,
    DuplicateError,
    EmailTaken,
    NotInTransaction,
    SeatAlreadyTicketed,
)
from openticket.application.ports.repositories import (
    DEFAULT_PAGE_SIZE,
    Page,
)
from openticket.domain.catalog import Event, PriceCategory, Session
from openticket.domain.identity import User, email_to_find
from openticket.domain.ordering import Order, OrderLimits
from openticket.domain.payment import Payment, PaymentStatus
from openticket.domain.shared import (
    Aggregate,
    AreaId,
    CategoryId,
    DomainEvent,
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

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

UniqueKey = Callable[[Any], Hashable | None]
"""Maps a row to its value in a unique index (None: the row is not in the index)."""


class _Table(Generic[K, V]):
    """Committed rows of one table, their versions, insertion order and unique indexes."""

    def __init__(
        self,
        key: Callable[[V], K],
        unique: dict[str, tuple[UniqueKey, Callable[[V], Exception]]] | None = None,
        groups: dict[str, UniqueKey] | None = None,
    ) -> None:
        self.key = key
        self.unique = unique or {}
        self.groups = groups or {}
        self.rows: dict[K, V] = {}
        """Committed rows in commit order (which is also their position order)."""
        self.versions: dict[K, int] = {}
        self.position: dict[K, int] = {}
        self.indexes: dict[str, dict[Hashable, K]] = {name: {} for name in self.unique}
        self.members: dict[str, dict[Hashable, dict[K, None]]] = {name: {} for name in self.groups}
        """Non-unique indexes: group value → the keys in it, oldest first."""

    def apply(self, key: K, row: V, version: int, position: int) -> None:
        old = self.rows.get(key)
        for name, group_key in self.groups.items():
            members = self.members[name]
            old_value = None if old is None else group_key(old)
            value = group_key(row)
            if old_value == value:
                continue
            if old_value is not None:
                members[old_value].pop(key, None)
                if not members[old_value]:
                    del members[old_value]
            if value is not None:
                members.setdefault(value, {})[key] = None
        for name, (unique_key, _) in self.unique.items():
            index = self.indexes[name]
            if old is not None:
                old_value = unique_key(old)
                if old_value is not None and index.get(old_value) == key:
                    del index[old_value]
            value = unique_key(row)
            if value is not None:
                index[value] = key
        self.rows[key] = row
        self.versions[key] = version
        if key not in self.position:
            self.position[key] = position


class _TableTx(Generic[K, V]):
    """One unit of work's view of a table: committed rows overlaid with staged writes."""

    def __init__(self, table: _Table[K, V], uow: MemoryUnitOfWork) -> None:
        self.table = table
        self.uow = uow
        self.staged: dict[K, V] = {}
        self.expected: dict[K, int] = {}
        self.positions: dict[K, int] = {}
        self.originals: dict[K, V] = {}
        """The caller's objects: their ``version`` follows the commit."""

    def reset(self) -> None:
        """Forget the staged writes (after a commit or a rollback)."""
        if self.staged or self.expected or self.positions or self.originals:
            self.staged, self.expected, self.positions, self.originals = {}, {}, {}, {}

    # --- reads ---------------------------------------------------------------------

    def get(self, key: K) -> V | None:
        self.uow.require_active()
        row = self.staged.get(key)
        if row is None:
            row = self.table.rows.get(key)
        return None if row is None else _detached(row)

    def find_unique(self, index: str, value: Hashable) -> V | None:
        self.uow.require_active()
        unique_key = self.table.unique[index][0]
        for row in self.staged.values():
            if unique_key(row) == value:
                return _detached(row)
        key = self.table.indexes[index].get(value)
        if key is None or key in self.staged:
            return None
        return _detached(self.table.rows[key])

    def rows(self, group: str | None = None, value: Hashable = None) -> Iterator[tuple[int, V]]:
        """The rows this unit sees, oldest first, with their positions.

        With ``group``, only the rows whose value in that index is ``value``.
        """
        self.uow.require_active()
        table, staged = self.table, self.staged
        if group is None:
            keys: Iterable[K] = table.rows
            belongs: Callable[[V], bool] = lambda row: True  # noqa: E731
        else:
            keys = table.members[group].get(value, {})
            group_key = table.groups[group]
            belongs = lambda row: group_key(row) == value  # noqa: E731
        for key in list(keys):
            row = staged.get(key, table.rows[key])
            if belongs(row):
                yield table.position[key], _detached(row)
        for key, row in staged.items():
            if (key not in table.rows or (group is not None and key not in keys)) and belongs(row):
                yield self.positions.get(key, table.position.get(key, 0)), _detached(row)

    def peek(self, group: str, value: Hashable) -> Iterator[V]:
        """The rows this unit sees whose value in index ``group`` is ``value``.

        Not copies, and in no order: for counting, never to hand out or change.
        """
        self.uow.require_active()
        table, staged = self.table, self.staged
        for key in table.members[group].get(value, {}):
            if key not in staged:
                yield table.rows[key]
        group_key = table.groups[group]
        for row in staged.values():
            if group_key(row) == value:
                yield row

    # --- writes --------------------------------------------------------------------

    def add(self, row: V) -> None:
        self.uow.require_active()
        key = self.table.key(row)
        version = _version_of(row)
        if version != 0:
            raise ConcurrencyError(f"{type(row).__name__} {key} is not new (version {version})")
        if key in self.table.rows or (key in self.staged and key not in self.expected):
            raise DuplicateError(f"{type(row).__name__} {key} exists already")
        self._check_unique(key, row)
        self.staged[key] = _detached(row)
        self.positions[key] = self.uow.database.next_position()  # provisional, until commit
        self.originals[key] = row
        self.uow.track(row)

    def save(self, row: V) -> None:
        self.uow.require_active()
        key = self.table.key(row)
        version = _version_of(row)
        if key in self.staged and key not in self.table.rows:
            if version != 0:
                raise ConcurrencyError(f"{type(row).__name__} {key} changed meanwhile")
            self._check_unique(key, row)
            self.staged[key] = _detached(row)
            self.originals[key] = row
            self.uow.track(row)
            return
        current = self.table.versions.get(key)
        if current is None:
            raise ConcurrencyError(f"{type(row).__name__} {key} was never stored")
        if current != version:
            raise ConcurrencyError(
                f"{type(row).__name__} {key} is at version {current}, not {version}"
            )
        self._check_unique(key, row)
        self.staged[key] = _detached(row)
        self.expected[key] = version
        self.originals[key] = row
        self.uow.track(row)

    def _check_unique(self, key: K, row: V) -> None:
        for name, (unique_key, error) in self.table.unique.items():
            value = unique_key(row)
            if value is None:
                continue
            for other_key, other in self.staged.items():
                if other_key != key and unique_key(other) == value:
                    raise error(row)
            owner = self.table.indexes[name].get(value)
            if owner is not None and owner != key:
                staged_owner = self.staged.get(owner)
                if staged_owner is None or unique_key(staged_owner) == value:
                    raise error(row)

    # --- commit --------------------------------------------------------------------

    def validate(self) -> None:
        """Refuse the commit if someone else committed a conflicting change meanwhile."""
        for key, row in self.staged.items():
            if key in self.expected:
                if self.table.versions.get(key) != self.expected[key]:
                    raise ConcurrencyError(f"{type(row).__name__} {key} changed meanwhile")
            elif key in self.table.rows:
                raise DuplicateError(f"{type(row).__name__} {key} exists already")
            self._check_unique(key, row)

    def apply(self) -> None:
        """Write the staged rows; the caller's aggregates take their new versions."""
        for key, row in self.staged.items():
            version = self.expected.get(key, 0) + 1
            if isinstance(row, Aggregate):
                row.version = version
                original = self.originals[key]
                if isinstance(original, Aggregate):
                    original.version = version
            self.table.apply(key, row, version, self.uow.database.next_position())


def _detached(row: V) -> V:
    if isinstance(row, Aggregate):
        return row.detached_copy()
    return row


def _version_of(row: object) -> int:
    return row.version if isinstance(row, Aggregate) else 0


_UNSETTLED = frozenset({PaymentStatus.INITIATED, PaymentStatus.PENDING})


def _live_ticket_seat(ticket: Ticket) -> Hashable | None:
    return (ticket.session_id, ticket.seat_id) if ticket.is_live else None


def _seat_error(ticket: Ticket) -> Exception:
    return SeatAlreadyTicketed(ticket.session_id, ticket.seat_id)


def _duplicate(what: str) -> Callable[[Any], Exception]:
    return lambda row: DuplicateError(f"another row has the same {what}")


class MemoryDatabase:
    """Committed state shared by every ``MemoryUnitOfWork`` made from it.

    ``unit_of_work`` is a ``UnitOfWorkFactory``; ``committed_events`` is the log of
    every event committed, in commit order (the in-memory outbox), and
    ``on_outbox_written`` tells a relay of each commit that stored some.
    """

    def __init__(self) -> None:
        self.users: _Table[UserId, User] = _Table(
            lambda u: u.user_id,
            {"email": (lambda u: u.email, lambda u: EmailTaken(f"{u.email} is registered"))},
        )
        self.venues: _Table[VenueId, Venue] = _Table(lambda v: v.venue_id)
        self.events: _Table[EventId, Event] = _Table(
            lambda e: e.event_id, groups={"organizer": lambda e: e.organizer_id}
        )
        self.sessions: _Table[SessionId, Session] = _Table(
            lambda s: s.session_id, groups={"event": lambda s: s.event_id}
        )
        self.price_categories: _Table[CategoryId, PriceCategory] = _Table(
            lambda c: c.category_id, groups={"event": lambda c: c.event_id}
        )
        self.orders: _Table[OrderId, Order] = _Table(
            lambda o: o.order_id,
            groups={
                "user": lambda o: o.user_id,
                "session": lambda o: o.session_id,
                "open": lambda o: True if o.is_open else None,
                "counted": lambda o: o.session_id if o.counts_against_limits else None,
            },
        )
        self.payments: _Table[PaymentId, Payment] = _Table(
            lambda p: p.payment_id,
            {
                "idempotency_key": (lambda p: p.idempotency_key, _duplicate("idempotency key")),
                "provider_transaction": (
                    lambda p: (
                        (p.provider, p.provider_transaction_id)
                        if p.provider_transaction_id
                        else None
                    ),
                    _duplicate("provider transaction id"),
                ),
            },
            groups={
                "order": lambda p: p.order_id,
                "unsettled": lambda p: True if p.status in _UNSETTLED else None,
            },
        )
        self.tickets: _Table[TicketId, Ticket] = _Table(
            lambda t: t.ticket_id,
            {
                "qr_code": (lambda t: t.qr_code, _duplicate("QR code")),
                "live_seat": (_live_ticket_seat, _seat_error),
            },
            groups={
                "user": lambda t: t.user_id,
                "order": lambda t: t.order_id,
                "live_in_session": lambda t: t.session_id if t.is_live else None,
            },
        )
        self.processed_events: set[tuple[str, UUID]] = set()
        self.committed_events: list[DomainEvent] = []
        self._outbox_listeners: list[Callable[[Sequence[DomainEvent]], None]] = []
        self._positions = itertools.count(1)

    def on_outbox_written(self, listener: Callable[[Sequence[DomainEvent]], None]) -> None:
        """Call ``listener`` with the events of every commit that stored some."""
        self._outbox_listeners.append(listener)

    def outbox_written(self, events: Sequence[DomainEvent]) -> None:
        """Tell the listeners that a commit stored ``events``."""
        for listener in self._outbox_listeners:
            listener(events)

    def next_position(self) -> int:
        """A new insertion position (lists are ordered by it)."""
        return next(self._positions)

    def unit_of_work(self) -> MemoryUnitOfWork:
        """A new unit of work over this database."""
        return MemoryUnitOfWork(self)


# --- cursors ---------------------------------------------------------------------


def _page(rows: Iterator[tuple[int, V]], limit: int, cursor: str | None) -> Page[V]:
    if limit < 1:
        raise ValueError("limit must be at least 1")
    after = decode_cursor(cursor)
    items: list[V] = []
    last = 0
    for position, row in rows:
        if position <= after:
            continue
        if len(items) == limit:
            return Page(tuple(items), encode_cursor(last))
        items.append(row)
        last = position
    return Page(tuple(items), None)


# --- repositories ------------------------------------------------------------------


class _Repository(Generic[K, V]):
    def __init__(self, tx: _TableTx[K, V]) -> None:
        self._tx = tx

    async def add(self, row: V) -> None:
        self._tx.add(row)

    async def get(self, key: K) -> V | None:
        return self._tx.get(key)

    async def save(self, row: V) -> None:
        self._tx.save(row)


class MemoryUserRepository(_Repository[UserId, User]):
    """Users in memory."""

    async def get_by_email(self, email: str) -> User | None:
        """The user with this e-mail (compared normalised); None for what is no address."""
        address = email_to_find(email)
        return None if address is None else self._tx.find_unique("email", address)


class MemoryVenueRepository(_Repository[VenueId, Venue]):
    """Venues in memory."""


class MemoryEventRepository(_Repository[EventId, Event]):
    """Catalog events in memory."""

    async def list(
        self,
        *,
        limit: int = DEFAULT_PAGE_SIZE,
        cursor: str | None = None,
        organizer_id: UserId | None = None,
    ) -> Page[Event]:
        """Events oldest first, optionally one organizer's."""
        if organizer_id is None:
            return _page(self._tx.rows(), limit, cursor)
        return _page(self._tx.rows("organizer", organizer_id), limit, cursor)


class MemorySessionRepository(_Repository[SessionId, Session]):
    """Sessions in memory."""

    async def list_for_event(self, event_id: EventId) -> Sequence[Session]:
        """An event's sessions, earliest start first."""
        sessions = [s for _, s in self._tx.rows("event", event_id)]
        return sorted(sessions, key=lambda s: s.start_time)


class MemoryPriceCategoryRepository:
    """Price categories in memory (immutable once added)."""

    def __init__(self, tx: _TableTx[CategoryId, PriceCategory]) -> None:
        self._tx = tx

    async def add(self, category: PriceCategory) -> None:
        """Store a new category."""
        self._tx.add(category)

    async def get(self, category_id: CategoryId) -> PriceCategory | None:
        """The category with this id, if any."""
        return self._tx.get(category_id)

    async def list_for_event(self, event_id: EventId) -> Sequence[PriceCategory]:
        """An event's categories in the order they were added."""
        return [c for _, c in self._tx.rows("event", event_id)]


class MemoryOrderRepository(_Repository[OrderId, Order]):
    """Orders in memory."""

    async def add(self, order: Order, limits: OrderLimits | None = None) -> None:
        """Store a new order; with ``limits``, checked now and again at the commit.

        The commit checks without awaiting anything, so no other unit commits between
        its count and its write.
        """
        if limits is None:
            self._tx.add(order)
            return
        self._check_limits(order, limits)
        self._tx.add(order)
        order_id = order.order_id

        def still_within() -> None:
            staged = self._tx.staged.get(order_id)
            if staged is not None:
                self._check_limits(staged, limits)

        self._tx.uow.check_on_commit(still_within)

    def _check_limits(self, order: Order, limits: OrderLimits) -> None:
        user_taken = category_taken = 0
        if limits.quota is None:  # the buyer's own orders are few: count only those
            for other in self._tx.peek("user", order.user_id):
                if (
                    other.session_id == order.session_id
                    and other.counts_against_limits
                    and other.order_id != order.order_id
                ):
                    user_taken += len(other.items)
        else:
            for other in self._tx.peek("counted", order.session_id):
                if other.order_id == order.order_id:
                    continue
                if other.user_id == order.user_id:
                    user_taken += len(other.items)
                category_taken += limits.seats_in_quota(other)
        limits.check(order, user_taken=user_taken, category_taken=category_taken)

    async def seats_taken(self, session_id: SessionId, user_id: UserId) -> int:
        """The buyer's seats in live and completed orders of the session."""
        return sum(
            len(o.items)
            for o in self._tx.peek("user", user_id)
            if o.session_id == session_id and o.counts_against_limits
        )

    async def placed_since(self, session_id: SessionId, since: datetime) -> int:
        """How many orders of the session were placed after ``since``."""
        return sum(1 for _, o in self._tx.rows("session", session_id) if o.created_at > since)

    async def list_for_user(
        self, user_id: UserId, *, limit: int = DEFAULT_PAGE_SIZE, cursor: str | None = None
    ) -> Page[Order]:
        """A buyer's orders, oldest first."""
        return _page(self._tx.rows("user", user_id), limit, cursor)

    async def list_due(self, now: datetime, *, limit: int = DEFAULT_PAGE_SIZE) -> Sequence[Order]:
        """Open orders due at ``now``, soonest due first."""
        due = [o for _, o in self._tx.rows("open", True) if o.is_due(now)]
        due.sort(key=lambda o: o.expires_at)
        return due[:limit]


class MemoryPaymentRepository(_Repository[PaymentId, Payment]):
    """Payments in memory."""

    async def get_by_idempotency_key(self, key: str) -> Payment | None:
        """The payment created with this idempotency key, if any."""
        return self._tx.find_unique("idempotency_key", key)

    async def get_by_provider_transaction(
        self, provider: str, provider_transaction_id: str
    ) -> Payment | None:
        """The payment a provider knows by this transaction id, if any."""
        return self._tx.find_unique("provider_transaction", (provider, provider_transaction_id))

    async def list_for_order(self, order_id: OrderId) -> Sequence[Payment]:
        """Every payment attempt of an order, oldest first."""
        return [p for _, p in self._tx.rows("order", order_id)]

    async def list_unsettled(self, *, limit: int = DEFAULT_PAGE_SIZE) -> Sequence[Payment]:
        """Payments still initiated or pending, oldest first."""
        unsettled = sorted(
            (p for _, p in self._tx.rows("unsettled", True)), key=lambda p: p.created_at
        )
        return unsettled[:limit]


class MemoryTicketRepository(_Repository[TicketId, Ticket]):
    """Tickets in memory; at most one live ticket per session and seat."""

    async def get_by_qr_code(self, qr_code: str) -> Ticket | None:
        """The ticket showing this QR code, if any."""
        return self._tx.find_unique("qr_code", qr_code)

    async def list_for_user(
        self, user_id: UserId, *, limit: int = DEFAULT_PAGE_SIZE, cursor: str | None = None
    ) -> Page[Ticket]:
        """A user's tickets, oldest first."""
        return _page(self._tx.rows("user", user_id), limit, cursor)

    async def list_for_order(self, order_id: OrderId) -> Sequence[Ticket]:
        """The tickets of one order."""
        return [t for _, t in self._tx.rows("order", order_id)]

    async def sold_seats(
        self, session_id: SessionId, area_id: AreaId | None = None
    ) -> Mapping[SeatId, OrderId]:
        """Seats with a live ticket in a session (optionally one area), and their orders."""
        return {
            ticket.seat_id: ticket.order_id
            for _, ticket in self._tx.rows("live_in_session", session_id)
            if area_id is None or ticket.area_id == area_id
        }


class MemoryProcessedEventRepository:
    """Which consumer handled which event, in memory."""

    def __init__(self, uow: MemoryUnitOfWork) -> None:
        self._uow = uow
        self.staged: set[tuple[str, UUID]] = set()

    async def add(self, consumer: str, event_id: UUID) -> bool:
        """Record the event as handled; False if it was before."""
        self._uow.require_active()
        key = (consumer, event_id)
        if key in self.staged or key in self._uow.database.processed_events:
            return False
        self.staged.add(key)
        return True

    async def claim(self, consumer: str, event_id: UUID) -> None:
        """Record the event as handled; ``DuplicateError`` (now or at commit) if it was."""
        if not await self.add(consumer, event_id):
            raise DuplicateError(f"{consumer} handled event {event_id} already")

    async def contains(self, consumer: str, event_id: UUID) -> bool:
        """Whether the consumer handled the event."""
        self._uow.require_active()
        key = (consumer, event_id)
        return key in self.staged or key in self._uow.database.processed_events


# --- the unit of work -----------------------------------------------------------------


class MemoryUnitOfWork(RepositoriesOnFirstUse):
    """A ``UnitOfWork`` over a ``MemoryDatabase``. Use once, inside ``async with``."""

    def __init__(self, database: MemoryDatabase) -> None:
        self.database = database
        self._active = False
        self._new_events: list[DomainEvent] = []
        self._pending_events: list[DomainEvent] = []
        self._tables: list[_TableTx[Any, Any]] = []
        """The views of the tables this unit has used (made on first use, then kept)."""
        self._commit_checks: list[Callable[[], None]] = []

    def _reset(self) -> None:
        """Forget what is staged; the tables' views are kept for the unit's next use."""
        for table in self._tables:
            table.reset()
        processed = self.__dict__.get("processed_events")
        if processed is not None and processed.staged:
            processed.staged = set()
        self._pending_events = []
        if self._commit_checks:
            self._commit_checks = []

    def _view(self, table: _Table[K, V]) -> _TableTx[K, V]:
        view = _TableTx(table, self)
        self._tables.append(view)
        return view

    # Repositories are made when first used: a unit that reads one order makes one.

    @functools.cached_property
    def users(self) -> MemoryUserRepository:
        """The users of this transaction."""
        return MemoryUserRepository(self._view(self.database.users))

    @functools.cached_property
    def venues(self) -> MemoryVenueRepository:
        """The venues of this transaction."""
        return MemoryVenueRepository(self._view(self.database.venues))

    @functools.cached_property
    def events(self) -> MemoryEventRepository:
        """The events of this transaction."""
        return MemoryEventRepository(self._view(self.database.events))

    @functools.cached_property
    def sessions(self) -> MemorySessionRepository:
        """The sessions of this transaction."""
        return MemorySessionRepository(self._view(self.database.sessions))

    @functools.cached_property
    def price_categories(self) -> MemoryPriceCategoryRepository:
        """The price categories of this transaction."""
        return MemoryPriceCategoryRepository(self._view(self.database.price_categories))

    @functools.cached_property
    def orders(self) -> MemoryOrderRepository:
        """The orders of this transaction."""
        return MemoryOrderRepository(self._view(self.database.orders))

    @functools.cached_property
    def payments(self) -> MemoryPaymentRepository:
        """The payments of this transaction."""
        return MemoryPaymentRepository(self._view(self.database.payments))

    @functools.cached_property
    def tickets(self) -> MemoryTicketRepository:
        """The tickets of this transaction."""
        return MemoryTicketRepository(self._view(self.database.tickets))

    @functools.cached_property
    def processed_events(self) -> MemoryProcessedEventRepository:
        """Which consumer handled which event, in this transaction."""
        return MemoryProcessedEventRepository(self)

    def require_active(self) -> None:
        """Refuse use outside ``async with``."""
        if not self._active:
            raise NotInTransaction("use the unit of work inside 'async with'")

    def check_on_commit(self, check: Callable[[], None]) -> None:
        """Run ``check`` when this unit commits, after the tables' own checks.

        It raises to refuse the commit; nothing of the unit is stored then.
        """
        self._commit_checks.append(check)

    def track(self, row: object) -> None:
        """An added or saved aggregate's events join this transaction."""
        if isinstance(row, Aggregate):
            self._pending_events.extend(row.collect_events())

    async def __aenter__(self) -> Self:
        if self._active:
            raise NotInTransaction("this unit of work is already in use")
        self._active = True
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.rollback()
        self._active = False
        self._let_go()

    def _let_go(self) -> None:
        """Drop the table views and the repositories, which point back at this unit."""
        self._tables = []
        self._drop_repositories()

    async def commit(self) -> None:
        """Check every staged change against what others committed, then apply them all."""
        self.require_active()
        db = self.database
        try:
            for table in self._tables:
                table.validate()
            for check in self._commit_checks:
                check()
            processed = self.processed_events.staged
            if not processed.isdisjoint(db.processed_events):
                raise DuplicateError("an event was processed meanwhile by the same consumer")
        except Exception:
            await self.rollback()
            raise
        for table in self._tables:
            table.apply()
        db.processed_events.update(processed)
        db.committed_events.extend(self._pending_events)
        if self._pending_events:
            db.outbox_written(self._pending_events)
        self._new_events.extend(self._pending_events)
        self._reset()

    async def rollback(self) -> None:
        """Forget every staged change and its events."""
        self._reset()

    def publish_on_commit(self, *events: DomainEvent) -> None:
        """Store ``events`` with the next commit."""
        self.require_active()
        self._pending_events.extend(events)

    def collect_new_events(self) -> list[DomainEvent]:
        """Events committed by this unit and not collected yet."""
        events, self._new_events = self._new_events, []
        return events
