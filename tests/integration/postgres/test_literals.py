"""Values written into a statement's text read back from PostgreSQL as they were sent.

The unit of work sends its batches as one simple query with the values written in
(``adapters/postgres/literals.py``). Every kind it writes itself is read back from the
server with the type psycopg's own quoting gives it, text drawn by Hypothesis included:
a quote, a backslash or a comment marker in a value stays data.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, LiteralString
from uuid import UUID, uuid4

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import sql
from psycopg.types.json import Jsonb

from openticket.adapters.postgres.literals import Mogrify, bind, writes_literals

pytestmark = pytest.mark.postgres


@pytest.fixture
async def conn(database_url: str) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """A plain connection in autocommit mode, as the unit of work's pool gives."""
    connection = await psycopg.AsyncConnection.connect(database_url, autocommit=True)
    try:
        yield connection
    finally:
        await connection.close()


def _psycopg(conn: psycopg.AsyncConnection[Any]) -> Mogrify:
    assert writes_literals(conn)
    return Mogrify(conn)


async def _read(conn: psycopg.AsyncConnection[Any], query: str) -> tuple[Any, ...]:
    cursor = await conn.execute(sql.SQL(query))  # type: ignore[arg-type]
    row = await cursor.fetchone()
    assert row is not None
    return tuple(row)


async def _both(
    conn: psycopg.AsyncConnection[Any], query: LiteralString, params: tuple[Any, ...]
) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """What the server reads from our text and from psycopg's, for the same statement."""
    ours = bind(query, params, _psycopg(conn))
    theirs = _psycopg(conn)(query, params)
    return await _read(conn, ours), await _read(conn, theirs)


VALUES: list[object] = [
    None,
    True,
    False,
    0,
    7,
    -1,
    2**40,
    -(2**62),
    "",
    "plain",
    "it's",
    "back\\slash \\' and ''",
    "'; DROP TABLE outbox; --",
    "/* not a comment */ -- nor this",
    "ünïcødé ✓ 🎫",
    uuid4(),
    datetime(2030, 1, 1, 12, 30, tzinfo=UTC),
    datetime(2030, 1, 1, 12, 30, 0, 123456, tzinfo=timezone(timedelta(hours=18, minutes=5))),
    Jsonb({"seat": "A-1", "quote": "it's", "n": 3, "ok": True, "none": None, "l": [1, "x"]}),
    Jsonb([]),
    Decimal("12.50"),
    Decimal("-3"),
    Decimal("1E+3"),
    Decimal("NaN"),
    [uuid4(), uuid4()],
    [],
]


@pytest.mark.parametrize(
    "value", VALUES, ids=[f"{type(v).__name__}-{i}" for i, v in enumerate(VALUES)]
)
async def test_each_kind_reads_back_as_psycopg_writes_it(
    conn: psycopg.AsyncConnection[Any], value: object
) -> None:
    ours, theirs = await _both(conn, "SELECT %s, pg_typeof(%s)::text", (value, value))
    if isinstance(value, Decimal) and value.is_nan():
        assert ours[0].is_nan()
        assert theirs[0].is_nan()
        assert ours[1] == theirs[1] == "numeric"
        return
    assert ours == theirs
    if isinstance(value, Jsonb):
        assert ours[0] == value.obj
    elif value is not None and ours[1] not in (
        "text",
        "unknown",
    ):  # psycopg leaves some arrays untyped
        assert ours[0] == value


@pytest.mark.parametrize(
    "items",
    [
        ["A-1", "B 2", "", "NULL", "it's", 'a "b"', "c\\d", "{e,f}", "ü ✓"],
        [Decimal("12.50"), Decimal("-3")],
    ],
)
async def test_lists_of_text_and_of_decimals_read_back_as_arrays(
    conn: psycopg.AsyncConnection[Any], items: list[object]
) -> None:
    kind = "text" if isinstance(items[0], str) else "numeric"
    query = f"SELECT %s::{kind}[]"
    ours, theirs = await _both(conn, query, (items,))  # type: ignore[arg-type]
    assert ours == theirs == (items,)


async def test_a_negative_number_after_a_minus_is_not_a_comment(
    conn: psycopg.AsyncConnection[Any],
) -> None:
    text = bind("SELECT 1-%s", (-1,), _psycopg(conn))
    assert await _read(conn, text) == (2,)


async def test_placeholders_and_percent_signs_mean_what_they_mean_to_psycopg(
    conn: psycopg.AsyncConnection[Any],
) -> None:
    mogrify = _psycopg(conn)
    assert bind("SELECT '100%%', %s", ("x",), mogrify) == mogrify("SELECT '100%%', %s", ("x",))
    named = "SELECT %(a)s, %(b)s, %(a)s"
    assert bind(named, {"a": 5, "b": "it's"}, mogrify) == mogrify(named, {"a": 5, "b": "it's"})
    with pytest.raises(psycopg.ProgrammingError):
        bind(named, {"a": 5}, mogrify)  # a name without a value: psycopg's error
    with pytest.raises(psycopg.ProgrammingError):
        bind(named, (5, 6), mogrify)
    with pytest.raises(psycopg.ProgrammingError):
        bind("SELECT %(a)s, %s", {"a": 5}, mogrify)
    assert bind("SELECT '%%s'", None, mogrify) == "SELECT '%%s'"  # no values: sent as is
    with pytest.raises(psycopg.ProgrammingError):
        bind("SELECT %s, %s", (1,), mogrify)  # too few values: psycopg's error
    with pytest.raises(psycopg.ProgrammingError):
        bind("SELECT %d", (1,), mogrify)


async def test_what_it_does_not_write_psycopg_writes(conn: psycopg.AsyncConnection[Any]) -> None:
    ids = [uuid4(), uuid4()]
    ours, theirs = await _both(conn, "SELECT %s::uuid[], %s", (ids, datetime(2030, 1, 1)))
    assert ours == theirs == ([UUID(str(i)) for i in ids], datetime(2030, 1, 1))


async def test_text_with_a_nul_character_is_refused_as_bad_data(
    conn: psycopg.AsyncConnection[Any],
) -> None:
    with pytest.raises(psycopg.DataError):
        bind("SELECT %s", ("a\x00b",), _psycopg(conn))


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    text=st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00")),
    number=st.integers(min_value=-(2**63), max_value=2**63 - 1),
    texts=st.lists(
        st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00")),
        min_size=1,
        max_size=4,
    ),
)
async def test_any_text_and_number_read_back_unchanged(
    conn: psycopg.AsyncConnection[Any], text: str, number: int, texts: list[str]
) -> None:
    params = (text, number, Jsonb({"t": text}), texts)
    query = bind("SELECT %s, %s, %s, %s::text[]", params, _psycopg(conn))
    assert await _read(conn, query) == (text, number, {"t": text}, texts)
