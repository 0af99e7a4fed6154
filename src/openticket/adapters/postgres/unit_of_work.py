"""The PostgreSQL unit of work: one transaction on one pooled connection.

The connection is taken from the pool at the first statement and given back when the
block ends. Reads before the first write run outside a transaction (they need no
snapshot: every write is checked by version or unique key when it happens); the first
write begins the transaction, ``commit`` stores the unit's events in the outbox and
commits. Versions move on in the caller's aggregates only when the commit succeeded.

Writes whose only way to fail is an error of the server (:meth:`PostgresUnitOfWork.defer`:
inserts that a unique key refuses, versioned updates written to fail when they match no
row) do not travel alone: they go with the unit's next statement, or with the commit, in
one round trip. A purchase's order update, payment insert and outbox rows thus cost one
round trip with their ``COMMIT`` instead of one each; on this machine a round trip to
PostgreSQL costs more CPU than the statement (``docs/performance.md``).

How several statements travel together
    As one simple query: each statement's values are written in on the client
    (:func:`~openticket.adapters.postgres.literals.bind` for the common types, psycopg's
    ``ClientCursor.mogrify`` for the rest) and the statements joined with ``;``. The
    server runs them in order and stops at the first error; the results of the last one
    are the answer. psycopg's pipeline mode did the same in one round trip
    but cost its client two to three times the CPU (a generator step per statement and
    per result, ``docs/performance.md``). A statement alone still goes with its values
    apart (the extended protocol, prepared after a few uses).

Rows
    A read's rows are named tuples (psycopg's ``namedtuple_row``): repositories read
    them by column name. Of psycopg's row factories that name columns it costs the
    least: making a row of an order took 0.5 µs, against 1.3 µs for ``dict_row`` (a
    dict a row) and 3.2 µs for ``class_row`` (a call with keywords), and an ``Order``
    built from it about 2 % more than from a plain tuple. Each result costs about
    2.4 µs more (its names looked up), so only the result read is made so.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, Final, LiteralString, NamedTuple, Protocol, Self, TypeAlias

import attrs
import psycopg
from psycopg import errors as pg
from psycopg import sql
from psycopg.rows import AsyncRowFactory, TupleRow, namedtuple_row
from psycopg.types.json import Jsonb

from openticket.adapters import tracing
from openticket.adapters.postgres.errors import DRIVER_ERRORS, limit_refusal, translate
from openticket.adapters.postgres.executor import Row
from openticket.adapters.postgres.literals import Mogrify, bind, writes_literals
from openticket.adapters.postgres.repositories import (
    PostgresEventRepository,
    PostgresOrderRepository,
    PostgresPaymentRepository,
    PostgresPriceCategoryRepository,
    PostgresProcessedEventRepository,
    PostgresSessionRepository,
    PostgresTicketRepository,
    PostgresUserRepository,
    PostgresVenueRepository,
)
from openticket.adapters.serialization import EventCodec
from openticket.adapters.units import RepositoriesOnFirstUse
from openticket.application.correlation import correlation_id
from openticket.application.ports.errors import ConcurrencyError, NotInTransaction, PortError
from openticket.domain.shared import Aggregate, DomainError, DomainEvent

Params = Sequence[Any] | Mapping[str, Any]
"""A statement's values: by name (``%(name)s``, what the repositories use) or position."""

Connection: TypeAlias = psycopg.AsyncConnection[TupleRow]

_CHANGED_NOTHING: Final = pg.DivisionByZero
"""What a deferred versioned update raises when it matched no row
(:func:`openticket.adapters.postgres.repositories.shared.versioned`)."""


_OUTBOX_INSERT: LiteralString = (
    "INSERT INTO outbox (event_id, event_type, payload, occurred_at, correlation_id) VALUES"
    " (%(event_id)s, %(event_type)s, %(payload)s, %(occurred_at)s, %(correlation_id)s)"
)


