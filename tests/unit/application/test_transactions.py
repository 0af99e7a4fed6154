"""``Transactions``: what a unit committed is published once it ends; conflicts retried."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import attrs
import pytest

from openticket.adapters.memory.database import MemoryDatabase
from openticket.application.ports.errors import ConcurrencyError
from openticket.application.ports.unit_of_work import UnitOfWork
from openticket.application.transactions import Transactions
from openticket.domain.shared import DomainEvent

AT = datetime(2026, 12, 1, tzinfo=UTC)


@attrs.frozen(kw_only=True)
class Noted(DomainEvent):
    """A test's event."""

    note: str


def noted(note: str) -> Noted:
    return Noted(event_id=uuid.uuid4(), occurred_at=AT, note=note)


class Published:
    def __init__(self) -> None:
        self.batches: list[list[str]] = []

    async def __call__(self, events: Sequence[DomainEvent]) -> None:
        self.batches.append([e.note for e in events if isinstance(e, Noted)])


@pytest.fixture
def published() -> Published:
    return Published()


@pytest.fixture
def transactions(published: Published) -> Transactions:
    return Transactions(MemoryDatabase().unit_of_work, published)


async def test_a_committed_unit_is_published_after_its_block(
    transactions: Transactions, published: Published
) -> None:
    async with transactions.unit() as uow:
        uow.publish_on_commit(noted("a"), noted("b"))
        await uow.commit()
        assert published.batches == []  # not while the unit is open
    assert published.batches == [["a", "b"]]


async def test_a_unit_left_without_commit_publishes_nothing(
    transactions: Transactions, published: Published
) -> None:
    async with transactions.unit() as uow:
        uow.publish_on_commit(noted("a"))

    async def failing() -> None:
        async with transactions.unit() as uow:
            uow.publish_on_commit(noted("b"))
            await uow.commit()
            raise RuntimeError("the use case failed after its commit")

    with pytest.raises(RuntimeError):
        await failing()
    assert published.batches == []  # on PostgreSQL the outbox relay delivers what was committed


async def test_run_commits_and_publishes_only_the_attempt_that_won(
    transactions: Transactions, published: Published
) -> None:
    attempts = 0

    async def work(uow: UnitOfWork) -> int:
        nonlocal attempts
        attempts += 1
        uow.publish_on_commit(noted(f"attempt {attempts}"))
        if attempts < 3:
            raise ConcurrencyError("someone saved first")
        return attempts

    assert await transactions.run(work) == 3
    assert published.batches == [["attempt 3"]]


async def test_run_gives_up_after_its_attempts(published: Published) -> None:
    transactions = Transactions(MemoryDatabase().unit_of_work, published, attempts=2)
    tried = 0

    async def work(uow: UnitOfWork) -> None:
        nonlocal tried
        tried += 1
        raise ConcurrencyError("always someone first")

    with pytest.raises(ConcurrencyError):
        await transactions.run(work)
    assert tried == 2
    assert published.batches == []


async def test_what_run_stored_is_told_before_its_events_go_out(
    transactions: Transactions, published: Published
) -> None:
    """A handler the events set off finds what the unit stored remembered already."""
    seen: list[str] = []

    async def work(uow: UnitOfWork) -> str:
        uow.publish_on_commit(noted("stored"))
        return "result"

    def committed(result: str) -> None:
        seen.append(f"{result}, with {len(published.batches)} batches published")

    await transactions.run(work, committed=committed)
    assert seen == ["result, with 0 batches published"]
    assert published.batches == [["stored"]]
