"""PostgreSQL persistence: repositories, the unit of work, migrations and the outbox."""

from openticket.adapters.postgres.database import PostgresDatabase
from openticket.adapters.postgres.errors import DatabaseUnreachable, StorageError
from openticket.adapters.postgres.migrator import (
    Migration,
    MigrationError,
    MigrationReport,
    migrate,
    pending_migrations,
    shipped_migrations,
)
from openticket.adapters.postgres.outbox import OutboxRelay
from openticket.adapters.postgres.unit_of_work import PostgresUnitOfWork

__all__ = [
    "DatabaseUnreachable",
    "Migration",
    "MigrationError",
    "MigrationReport",
    "OutboxRelay",
    "PostgresDatabase",
    "PostgresUnitOfWork",
    "StorageError",
    "migrate",
    "pending_migrations",
    "shipped_migrations",
]