class Connections(Protocol):
    """What a unit of work needs of its database (``PostgresDatabase``)."""

    @property
    def codec(self) -> EventCodec:
        """How events are written into the outbox."""
        ...

    async def take(self) -> Connection:
        """A pooled connection in autocommit mode."""
        ...

    async def give_back(self, conn: Connection) -> None:
        """Return a connection taken with ``take``."""
        ...

    async def discard(self, conn: Connection) -> None:
        """Close a broken connection instead of giving it back."""
        ...

    async def lost(self, conn: Connection) -> None:
        """A connection died under us: drop it and every idle one that died with it."""
        ...

    def outbox_written(self, events: Sequence[DomainEvent]) -> None:
        """Tell whoever listens that a commit stored ``events`` in the outbox."""
        ...


@attrs.define
class _Written:
    """An aggregate row this unit wrote: the version it was loaded at and stores now."""

    loaded: int
    stored: int
    objects: list[Aggregate]


async def _together(
    conn: Connection,
    statements: Sequence[tuple[LiteralString, Params | None]],
    *,
    rows: AsyncRowFactory[Any] | None = None,
    begin: bool = False,
    commit: bool = False,
) -> psycopg.AsyncClientCursor[Any]:
    """Run ``statements`` (after ``BEGIN``, before ``COMMIT``) in one round trip.

    The cursor answers with the last statement's results, made by ``rows`` (tuples
    without). The first statement that fails raises, and none after it runs (a ``COMMIT``
    among them neither).
    """
    cursor: psycopg.AsyncClientCursor[Any] = psycopg.AsyncClientCursor(conn)
    mogrify = Mogrify(conn)
    if writes_literals(conn):
        parts = [bind(query, params, mogrify) for query, params in statements]
    else:
        parts = [mogrify(query, params) for query, params in statements]
    if begin:
        parts.insert(0, "BEGIN")
    if commit:
        parts.append("COMMIT")
    await cursor.execute(sql.SQL("; ".join(parts)))
    while cursor.nextset():
        pass
    if rows is not None:
        # a row factory works once per result: the results passed over stay plain tuples
        cursor.row_factory = rows
    return cursor


