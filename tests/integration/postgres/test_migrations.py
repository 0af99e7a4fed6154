"""Migrations against a real PostgreSQL: what they create, re-runs, tampering, races, no server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from openticket.adapters.postgres import (
    DatabaseUnreachable,
    Migration,
    MigrationError,
    PostgresDatabase,
    migrate,
    pending_migrations,
    shipped_migrations,
)
from openticket.domain.shared import AreaId, OrderId, SeatId, SessionId, TicketId

pytestmark = pytest.mark.postgres

UNREACHABLE = "postgresql://postgres@127.0.0.1:1/test"
"""Nothing listens on port 1: every connection attempt is refused at once."""

ISSUE_TABLES = frozenset(
    {
        "users",
        "venues",
        "seat_maps",
        "events",
        "sessions",
        "price_categories",
        "orders",
        "order_items",
        "tickets",
        "payments",
        "outbox",
        "processed_events",
        "schema_migrations",
    }
)

AGGREGATE_TABLES = ("users", "venues", "events", "sessions", "orders", "payments", "tickets")
"""Tables of aggregates changed after they are added: each needs a ``version``."""

Connection = psycopg.AsyncConnection[tuple[object, ...]]

WAIT_LIMIT = timedelta(seconds=10)
"""How long a test waits for racing connections to block before it fails instead of hanging."""


@asynccontextmanager
async def connection(database_url: str) -> AsyncIterator[Connection]:
    """A plain autocommit connection, for looking at the catalog."""
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        yield conn


async def recorded_versions(database_url: str, schema: str) -> list[int]:
    """Every version in the schema's ``schema_migrations`` (repeats included), in order."""
    async with connection(database_url) as conn:
        cursor = await conn.execute(
            sql.SQL("SELECT version FROM {}.schema_migrations ORDER BY version").format(
                sql.Identifier(schema)
            )
        )
        return [int(str(row[0])) for row in await cursor.fetchall()]


def versions(migrations: tuple[Migration, ...] | list[Migration]) -> list[int]:
    """The versions of some migrations, in the order given."""
    return [m.version for m in migrations]


def assert_readable(error: BaseException, where: str) -> None:
    """The message names the server and is one line of prose, not a traceback."""
    message = str(error)
    assert where in message, message
    assert "Traceback" not in message, message
    assert 'File "' not in message, message
    assert "\n" not in message, message


# --- applying -------------------------------------------------------------------------------


async def test_a_fresh_schema_gets_every_shipped_migration_in_order_and_once(
    database_url: str, schema_name: str
) -> None:
    """The first run applies every shipped migration in version order; the second none."""
    shipped = shipped_migrations()
    assert shipped, "the package ships no migration"
    assert versions(shipped) == sorted({m.version for m in shipped})
    before = await pending_migrations(database_url, schema=schema_name)
    assert versions(before) == versions(shipped)

    announced: list[Migration] = []
    first = await migrate(database_url, schema=schema_name, progress=announced.append)

    assert first.applied == shipped
    assert first.already_applied == 0
    assert announced == list(shipped)
    assert await recorded_versions(database_url, schema_name) == versions(shipped)

    again: list[Migration] = []
    second = await migrate(database_url, schema=schema_name, progress=again.append)

    assert second.applied == ()
    assert second.already_applied == len(shipped)
    assert again == []
    assert await pending_migrations(database_url, schema=schema_name) == ()
    assert await recorded_versions(database_url, schema_name) == versions(shipped)


async def test_the_database_reports_no_pending_migration_once_migrated(
    pg_database: PostgresDatabase,
) -> None:
    """``PostgresDatabase.pending_migrations`` is 0 and ``migrate`` then applies nothing."""
    assert await pg_database.pending_migrations() == 0
    report = await pg_database.migrate()
    assert report.applied == ()
    assert report.already_applied == len(shipped_migrations())


async def test_the_recorded_checksums_are_those_of_the_shipped_files(
    database_url: str, schema: str
) -> None:
    """``schema_migrations`` keeps each migration's name and the SHA-256 of its file."""
    async with connection(database_url) as conn:
        cursor = await conn.execute(
            sql.SQL(
                "SELECT version, name, checksum FROM {}.schema_migrations ORDER BY version"
            ).format(sql.Identifier(schema))
        )
        rows = await cursor.fetchall()
    assert rows == [(m.version, m.name, m.checksum) for m in shipped_migrations()]


# --- what the schema holds ------------------------------------------------------------------


async def test_tickets_are_unique_on_exactly_session_and_seat(
    database_url: str, schema: str
) -> None:
    """``tickets`` has a UNIQUE constraint whose columns are session_id and seat_id, no more."""
    async with connection(database_url) as conn:
        cursor = await conn.execute(
            "SELECT c.conname, array_agg(a.attname::text ORDER BY k.ord)"
            " FROM pg_constraint c"
            " JOIN pg_class t ON t.oid = c.conrelid"
            " JOIN pg_namespace n ON n.oid = t.relnamespace"
            " CROSS JOIN LATERAL unnest(c.conkey) WITH ORDINALITY AS k(attnum, ord)"
            " JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum"
            " WHERE n.nspname = %s AND t.relname = 'tickets' AND c.contype = 'u'"
            " GROUP BY c.conname",
            (schema,),
        )
        unique = {
            str(name): [str(c) for c in columns]  # type: ignore[attr-defined]
            for name, columns in await cursor.fetchall()
        }
    seat_keys = [cols for cols in unique.values() if sorted(cols) == ["seat_id", "session_id"]]
    assert seat_keys == [["session_id", "seat_id"]], unique


