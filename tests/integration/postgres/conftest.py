"""PostgreSQL fixtures: every test gets its own migrated schema, dropped afterwards."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import psycopg
import pytest
from psycopg import sql

from openticket.adapters.postgres import PostgresDatabase, migrate

pytestmark = pytest.mark.postgres


async def drop_schema(database_url: str, schema: str) -> None:
    """Drop a test's schema and everything in it."""
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await conn.execute(
            sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
        )


@pytest.fixture
async def schema_name(database_url: str) -> AsyncIterator[str]:
    """A schema name of the test's own, not created yet; dropped (if it was) at the end."""
    name = f"test_{uuid.uuid4().hex[:16]}"
    try:
        yield name
    finally:
        await drop_schema(database_url, name)


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
