"""Helpers the repository and unit-of-work suites share: storing, reading, paging, racing."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Protocol, TypeVar
from uuid import uuid4

import pytest

from openticket.application.ports.repositories import Page
from openticket.application.ports.unit_of_work import UnitOfWork, UnitOfWorkFactory

T = TypeVar("T")
T_contra = TypeVar("T_contra", contravariant=True)


class _Adds(Protocol[T_contra]):
    """A repository's ``add``, whatever it calls its argument."""

    async def add(self, item: T_contra, /) -> None:
        """Store a new aggregate."""
        ...


RACE_TIMEOUT = 10.0
"""Seconds two racing units may wait for each other before the test fails instead of hanging."""

MAX_PAGES = 10_000


async def in_unit(
    uow_factory: UnitOfWorkFactory, change: Callable[[UnitOfWork], Awaitable[T]]
) -> T:
    """Run ``change`` in a fresh unit of work and commit it."""
    async with uow_factory() as uow:
        result = await change(uow)
        await uow.commit()
    return result


async def add_each(
    uow_factory: UnitOfWorkFactory,
    repository: Callable[[UnitOfWork], _Adds[T]],
    aggregates: Iterable[T],
) -> None:
    """Add each aggregate in its own committed unit of work, in the given order."""
    for aggregate in aggregates:
        async with uow_factory() as uow:
            await repository(uow).add(aggregate)
            await uow.commit()


async def read(uow_factory: UnitOfWorkFactory, query: Callable[[UnitOfWork], Awaitable[T]]) -> T:
    """Run ``query`` in a fresh unit of work that commits nothing."""
    async with uow_factory() as uow:
        return await query(uow)


async def refused_at_add_or_commit(
    uow_factory: UnitOfWorkFactory,
    error: type[BaseException],
    change: Callable[[UnitOfWork], Awaitable[object]],
) -> BaseException:
    """Assert that ``change`` raises ``error``, either while it runs or at ``commit``."""
    async with uow_factory() as uow:
        with pytest.raises(error) as raised:
            await change_and_commit(uow, change)
        assert uow.collect_new_events() == [], "a refused unit must announce nothing"
    return raised.value


async def change_and_commit(
    uow: UnitOfWork, change: Callable[[UnitOfWork], Awaitable[object]]
) -> None:
    """Make ``change`` in ``uow`` and commit it (one call, for ``pytest.raises``)."""
    await change(uow)
    await uow.commit()


async def walk(
    fetch: Callable[[UnitOfWorkFactory, str | None], Awaitable[Page[T]]],
    uow_factory: UnitOfWorkFactory,
    *,
    limit: int,
    between_pages: Callable[[], Awaitable[None]] | None = None,
) -> list[T]:
    """Every item of a paged list, one unit of work per page (as an HTTP client pages).

    Checks that no page is longer than ``limit``; ``between_pages`` runs once, after
    the first page.
    """
    items: list[T] = []
    cursor: str | None = None
    for number in range(MAX_PAGES):
        page = await fetch(uow_factory, cursor)
        assert len(page.items) <= limit, f"a page of {len(page.items)} items for limit {limit}"
        items.extend(page.items)
        if page.next_cursor is None:
            return items
        cursor = page.next_cursor
        if number == 0 and between_pages is not None:
            await between_pages()
    raise AssertionError(f"paging did not end after {MAX_PAGES} pages")


async def let_others_run() -> None:
    """Yield to the event loop a few times, so racing units interleave their statements.

    A real database answers each statement after a round trip; this gives an adapter
    that never awaits the same chance to be caught between two racing units.
    """
    for _ in range(3):
        await asyncio.sleep(0)


async def wait_for_each_other(barrier: asyncio.Barrier) -> None:
    """Wait at ``barrier``; fail instead of hanging when the other side never comes."""
    await asyncio.wait_for(barrier.wait(), RACE_TIMEOUT)


def unique_moment() -> datetime:
    """A moment in 2000-2019 that other tests are unlikely to share (for time queries)."""
    minutes = uuid4().int % (20 * 365 * 24 * 60)
    return datetime(2000, 1, 1, tzinfo=UTC) + timedelta(minutes=minutes)