async def test_every_table_the_issue_names_exists(database_url: str, schema: str) -> None:
    """users … schema_migrations are all base tables of the migrated schema."""
    async with connection(database_url) as conn:
        cursor = await conn.execute(
            "SELECT table_name FROM information_schema.tables"
            " WHERE table_schema = %s AND table_type = 'BASE TABLE'",
            (schema,),
        )
        tables = {str(row[0]) for row in await cursor.fetchall()}
    assert tables >= ISSUE_TABLES, f"missing: {sorted(ISSUE_TABLES - tables)}"


async def test_orders_keep_their_hold_and_fencing_token_and_aggregates_a_version(
    database_url: str, schema: str
) -> None:
    """orders.hold_id (uuid) and fencing_token (bigint) are required; aggregates have version."""
    async with connection(database_url) as conn:
        cursor = await conn.execute(
            "SELECT table_name, column_name, data_type, is_nullable"
            " FROM information_schema.columns WHERE table_schema = %s",
            (schema,),
        )
        columns = {
            (str(table), str(column)): (str(kind), nullable == "YES")
            for table, column, kind, nullable in await cursor.fetchall()
        }
    assert columns.get(("orders", "hold_id")) == ("uuid", False)
    assert columns.get(("orders", "fencing_token")) == ("bigint", False)
    for table in AGGREGATE_TABLES:
        assert columns.get((table, "version")) == ("integer", False), table


async def test_orders_and_tickets_stored_before_areas_were_kept_get_the_area_of_their_seats(
    database_url: str, schema_name: str
) -> None:
    """0006 fills ``area_id`` of earlier orders, live and voided tickets from their seats."""
    before_areas = [m for m in shipped_migrations() if m.version < 6]
    await migrate(database_url, schema=schema_name, migrations=before_areas)
    session, order, live, voided = uuid4(), uuid4(), uuid4(), uuid4()
    at = datetime(2026, 12, 1, tzinfo=UTC)
    async with connection(database_url) as conn:
        await conn.execute(
            sql.SQL("SET search_path TO {}").format(sql.Identifier(schema_name))
        )
        await conn.execute(
            "INSERT INTO orders (order_id, user_id, session_id, hold_id, fencing_token,"
            " total_amount, currency, status, created_at, expires_at, version)"
            " VALUES (%s, %s, %s, %s, 1, 2400, 'TWD', 'completed', %s, %s, 2)",
            (order, uuid4(), session, uuid4(), at, at + timedelta(minutes=2)),
        )
        await conn.execute(
            "INSERT INTO order_items (order_id, position, seat_id, price, currency)"
            " VALUES (%s, 1, 'VIP2-1-1', 1200, 'TWD'), (%s, 2, 'VIP2-1-2', 1200, 'TWD')",
            (order, order),
        )
        for ticket, seat, table, status in (
            (live, "VIP2-1-1", "tickets", "issued"),
            (voided, "VIP2-1-2", "voided_tickets", "voided"),
        ):
            await conn.execute(
                sql.SQL(
                    "INSERT INTO {} (ticket_id, order_id, session_id, seat_id, user_id, price,"
                    " currency, qr_code, status, issued_at, version, seq)"
                    " VALUES (%s, %s, %s, %s, %s, 1200, 'TWD', %s, %s, %s, 1,"
                    " nextval('tickets_seq_seq'))"
                ).format(sql.Identifier(table)),
                (ticket, order, session, seat, uuid4(), f"qr-{ticket}", status, at),
            )

    report = await migrate(database_url, schema=schema_name)

    assert [m.version for m in report.applied] == [
        m.version for m in shipped_migrations() if m.version >= 6
    ]
    database = PostgresDatabase(database_url, schema=schema_name, min_connections=1)
    try:
        await database.start()
        async with database.unit_of_work() as uow:
            stored = await uow.orders.get(OrderId(order))
            sold = await uow.tickets.sold_seats(SessionId(session), AreaId("VIP2"))
            elsewhere = await uow.tickets.sold_seats(SessionId(session), AreaId("VIP"))
            gone = await uow.tickets.get(TicketId(voided))
    finally:
        await database.stop()
    assert stored is not None
    assert stored.area_id == "VIP2"
    assert sold == {SeatId("VIP2-1-1"): OrderId(order)}
    assert elsewhere == {}
    assert gone is not None
    assert gone.area_id == "VIP2"


# --- refusing a database that does not fit ----------------------------------------------------


