"""Data PostgreSQL cannot hold is the caller's bad input, never a storage fault.

Whatever reaches the unit of work — a NUL psycopg will not send, a lone surrogate that
is not Unicode, a text longer than its column, a number or a date out of range — is
``InvalidInput`` (422), and what it says reaches API clients: it names neither the
database nor the statement. A real fault stays ``StorageError`` (500), as discreet.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from uuid import uuid4

import pytest
from psycopg.types.json import Jsonb

from openticket.adapters.postgres import DatabaseUnreachable, PostgresDatabase, StorageError
from openticket.application.ports.errors import InvalidInput
from openticket.testing.contracts._builders import new_user

pytestmark = pytest.mark.postgres

UNREACHABLE = "postgresql://postgres@127.0.0.1:1/test"


def assert_discreet(error: BaseException, schema: str) -> None:
    """The message a client would read names no database, statement, schema or address."""
    text = str(error)
    for leak in ("PostgreSQL", "psycopg", "SELECT", "INSERT", "processed_events", schema, "5432"):
        assert leak not in text, text


BAD_READS: list[tuple[str, tuple[Any, ...]]] = [
    ("SELECT %s::text", ("Main\x00Hall",)),
    ("SELECT %s::text", ("Main\ud800Hall",)),
    ("SELECT %s::jsonb", (Jsonb({"city": "Tai\x00pei"}),)),
    ("SELECT %s::numeric", (Decimal("1E+999999999"),)),
    ("SELECT %s::smallint", (100_000,)),
    ("SELECT make_date(%s, 1, 1)", (0,)),
]


@pytest.mark.parametrize(("query", "params"), BAD_READS, ids=repr)
async def test_data_the_database_cannot_hold_is_invalid_input(
    pg_database: PostgresDatabase, schema: str, query: Any, params: tuple[Any, ...]
) -> None:
    async with pg_database.unit_of_work() as uow:
        with pytest.raises(InvalidInput) as raised:
            await uow.fetch_one(query, params)
    assert raised.value.code == "invalid_input"
    assert_discreet(raised.value, schema)
    async with pg_database.unit_of_work() as uow:  # the pool's connection still works
        assert await uow.fetch_one("SELECT 1") == (1,)


@pytest.mark.parametrize(
    "consumer", ["x" * 201, "consumer\x00", "consumer\udfff"], ids=["too long", "NUL", "surrogate"]
)
async def test_a_write_of_bad_input_fails_its_unit_and_stores_nothing(
    pg_database: PostgresDatabase, schema: str, consumer: str
) -> None:
    user = new_user()
    async with pg_database.unit_of_work() as uow:
        await uow.users.add(user)
        with pytest.raises(InvalidInput) as raised:
            await uow.write(
                "INSERT INTO processed_events (consumer, event_id) VALUES (%s, %s)",
                (consumer, uuid4()),
            )
        with pytest.raises(InvalidInput):
            await uow.commit()
    assert_discreet(raised.value, schema)
    async with pg_database.unit_of_work() as uow:
        assert await uow.users.get(user.user_id) is None
        assert await uow.fetch_one("SELECT count(*) FROM processed_events") == (0,)


async def test_a_real_storage_fault_stays_a_storage_error_that_shows_no_sql(
    pg_database: PostgresDatabase, schema: str
) -> None:
    async with pg_database.unit_of_work() as uow:
        with pytest.raises(StorageError) as raised:
            await uow.fetch_one("SELECT 1 FROM processed_events_gone WHERE consumer = %s", ("x",))
    assert raised.value.code == "storage_error"
    assert "42P01" in str(raised.value)  # the SQLSTATE, to find the logged details by
    assert "processed_events_gone" not in str(raised.value)
    assert_discreet(raised.value, schema)


async def test_lookups_by_keys_no_row_can_hold_find_nothing(pg_database: PostgresDatabase) -> None:
    user = new_user(email="ada@example.com")
    async with pg_database.unit_of_work() as uow:
        await uow.users.add(user)
        await uow.commit()
    async with pg_database.unit_of_work() as uow:
        assert await uow.tickets.get_by_qr_code("code\x00") is None
        assert await uow.tickets.get_by_qr_code("code\ud800") is None
        assert await uow.payments.get_by_provider_transaction("mock", "tx\x00") is None
        assert await uow.users.get_by_email("ada@example.com\x00") is None
        assert await uow.users.get_by_email("аda@example.com") is None  # Cyrillic а
        found = await uow.users.get_by_email("ａda@Example.com")  # fullwidth: the same address
    assert found is not None
    assert found.user_id == user.user_id


async def test_a_request_meeting_a_database_it_cannot_reach_is_not_told_where_it_is() -> None:
    database = PostgresDatabase(UNREACHABLE, min_connections=1, connect_timeout=0.5)
    try:
        with pytest.raises(DatabaseUnreachable) as raised:
            async with database.unit_of_work() as uow:
                await uow.fetch_one("SELECT 1")
        assert "127.0.0.1" not in str(raised.value)
        assert ":1/" not in str(raised.value)
        assert raised.value.__cause__ is not None  # start() and the log say where
        assert "127.0.0.1:1" in str(raised.value.__cause__)
    finally:
        await database.stop()
