"""The unit of work: one transaction over every repository.

::

    async with uow_factory() as uow:
        order = await uow.orders.get(order_id)
        order.cancel(now=clock.now(), ids=ids.new_id)
        await uow.orders.save(order)
        await uow.commit()
    events = uow.collect_new_events()

Leaving the block without ``commit()`` rolls back. ``commit`` raises
``ConcurrencyError`` or ``DuplicateError`` if a change conflicts with another
committed one, and then nothing of the unit is stored. The events that the saved
aggregates recorded (and any given to ``publish_on_commit``) are stored with the
same commit, so what happened and its announcement cannot part.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Protocol, Self

from openticket.application.ports.repositories import (
    EventRepository,
    OrderRepository,
    PaymentRepository,
    PriceCategoryRepository,
    ProcessedEventRepository,
    SessionRepository,
    TicketRepository,
    UserRepository,
    VenueRepository,
)
from openticket.domain.shared import DomainEvent


class UnitOfWork(Protocol):
    """One transaction over all repositories; see the module docstring."""

    @property
    def users(self) -> UserRepository:
        """The users of this transaction."""
        ...

    @property
    def venues(self) -> VenueRepository:
        """The venues of this transaction."""
        ...

    @property
    def events(self) -> EventRepository:
        """The events of this transaction."""
        ...

    @property
    def sessions(self) -> SessionRepository:
        """The sessions of this transaction."""
        ...

    @property
    def price_categories(self) -> PriceCategoryRepository:
        """The price categories of this transaction."""
        ...

    @property
    def orders(self) -> OrderRepository:
        """The orders of this transaction."""
        ...

    @property
    def payments(self) -> PaymentRepository:
        """The payments of this transaction."""
        ...

    @property
    def tickets(self) -> TicketRepository:
        """The tickets of this transaction."""
        ...

    @property
    def processed_events(self) -> ProcessedEventRepository:
        """The processed events of this transaction."""
        ...

    async def __aenter__(self) -> Self:
        """Begin the transaction."""
        ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Roll back whatever was not committed."""
        ...

    async def commit(self) -> None:
        """Store every change of this unit at once, with its events."""
        ...

    async def rollback(self) -> None:
        """Forget every change since the last commit."""
        ...

    def publish_on_commit(self, *events: DomainEvent) -> None:
        """Store ``events`` with the next commit, beside the aggregates' own events."""
        ...

    def collect_new_events(self) -> list[DomainEvent]:
        """The events committed by this unit and not collected yet, in order."""
        ...


UnitOfWorkFactory = Callable[[], UnitOfWork]
"""Makes a fresh unit of work for each transaction."""
