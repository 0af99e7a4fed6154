"""Transactions whose events are published when they commit, retried when another won.

Every use case that changes aggregates goes through here, so none publishes by hand::

    async with transactions.unit() as uow:
        order = await uow.orders.get(order_id)
        order.expire(now=now, ids=ids)
        await uow.orders.save(order)
        await uow.commit()
    # the order's OrderExpired is published here

    order = await transactions.run(cancel)  # cancel(uow) reloads, changes, saves

The events are published once the unit has ended (its connection is back in the pool),
in the order the aggregates recorded them (cosmicpython's ``collect_new_events``); on
PostgreSQL they were stored in the outbox by the same commit, so an event whose
publishing fails here is still delivered by the outbox's recovery path.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import TypeVar

from openticket.application.messagebus import Publish
from openticket.application.ports.errors import ConcurrencyError
from openticket.application.ports.unit_of_work import UnitOfWork, UnitOfWorkFactory
from openticket.domain.shared import DomainEvent

T = TypeVar("T")

CONFLICT_ATTEMPTS = 5
"""How often ``Transactions.run`` tries a unit that keeps meeting a concurrent save."""


class Transactions:
    """Units of work that publish what they committed; see the module docstring."""

    def __init__(
        self, uow: UnitOfWorkFactory, publish: Publish, *, attempts: int = CONFLICT_ATTEMPTS
    ) -> None:
        self._uow = uow
        self._publish = publish
        self._attempts = attempts

    def unit(self) -> PublishingUnit:
        """A unit of work; when its block ends without error, what it committed is published.

        Leaving without ``commit()`` rolls back (and publishes nothing); an error in
        the block is raised as it was, and what an earlier ``commit()`` of the block
        stored is not published here (on PostgreSQL the outbox relay delivers it).
        """
        return PublishingUnit(self._uow(), self._publish)

    async def announce(self, *events: DomainEvent) -> None:
        """Publish events that no aggregate recorded (news that changes nothing stored)."""
        await self._publish(events)

    async def run(
        self,
        work: Callable[[UnitOfWork], Awaitable[T]],
        *,
        committed: Callable[[T], None] | None = None,
    ) -> T:
        """``work`` in a unit that is then committed, its events published; its result.

        When the commit (or a save) finds that someone else saved the same aggregate
        first (``ConcurrencyError``), ``work`` runs again in a fresh unit, up to
        ``attempts`` times: it must read what it changes from the unit it is given.
        ``committed`` gets the result once it is stored, before the events go out (to
        remember what was stored for the handlers about to run).
        """
        for attempt in range(1, self._attempts + 1):
            try:
                async with self._uow() as uow:
                    result = await work(uow)
                    await uow.commit()
            except ConcurrencyError:
                if attempt == self._attempts:
                    raise
                continue
            if committed is not None:
                committed(result)
            if events := uow.collect_new_events():
                await self._publish(events)
            return result
        raise AssertionError("unreachable")  # pragma: no cover


class PublishingUnit:
    """The unit of work it wraps; what that committed is published once the block ends.

    A class rather than a generator-based context manager: every use case enters a few.
    """

    __slots__ = ("_publish", "_uow")

    def __init__(self, uow: UnitOfWork, publish: Publish) -> None:
        self._uow = uow
        self._publish = publish

    async def __aenter__(self) -> UnitOfWork:
        return await self._uow.__aenter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        uow = self._uow
        await uow.__aexit__(exc_type, exc, tb)
        if exc_type is None and (events := uow.collect_new_events()):
            await self._publish(events)
