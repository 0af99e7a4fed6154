"""``PostgresDatabase``: the connection pool, the unit-of-work factory and the outbox hook.

::

    database = PostgresDatabase("postgresql://postgres@127.0.0.1:5432/test")
    await database.migrate()          # once per deployment (``openticket migrate``)
    async with database.unit_of_work() as uow:
        ...
    await database.stop()

The pool opens at the first unit of work (or ``start()``) and closes at ``stop()``; a
stopped database opens a fresh pool when used again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any, LiteralString

import psycopg
import psycopg_pool
import structlog
from psycopg.rows import namedtuple_row

from openticket.adapters.postgres.errors import (
    DRIVER_ERRORS,
    DatabaseUnreachable,
    connect_error,
    connection_kwargs,
    redacted,
    translate,
)
from openticket.adapters.postgres.migrator import MigrationReport, migrate, pending_migrations
from openticket.adapters.postgres.unit_of_work import Connection, Params, PostgresUnitOfWork
from openticket.adapters.serialization import EventCodec
from openticket.domain.shared import DomainEvent

_log = structlog.get_logger("openticket.postgres")

OutboxListener = Callable[[Sequence[DomainEvent]], None]


class PostgresDatabase:
    """OpenTicket's tables in one PostgreSQL database (or one schema of it)."""

    def __init__(
        self,
        conninfo: str,
        *,
        schema: str | None = None,
        min_connections: int = 2,
        max_connections: int = 20,
        connect_timeout: float = 10.0,
        codec: EventCodec | None = None,
    ) -> None:
        self.conninfo = conninfo
        self.schema = schema
        self.codec = codec or EventCodec()
        self._kwargs: dict[str, Any] = {**connection_kwargs(schema), "autocommit": True}
        self._min = min_connections
        self._max = max_connections
        self._timeout = connect_timeout
        self._pool: psycopg_pool.AsyncConnectionPool[Connection] | None = None
        self._opening = asyncio.Lock()
        self._listeners: list[OutboxListener] = []

    def __repr__(self) -> str:
        schema = f", schema={self.schema}" if self.schema else ""
        return f"PostgresDatabase({redacted(self.conninfo)}{schema})"

    @property
    def where(self) -> str:
        """Host, port and database, for people (no password)."""
        return redacted(self.conninfo) + (f" (schema {self.schema})" if self.schema else "")

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the pool; ``DatabaseUnreachable`` if the server does not answer in time."""
        await self._open()

    async def stop(self) -> None:
        """Close the pool (units still running finish first)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    async def _open(self) -> psycopg_pool.AsyncConnectionPool[Connection]:
        if self._pool is not None:
            return self._pool
        async with self._opening:
            if self._pool is None:
                pool: psycopg_pool.AsyncConnectionPool[Connection]
                pool = psycopg_pool.AsyncConnectionPool(
                    self.conninfo,
                    kwargs=self._kwargs,
                    min_size=self._min,
                    max_size=self._max,
                    timeout=self._timeout,
                    open=False,
                    name="openticket",
                )
                try:
                    await pool.open(wait=True, timeout=self._timeout)
                except (psycopg_pool.PoolTimeout, psycopg.OperationalError) as e:
                    await pool.close()
                    raise await self._why_unreachable(e) from e
                self._pool = pool
        return self._pool

    async def _why_unreachable(self, error: BaseException) -> DatabaseUnreachable:
        """The pool only says it timed out; one direct attempt tells why."""
        try:
            conn = await psycopg.AsyncConnection.connect(
                self.conninfo, connect_timeout=max(1, int(self._timeout)), **self._kwargs
            )
        except psycopg.Error as e:
            return connect_error(self.conninfo, e)
        await conn.close()
        return connect_error(self.conninfo, error)

    # --- connections (for the unit of work and the relay) -------------------------------------

    async def take(self) -> Connection:
        """A connection from the pool, in autocommit mode; give it back with ``give_back``."""
        try:
            pool = await self._open()
        except DatabaseUnreachable as e:
            # where the database is, and why it failed, is for the operator: a request's
            # answer says only that it is down (``start`` keeps the full message)
            _log.warning("database_unreachable", error=str(e))
            raise DatabaseUnreachable("the database cannot be reached") from e
        try:
            return await pool.getconn()
        except (psycopg_pool.PoolTimeout, psycopg.Error) as e:
            raise translate(e) from e

    async def give_back(self, conn: Connection) -> None:
        """Return a connection taken with ``take``."""
        pool = self._pool
        if pool is None:
            await conn.close()
        else:
            await pool.putconn(conn)

    async def discard(self, conn: Connection) -> None:
        """Close a broken connection instead of giving it back."""
        await conn.close()
        if self._pool is not None:
            await self._pool.putconn(conn)  # the pool sees it closed and replaces it

    async def lost(self, conn: Connection) -> None:
        """A connection died under us: drop it and every idle one that died with it."""
        await self.discard(conn)
        if self._pool is not None:
            await self._pool.check()  # the server restarted, say: all of them went

    async def query(self, query: LiteralString, params: Params = ()) -> list[Any]:
        """The rows of one statement outside any unit of work (reports, checks, tests).

        Rows are named tuples (psycopg's ``namedtuple_row``): read columns by name.
        """
        conn = await self.take()
        try:
            cursor = await conn.cursor(row_factory=namedtuple_row).execute(query, params)
            return await cursor.fetchall()
        except DRIVER_ERRORS as e:
            raise translate(e) from e
        finally:
            await self.give_back(conn)

    def unit_of_work(self) -> PostgresUnitOfWork:
        """A new unit of work (the ``UnitOfWorkFactory``)."""
        return PostgresUnitOfWork(self)

    # --- schema and health -------------------------------------------------------------------

    async def migrate(self) -> MigrationReport:
        """Apply the shipped migrations this database lacks."""
        return await migrate(self.conninfo, schema=self.schema)

    async def pending_migrations(self) -> int:
        """How many shipped migrations this database lacks."""
        return len(await pending_migrations(self.conninfo, schema=self.schema))

    async def ping(self) -> bool:
        """Whether the server answers a query now (for readiness checks)."""
        try:
            conn = await asyncio.wait_for(self.take(), self._timeout)
        except (TimeoutError, DatabaseUnreachable, psycopg.Error):
            return False
        try:
            await conn.execute("SELECT 1")
        except psycopg.Error:
            await self.discard(conn)
            return False
        await self.give_back(conn)
        return True

    # --- the outbox ---------------------------------------------------------------------------

    def on_outbox_written(self, listener: OutboxListener) -> None:
        """Call ``listener`` with the events of every commit that stored some."""
        self._listeners.append(listener)

    def outbox_written(self, events: Sequence[DomainEvent]) -> None:
        """Tell the listeners that a commit stored ``events`` in the outbox."""
        for listener in self._listeners:
            listener(events)
