"""What a repository asks of its unit of work: statements, deferred writes and versions.

Repositories depend on this protocol, not on the unit of work itself, so the unit of work
(which makes them) and the repositories do not import each other.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, LiteralString, Protocol, TypeAlias

from openticket.domain.shared import Aggregate

Row: TypeAlias = Any
"""A row read by column name (``row.order_id``): a named tuple of the query's columns.

Typed loosely: its fields are whatever the statement selects.
"""

Params: TypeAlias = Mapping[str, Any]
"""A statement's values, by the names of its ``%(name)s`` placeholders."""


class Executor(Protocol):
    """The unit of work as its repositories see it (``PostgresUnitOfWork``)."""

    def require_active(self) -> None:
        """Refuse use outside the unit's ``async with``."""
        ...

    async def fetch_one(self, query: LiteralString, params: Params) -> Row | None:
        """The first row of a read."""
        ...

    async def fetch_all(self, query: LiteralString, params: Params) -> list[Row]:
        """Every row of a read."""
        ...

    async def write(self, query: LiteralString, params: Params) -> int:
        """Run a write in the unit's transaction; the number of rows it touched."""
        ...

    async def write_returning(self, query: LiteralString, params: Params) -> Row | None:
        """Run a write in the unit's transaction; the first row it returned."""
        ...

    def defer(self, query: LiteralString, params: Params) -> None:
        """Queue a write that can fail only by a server error for the next round trip."""
        ...

    def version_to_add(self, table: str, key: object, aggregate: Aggregate) -> int:
        """The version a new row is stored at; refuses an aggregate that is not new."""
        ...

    def versions_to_save(self, table: str, key: object, aggregate: Aggregate) -> tuple[int, int]:
        """``(expected, new)``: the stored version an update must find, and the one it sets."""
        ...

    def wrote(
        self, table: str, key: object, aggregate: Aggregate, loaded: int, stored: int
    ) -> None:
        """Record a written aggregate: its events join the commit, its version follows it."""
        ...