class PostgresUnitOfWork(RepositoriesOnFirstUse):
    """A ``UnitOfWork`` over a ``PostgresDatabase``. Use once, inside ``async with``."""

    def __init__(self, database: Connections) -> None:
        self.database = database
        self._conn: Connection | None = None
        self._active = False
        self._in_transaction = False
        self._failed: PortError | DomainError | None = None
        self._written: dict[tuple[str, object], _Written] = {}
        self._pending_events: list[DomainEvent] = []
        self._new_events: list[DomainEvent] = []
        self._deferred: list[tuple[LiteralString, Params]] = []
        """Writes not sent yet: they go first with the next statement (see the module doc)."""
        self._span: tracing.Span | None = None
        """While the process traces: the unit's span, from ``async with`` to its end."""

    # Repositories are made when first used (see RepositoriesOnFirstUse).

    @functools.cached_property
    def users(self) -> PostgresUserRepository:
        """The users of this transaction."""
        return PostgresUserRepository(self)

    @functools.cached_property
    def venues(self) -> PostgresVenueRepository:
        """The venues of this transaction."""
        return PostgresVenueRepository(self)

    @functools.cached_property
    def events(self) -> PostgresEventRepository:
        """The events of this transaction."""
        return PostgresEventRepository(self)

    @functools.cached_property
    def sessions(self) -> PostgresSessionRepository:
        """The sessions of this transaction."""
        return PostgresSessionRepository(self)

    @functools.cached_property
    def price_categories(self) -> PostgresPriceCategoryRepository:
        """The price categories of this transaction."""
        return PostgresPriceCategoryRepository(self)

    @functools.cached_property
    def orders(self) -> PostgresOrderRepository:
        """The orders of this transaction."""
        return PostgresOrderRepository(self)

    @functools.cached_property
    def payments(self) -> PostgresPaymentRepository:
        """The payments of this transaction."""
        return PostgresPaymentRepository(self)

    @functools.cached_property
    def tickets(self) -> PostgresTicketRepository:
        """The tickets of this transaction."""
        return PostgresTicketRepository(self)

    @functools.cached_property
    def processed_events(self) -> PostgresProcessedEventRepository:
        """Which consumer handled which event, in this transaction."""
        return PostgresProcessedEventRepository(self)

    # --- lifecycle ---------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._active:
            raise NotInTransaction("this unit of work is already in use")
        self._active = True
        if tracing.enabled():
            self._span = tracing.start(
                "postgres transaction",
                tracing.SpanKind.CLIENT,
                attributes={"db.system.name": "postgresql"},
            )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await self.rollback()
        finally:
            self._active = False
            self._drop_repositories()
            conn, self._conn = self._conn, None
            if conn is not None:
                await self.database.give_back(conn)
            span, self._span = self._span, None
            if span is not None:
                tracing.end_with(span, exc)

    def require_active(self) -> None:
        """Refuse use outside ``async with``."""
        if not self._active:
            raise NotInTransaction("use the unit of work inside 'async with'")

    # --- statements ----------------------------------------------------------------------

    async def _connection(self) -> Connection:
        self.require_active()
        if self._failed is not None:
            raise self._failed
        if self._conn is None:
            self._conn = await self.database.take()
        return self._conn

    async def _run(
        self, query: LiteralString, params: Params | None, *, write: bool
    ) -> psycopg.AsyncCursor[NamedTuple]:
        """Run one statement; a lost connection is replaced once when no transaction ran.

        A pooled connection may have died since its last use (a database restart, an
        idle timeout). Outside a transaction nothing of the unit is on it, so the
        statement runs again on a fresh connection instead of failing the request.
        """
        for attempt in (1, 2):
            conn = await self._connection()
            fresh = not self._in_transaction
            deferred = self._deferred
            try:
                if deferred or (write and fresh):
                    # BEGIN, the writes not sent yet and this one travel in one round trip
                    self._in_transaction = True
                    statements = [*deferred, (query, params)]
                    cursor = await _together(conn, statements, rows=namedtuple_row, begin=fresh)
                    self._deferred = []
                    return cursor
                return await conn.cursor(row_factory=namedtuple_row).execute(query, params)
            except DRIVER_ERRORS as e:
                if fresh and attempt == 1 and (conn.broken or conn.closed):
                    self._in_transaction = False
                    self._conn = None
                    await self.database.lost(conn)
                    continue
                raise self._failing(e) from e
        raise AssertionError("unreachable")  # pragma: no cover

    def _failing(self, error: BaseException) -> PortError | DomainError:
        """The error of a statement that failed; in a transaction, the unit fails too.

        A port error, or the domain error of an order its limits refused.
        """
        failed: PortError | DomainError
        if isinstance(error, _CHANGED_NOTHING):
            failed = ConcurrencyError("a record changed meanwhile or was never stored")
        else:
            failed = limit_refusal(error) or translate(error)
        if self._in_transaction:
            self._failed = failed  # the transaction is aborted: only rollback helps
            self._deferred = []
        return failed

    def defer(self, query: LiteralString, params: Params) -> None:
        """Queue a write for the unit's next statement or its commit, whichever comes first.

        Only for writes that need no answer and fail, if at all, by an error of the
        server (a unique key; :func:`versioned`). The error is raised by the statement
        or the commit they travel with.
        """
        self.require_active()
        if self._failed is not None:
            raise self._failed
        self._deferred.append((query, params))

    async def fetch_one(self, query: LiteralString, params: Params | None = None) -> Row | None:
        """The first row of a read."""
        cursor = await self._run(query, params, write=False)
        return await cursor.fetchone()

    async def fetch_all(self, query: LiteralString, params: Params | None = None) -> list[Row]:
        """Every row of a read."""
        cursor = await self._run(query, params, write=False)
        return await cursor.fetchall()

    async def write(self, query: LiteralString, params: Params | None = None) -> int:
        """Run a write inside this unit's transaction; the number of rows it touched."""
        cursor = await self._run(query, params, write=True)
        return cursor.rowcount

    async def write_returning(
        self, query: LiteralString, params: Params | None = None
    ) -> Row | None:
        """Run a write inside this unit's transaction; the first row it returned."""
        cursor = await self._run(query, params, write=True)
        return await cursor.fetchone()

    async def write_many(
        self, query: LiteralString, params: Sequence[Params], *, then_commit: bool = False
    ) -> None:
        """Run one write for each set of parameters, all in one round trip.

        ``then_commit`` sends the ``COMMIT`` in the same round trip.
        """
        for attempt in (1, 2):
            conn = await self._connection()
            fresh = not self._in_transaction
            try:
                statements = [*self._deferred, *((query, values) for values in params)]
                if statements or fresh or then_commit:
                    await _together(conn, statements, begin=fresh, commit=then_commit)
            except DRIVER_ERRORS as e:
                if fresh and attempt == 1 and (conn.broken or conn.closed):
                    self._conn = None  # nothing of the unit was on it: again on a fresh one
                    await self.database.lost(conn)
                    continue
                self._in_transaction = True
                raise self._failing(e) from e
            self._deferred = []
            self._in_transaction = not then_commit
            return

    # --- versions ---------------------------------------------------------------------------

    def version_to_add(self, table: str, key: object, aggregate: Aggregate) -> int:
        """The version a new row is stored at; refuses an aggregate that is not new."""
        self.require_active()
        if aggregate.version != 0:
            raise ConcurrencyError(
                f"{type(aggregate).__name__} {key} is not new (version {aggregate.version})"
            )
        return 1

    def versions_to_save(self, table: str, key: object, aggregate: Aggregate) -> tuple[int, int]:
        """``(expected, new)``: the stored version the update must find, and the one it sets."""
        self.require_active()
        written = self._written.get((table, key))
        if written is None:
            return aggregate.version, aggregate.version + 1
        if aggregate.version != written.loaded:
            raise ConcurrencyError(f"{type(aggregate).__name__} {key} changed meanwhile")
        return written.stored, written.stored

    def wrote(
        self, table: str, key: object, aggregate: Aggregate, loaded: int, stored: int
    ) -> None:
        """Record a written aggregate: its events join the commit, its version follows it."""
        written = self._written.get((table, key))
        if written is None:
            self._written[(table, key)] = _Written(loaded, stored, [aggregate])
        else:
            written.objects.append(aggregate)
        self._pending_events.extend(aggregate.collect_events())

    # --- the unit of work port ---------------------------------------------------------------

    async def commit(self) -> None:
        """Store the unit's events in the outbox and commit; versions move on after."""
        self.require_active()
        if self._failed is not None:
            error = self._failed
            await self.rollback()
            raise error
        events = self._pending_events
        try:
            if events:
                codec = self.database.codec
                correlation = correlation_id.get()
                rows = []
                for event in events:
                    event_type, payload = codec.encode(event)
                    rows.append(
                        {
                            "event_id": event.event_id,
                            "event_type": event_type,
                            "payload": Jsonb(payload),
                            "occurred_at": event.occurred_at,
                            "correlation_id": correlation,
                        }
                    )
                await self.write_many(_OUTBOX_INSERT, rows, then_commit=True)
            elif self._deferred:
                await self.write_many(_OUTBOX_INSERT, [], then_commit=True)
            elif self._in_transaction:
                conn = await self._connection()
                try:
                    await conn.execute("COMMIT")
                except psycopg.Error as e:
                    raise translate(e) from e
                self._in_transaction = False
        except BaseException:
            await self.rollback()
            raise
        for written in self._written.values():
            for aggregate in written.objects:
                aggregate.version = written.stored
        self._written = {}
        self._new_events.extend(events)
        self._pending_events = []
        if events:
            self.database.outbox_written(events)

    async def rollback(self) -> None:
        """Forget every change since the last commit, and its events."""
        self._written = {}
        self._pending_events = []
        self._deferred = []
        self._failed = None
        if self._in_transaction and self._conn is not None:
            self._in_transaction = False
            try:
                await self._conn.execute("ROLLBACK")
            except psycopg.Error:
                # the connection broke: the server rolled the transaction back itself
                await self.database.discard(self._conn)
                self._conn = None

    def publish_on_commit(self, *events: DomainEvent) -> None:
        """Store ``events`` with the next commit."""
        self.require_active()
        self._pending_events.extend(events)

    def collect_new_events(self) -> list[DomainEvent]:
        """Events committed by this unit and not collected yet."""
        events, self._new_events = self._new_events, []
        return events
