"""What every PostgreSQL repository shares: table descriptions and versioned writes.

A :class:`Table` names an aggregate's table and columns once; the statements of its
repository are built from it at import, with a ``%(column)s`` placeholder for each value,
so a row's parameters are keyed by its column names and rows are read by them too
(``row.order_id``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from enum import StrEnum
from typing import Any, LiteralString, TypeVar

import attrs

from openticket.adapters.paging import encode_cursor
from openticket.adapters.postgres.executor import Executor, Row
from openticket.application.ports.repositories import Page
from openticket.domain.shared import Aggregate

# SQL text is built here only from the tables' own column and table names; every value
# is a bound parameter.

T = TypeVar("T")


@attrs.frozen
class Table:
    """One aggregate's table: its name and the columns its rows are stored in.

    Statements are built from these literals only; every value in them is a named
    parameter. Build them once, at import: they are the same for every row.
    """

    name: LiteralString
    columns: tuple[LiteralString, ...]
    """The stored columns, the key first."""

    @property
    def key(self) -> LiteralString:
        """The column that names a row."""
        return self.columns[0]

    def names(self, alias: LiteralString = "") -> LiteralString:
        """The columns as an SQL list (``alias.column`` with an alias)."""
        prefix = alias + "." if alias else ""
        return ", ".join([prefix + column for column in self.columns])

    def placeholders(self) -> LiteralString:
        """A ``%(column)s`` for each column, in the order of :meth:`names`."""
        return ", ".join(["%(" + column + ")s" for column in self.columns])

    def select(self, *more: LiteralString, alias: LiteralString = "") -> LiteralString:
        """``SELECT`` every column (then ``more``) ``FROM`` the table, for a ``WHERE`` to follow."""
        source = self.name + " " + alias if alias else self.name
        return "SELECT " + ", ".join([self.names(alias), *more]) + " FROM " + source

    def insert(self) -> LiteralString:
        """``INSERT`` one row of every column."""
        return (
            "INSERT INTO " + self.name + " (" + self.names() + ")"
            " VALUES (" + self.placeholders() + ")"
        )

    def update(self, *columns: LiteralString, versioned: bool = True) -> LiteralString:
        """``UPDATE`` ``columns`` of the row whose key is ``%(key)s``.

        ``versioned``: only at the stored version ``%(expected)s``, setting ``%(version)s``.
        """
        changed = (*columns, "version") if versioned else columns
        where = self.key + " = %(" + self.key + ")s"
        if versioned:
            where += " AND version = %(expected)s"
        sets = ", ".join([column + " = %(" + column + ")s" for column in changed])
        return "UPDATE " + self.name + " SET " + sets + " WHERE " + where


_PLAIN = re.compile(r"[a-z_]+")


def one_of(values: Iterable[StrEnum]) -> LiteralString:
    """Enum values as the SQL literals of an ``IN (…)`` list, in the enum's order.

    For statuses: composed once at import from the domain's enums, so the SQL names no
    status by hand. Only plain lowercase words are taken (nothing to quote).
    """
    wanted = set(values)
    if not wanted:
        raise ValueError("an IN list needs a value")
    members = [member for member in type(next(iter(wanted))) if member in wanted]
    for member in members:
        if not _PLAIN.fullmatch(member.value):
            raise ValueError(f"not a plain SQL word: {member.value!r}")
    return ", ".join(["'" + member.value + "'" for member in members])


def versioned(update: LiteralString) -> LiteralString:
    """``update`` (a write of one row) as a statement that fails when it wrote none.

    The server raises ``division_by_zero`` for 0 rows, which aborts the transaction: a
    ``COMMIT`` sent after it in the same round trip does not run. The unit of work turns it
    into ``ConcurrencyError``.
    """
    return "WITH changed AS (" + update + " RETURNING 1) SELECT 1 / count(*) FROM changed"


async def insert_versioned(  # noqa: PLR0917  # the call shape of save_versioned
    uow: Executor,
    table: Table,
    key: object,
    aggregate: Aggregate,
    insert: LiteralString,
    params: dict[str, Any],
) -> None:
    """Write ``insert`` (which sets ``%(version)s``) for a new aggregate, now."""
    version = uow.version_to_add(table.name, key, aggregate)
    await uow.write(insert, {**params, "version": version})
    uow.wrote(table.name, key, aggregate, 0, version)


async def save_versioned(  # noqa: PLR0917  # one call shape for every aggregate
    uow: Executor,
    table: Table,
    key: object,
    aggregate: Aggregate,
    update: LiteralString,
    params: dict[str, Any],
) -> None:
    """Queue ``update`` (from :meth:`Table.update`) with the unit's next statement.

    It travels with the unit's next statement or its commit, which raises
    ``ConcurrencyError`` if it matched no row (someone saved first, or it was never
    stored).
    """
    expected, version = uow.versions_to_save(table.name, key, aggregate)
    uow.defer(versioned(update), {**params, "expected": expected, "version": version})
    uow.wrote(table.name, key, aggregate, aggregate.version, version)


def checked_limit(limit: int) -> int:
    """``limit``, refused below one."""
    if limit < 1:
        raise ValueError("limit must be at least 1")
    return limit


def page(rows: Sequence[Row], limit: int, build: Callable[[Row], T]) -> Page[T]:
    """Rows fetched with ``LIMIT limit + 1`` that have a ``seq`` column, as one page."""
    items = tuple(build(row) for row in rows[:limit])
    more = len(rows) > limit
    return Page(items, encode_cursor(rows[limit - 1].seq) if more else None)


def storable(*keys: str) -> bool:
    """Whether PostgreSQL could hold every key; a lookup by one it cannot finds nothing.

    Text with NUL or a lone surrogate cannot be sent at all: asking for it would be an
    error (a 4xx), where a code or a transaction id that was never issued is "none".
    """
    return all("\x00" not in key and _encodable(key) for key in keys)


def _encodable(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True
