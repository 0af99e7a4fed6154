"""``openticket migrate``: apply the shipped SQL migrations, showing each one."""

from __future__ import annotations

import sys
import time

from openticket.adapters.postgres import (
    DatabaseUnreachable,
    Migration,
    MigrationError,
    migrate,
    shipped_migrations,
)
from openticket.adapters.postgres.errors import redacted


async def apply_migrations(url: str, schema: str | None, *, prefix: str = "openticket") -> None:
    """Apply pending migrations, printing progress; raises what ``migrate`` raises."""
    shipped = shipped_migrations()
    where = redacted(url) + (f", schema {schema}" if schema else "")
    print(f"{prefix}: PostgreSQL at {where}: checking {len(shipped)} migrations", flush=True)
    started = [time.perf_counter()]

    def progress(migration: Migration) -> None:
        started[0] = time.perf_counter()
        print(f"  applying {migration.version:04d}_{migration.name} ...", flush=True)

    report = await migrate(url, schema=schema, progress=progress)
    if report.applied:
        print(
            f"{prefix}: applied {len(report.applied)} migration(s);"
            f" {report.already_applied} were applied before",
            flush=True,
        )
    else:
        print(f"{prefix}: the database is up to date ({report.already_applied} applied)")


async def run_migrations(url: str, schema: str | None) -> int:
    """The ``migrate`` command: exit code 0 when the schema is current, 1 when not."""
    try:
        await apply_migrations(url, schema, prefix="openticket migrate")
    except (DatabaseUnreachable, MigrationError) as e:
        print(f"openticket migrate: {e}", file=sys.stderr)
        return 1
    except ValueError as e:  # a schema name that cannot be used
        print(f"openticket migrate: {e}", file=sys.stderr)
        return 2
    print("next: openticket serve   (with the same OPENTICKET_DATABASE_URL)")
    return 0
