"""PostgreSQL fixtures: every test gets its own migrated schema, dropped afterwards."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from openticket.adapters.postgres import PostgresDatabase, migrate

pytestmark = pytest.mark.postgres


@pytest.fixture
async def schema(database_url: str, schema_name: str) -> str:
    """A fresh schema with every migration applied; dropped when the test ends."""
    await migrate(database_url, schema=schema_name)
    return schema_name


@pytest.fixture
async def pg_database(database_url: str, schema: str) -> AsyncIterator[PostgresDatabase]:
    """A ``PostgresDatabase`` on the test's own schema, its pool closed at the end."""
    database = PostgresDatabase(database_url, schema=schema, min_connections=1, max_connections=6)
    try:
        yield database
    finally:
        await database.stop()


@pytest.fixture
async def other_database(database_url: str, schema: str) -> AsyncIterator[PostgresDatabase]:
    """A second ``PostgresDatabase`` on the test's schema: another process's pool."""
    database = PostgresDatabase(database_url, schema=schema, min_connections=1, max_connections=6)
    try:
        yield database
    finally:
        await database.stop()