async def test_a_recorded_migration_whose_checksum_differs_is_refused(
    database_url: str, schema: str
) -> None:
    """Someone edited an applied migration: ``migrate`` refuses instead of going on."""
    first = shipped_migrations()[0]
    async with connection(database_url) as conn:
        await conn.execute(
            sql.SQL("UPDATE {}.schema_migrations SET checksum = %s WHERE version = %s").format(
                sql.Identifier(schema)
            ),
            ("0" * 64, first.version),
        )

    with pytest.raises(MigrationError) as raised:
        await migrate(database_url, schema=schema)

    assert f"{first.version:04d}_{first.name}" in str(raised.value)
    assert await recorded_versions(database_url, schema) == versions(shipped_migrations())


async def test_a_database_migrated_by_a_newer_release_is_refused(
    database_url: str, schema: str
) -> None:
    """A recorded version this release does not ship means a newer release migrated it."""
    unknown = max(m.version for m in shipped_migrations()) + 1
    async with connection(database_url) as conn:
        await conn.execute(
            sql.SQL(
                "INSERT INTO {}.schema_migrations (version, name, checksum) VALUES (%s, %s, %s)"
            ).format(sql.Identifier(schema)),
            (unknown, "from_the_future", "0" * 64),
        )

    with pytest.raises(MigrationError) as raised:
        await migrate(database_url, schema=schema)

    assert str(unknown) in str(raised.value)


# --- racing processes -------------------------------------------------------------------------


async def test_two_migrations_racing_on_an_empty_schema_apply_each_migration_once(
    database_url: str, schema_name: str
) -> None:
    """Two processes migrating one schema at once: both succeed, each migration runs once."""
    async with connection(database_url) as conn:
        await conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema_name)))

    reports = await asyncio.gather(
        migrate(database_url, schema=schema_name), migrate(database_url, schema=schema_name)
    )

    applied = sorted(versions(list(reports[0].applied) + list(reports[1].applied)))
    assert applied == versions(shipped_migrations())
    assert await recorded_versions(database_url, schema_name) == versions(shipped_migrations())
    assert await pending_migrations(database_url, schema=schema_name) == ()


async def wait_until_blocked(
    conn: Connection,
    application_name: str,
    count: int,
    racers: list[asyncio.Task[object]],
) -> None:
    """Wait until ``count`` connections named ``application_name`` wait for a lock.

    Stops waiting early when a racer ended (it did not block at all).
    """
    async with asyncio.timeout(WAIT_LIMIT.total_seconds()):
        while not any(task.done() for task in racers):
            cursor = await conn.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE application_name = %s AND wait_event_type = 'Lock'",
                (application_name,),
            )
            row = await cursor.fetchone()
            if row is not None and int(str(row[0])) >= count:
                return
            await asyncio.sleep(0.01)


async def test_two_migrations_racing_to_create_a_new_schema_both_succeed(
    database_url: str, schema_name: str
) -> None:
    """Two processes starting together on a schema that does not exist yet both succeed.

    A third connection creates the schema without committing, so that both ``migrate``
    calls reach the schema's creation before either can finish it; it then rolls back
    and lets them race on. Each migration is recorded exactly once.
    """
    application_name = f"race_{schema_name}"
    conninfo = make_conninfo(database_url, application_name=application_name)
    async with (
        await psycopg.AsyncConnection.connect(database_url) as blocker,
        connection(database_url) as watcher,
    ):
        await blocker.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema_name)))
        racers: list[asyncio.Task[object]] = [
            asyncio.create_task(migrate(conninfo, schema=schema_name)) for _ in range(2)
        ]
        try:
            await wait_until_blocked(watcher, application_name, 2, racers)
        finally:
            await blocker.rollback()
        outcomes = await asyncio.gather(*racers, return_exceptions=True)

    failures = [o for o in outcomes if isinstance(o, BaseException)]
    assert failures == [], failures
    assert await recorded_versions(database_url, schema_name) == versions(shipped_migrations())


# --- no server --------------------------------------------------------------------------------


async def test_migrate_without_a_server_raises_database_unreachable() -> None:
    """``migrate`` names the address it could not reach, in one line without a traceback."""
    with pytest.raises(DatabaseUnreachable) as raised:
        await migrate(UNREACHABLE)
    assert_readable(raised.value, "127.0.0.1:1")


async def test_pending_migrations_without_a_server_raises_database_unreachable() -> None:
    """Asking what is pending of a server that does not answer names its address."""
    with pytest.raises(DatabaseUnreachable) as raised:
        await pending_migrations(UNREACHABLE)
    assert_readable(raised.value, "127.0.0.1:1")


async def test_starting_a_database_without_a_server_raises_database_unreachable() -> None:
    """``start`` gives up after ``connect_timeout`` and names the address; ``ping`` is False."""
    database = PostgresDatabase(UNREACHABLE, min_connections=1, connect_timeout=0.5)
    try:
        with pytest.raises(DatabaseUnreachable) as raised:
            await database.start()
        assert_readable(raised.value, "127.0.0.1:1")
        assert await database.ping() is False
    finally:
        await database.stop()
