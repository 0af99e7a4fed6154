"""Versioned SQL migrations shipped in the package, applied in order and recorded.

Files are ``migrations/NNNN_name.sql``. ``migrate`` applies the ones the database has
not recorded in ``schema_migrations``, all in one transaction (all or none) under an
advisory lock, so that processes starting together apply each migration once. Running
it again is a no-op; a recorded migration whose file changed since is refused.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from importlib import resources
from typing import Any

import attrs
import psycopg
from psycopg import sql

from openticket.adapters.postgres.errors import connect_error, connection_kwargs

_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_LOCK_KEY = 0x6F70_656E_7469  # "openti": the advisory lock of migrations


class MigrationError(Exception):
    """The database's recorded migrations do not fit the shipped ones."""


@attrs.frozen
class Migration:
    """One shipped SQL file."""

    version: int
    name: str
    sql: str = attrs.field(repr=False)

    @property
    def checksum(self) -> str:
        """SHA-256 of the file's text: a recorded migration must not change."""
        return hashlib.sha256(self.sql.encode()).hexdigest()


@attrs.frozen
class MigrationReport:
    """What ``migrate`` did: the migrations it applied and those applied before."""

    applied: tuple[Migration, ...]
    already_applied: int


def shipped_migrations() -> tuple[Migration, ...]:
    """Every migration in the package, in version order."""
    folder = resources.files("openticket.adapters.postgres") / "migrations"
    found = []
    for entry in folder.iterdir():
        match = _FILE.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"two migration files share a version: {versions}")
    return tuple(found)


_CREATE_RECORD = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     integer PRIMARY KEY,
    name        text NOT NULL,
    checksum    text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
)
"""


async def migrate(
    conninfo: str,
    *,
    schema: str | None = None,
    migrations: Sequence[Migration] | None = None,
    progress: Callable[[Migration], None] | None = None,
) -> MigrationReport:
    """Apply every shipped migration the database lacks; see the module docstring.

    ``schema`` (created if missing) holds the tables instead of ``public``.
    ``progress`` is called before each migration is applied.
    Raises ``DatabaseUnreachable`` when the server cannot be reached.
    """
    wanted = tuple(shipped_migrations() if migrations is None else migrations)
    conn = await _connect(conninfo, schema)
    applied: list[Migration] = []
    async with conn, conn.transaction():
        # one process at a time; the others wait here, then find nothing left to do
        await conn.execute("SELECT pg_advisory_xact_lock(%(key)s)", {"key": _LOCK_KEY})
        if schema is not None:
            await conn.execute(
                sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema))
            )
        await conn.execute(_CREATE_RECORD)
        recorded = await _recorded(conn)
        _check_recorded(recorded, wanted)
        before = sum(1 for m in wanted if m.version in recorded)
        for migration in wanted:
            if migration.version in recorded:
                continue
            if progress is not None:
                progress(migration)
            await conn.execute(migration.sql.encode())
            await conn.execute(
                "INSERT INTO schema_migrations (version, name, checksum)"
                " VALUES (%(version)s, %(name)s, %(checksum)s)",
                {
                    "version": migration.version,
                    "name": migration.name,
                    "checksum": migration.checksum,
                },
            )
            applied.append(migration)
    return MigrationReport(tuple(applied), before)


async def pending_migrations(conninfo: str, *, schema: str | None = None) -> tuple[Migration, ...]:
    """The shipped migrations the database has not applied yet."""
    conn = await _connect(conninfo, schema)
    async with conn:
        cursor = await conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL")
        row = await cursor.fetchone()
        recorded = await _recorded(conn) if row and row[0] else {}
    return tuple(m for m in shipped_migrations() if m.version not in recorded)


async def _connect(conninfo: str, schema: str | None) -> psycopg.AsyncConnection[Any]:
    try:
        return await psycopg.AsyncConnection.connect(
            conninfo, autocommit=True, **connection_kwargs(schema)
        )
    except psycopg.OperationalError as e:
        raise connect_error(conninfo, e) from e


async def _recorded(conn: psycopg.AsyncConnection[tuple[object, ...]]) -> dict[int, str]:
    cursor = await conn.execute("SELECT version, checksum FROM schema_migrations")
    return {int(str(version)): str(checksum) for version, checksum in await cursor.fetchall()}


def _check_recorded(recorded: dict[int, str], wanted: Sequence[Migration]) -> None:
    shipped = {m.version: m for m in wanted}
    for version, checksum in sorted(recorded.items()):
        migration = shipped.get(version)
        if migration is None:
            raise MigrationError(
                f"the database has migration {version}, which this version of OpenTicket "
                "does not ship: it was migrated by a newer release"
            )
        if migration.checksum != checksum:
            raise MigrationError(
                f"migration {version:04d}_{migration.name} changed since it was applied"
            )
