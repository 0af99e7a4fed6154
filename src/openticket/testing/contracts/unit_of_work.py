"""The ``UnitOfWork`` contract: one transaction over every repository, with its events."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import weakref
from collections.abc import Callable, Sequence
from datetime import timedelta
from uuid import UUID, uuid4

import pytest

from openticket.application.ports.errors import (
    ConcurrencyError,
    EmailTaken,
    NotInTransaction,
)
from openticket.application.ports.unit_of_work import UnitOfWork, UnitOfWorkFactory
from openticket.domain.identity import User
from openticket.domain.ordering import Order, OrderCancelled, OrderCreated, OrderStatus
from openticket.domain.shared import DomainEvent, OrderId, PaymentId, UserId
from openticket.domain.ticketing import TicketIssued
from openticket.testing.contracts._builders import (
    T0,
    new_id,
    new_order,
    new_payment,
    new_ticket,
    new_user,
    seat,
)
from openticket.testing.contracts._uow import (
    change_and_commit,
    in_unit,
    let_others_run,
    read,
    wait_for_each_other,
)


class _Oops(Exception):
    """An error raised inside a unit of work by the test itself."""


def _ids(events: Sequence[DomainEvent]) -> list[UUID]:
    return [e.event_id for e in events]


def _extra_event() -> TicketIssued:
    """A domain event that no aggregate of the test records (for ``publish_on_commit``)."""
    ticket = new_ticket(session_id=new_order().session_id, seat_id=seat("A", 1, 1))
    (event,) = ticket.collect_events()
    assert isinstance(event, TicketIssued)
    return event


async def _stored(uow_factory: UnitOfWorkFactory, order_id: OrderId) -> Order | None:
    return await read(uow_factory, lambda uow: uow.orders.get(order_id))


async def _stored_user(uow_factory: UnitOfWorkFactory, user_id: UserId) -> User | None:
    return await read(uow_factory, lambda uow: uow.users.get(user_id))


async def _store(uow_factory: UnitOfWorkFactory, order: Order) -> None:
    await in_unit(uow_factory, lambda uow: uow.orders.add(order))


class UnitOfWorkContract:
    """What every ``UnitOfWork`` must do. Subclasses define the fixture ``uow_factory``."""

    # --- commit and rollback -----------------------------------------------------------

    async def test_nothing_is_stored_without_commit(self, uow_factory: UnitOfWorkFactory) -> None:
        """Leaving the block without ``commit()`` stores nothing and announces nothing."""
        order, user = new_order(), new_user()
        async with uow_factory() as uow:
            await uow.orders.add(order)
            await uow.users.add(user)
        assert uow.collect_new_events() == []
        assert await _stored(uow_factory, order.order_id) is None
        assert await _stored_user(uow_factory, user.user_id) is None

    async def test_leaving_with_an_exception_rolls_back(
        self, uow_factory: UnitOfWorkFactory
    ) -> None:
        """The error goes on to the caller; the changes of the block are gone."""
        order = new_order()
        units: list[UnitOfWork] = []

        async def add_then_fail() -> None:
            async with uow_factory() as uow:
                units.append(uow)
                await uow.orders.add(order)
                raise _Oops

        with pytest.raises(_Oops):
            await add_then_fail()
        assert units[0].collect_new_events() == []
        assert await _stored(uow_factory, order.order_id) is None

    async def test_changes_after_the_last_commit_are_rolled_back_on_exit(
        self, uow_factory: UnitOfWorkFactory
    ) -> None:
        """What was committed stays; what came after it does not."""
        kept, dropped = new_order(), new_order()

        async def commit_then_fail() -> None:
            async with uow_factory() as uow:
                await uow.orders.add(kept)
                await uow.commit()
                await uow.orders.add(dropped)
                raise _Oops

        with pytest.raises(_Oops):
            await commit_then_fail()
        assert await _stored(uow_factory, kept.order_id) is not None
        assert await _stored(uow_factory, dropped.order_id) is None

    async def test_rollback_forgets_the_changes_and_the_unit_goes_on(
        self, uow_factory: UnitOfWorkFactory
    ) -> None:
        """After ``rollback()`` the unit can still make and commit other changes."""
        forgotten, kept = new_order(), new_order()
        async with uow_factory() as uow:
            await uow.orders.add(forgotten)
            uow.publish_on_commit(_extra_event())
            await uow.rollback()
            await uow.orders.add(kept)
            await uow.commit()
        assert await _stored(uow_factory, forgotten.order_id) is None
        assert await _stored(uow_factory, kept.order_id) is not None
        (announced,) = uow.collect_new_events()
        assert isinstance(announced, OrderCreated)
        assert announced.order_id == kept.order_id

    async def test_a_unit_used_outside_its_block_raises_not_in_transaction(
        self, uow_factory: UnitOfWorkFactory
    ) -> None:
        """Before ``async with`` and after it ended, reads and commits are refused."""
        order = new_order()
        await _store(uow_factory, order)
        fresh = uow_factory()
        with pytest.raises(NotInTransaction):
            await fresh.orders.get(order.order_id)
        with pytest.raises(NotInTransaction):
            await fresh.commit()
        async with uow_factory() as ended:
            pass
        with pytest.raises(NotInTransaction):
            await ended.orders.get(order.order_id)
        with pytest.raises(NotInTransaction):
            await ended.commit()

    # --- detached copies ---------------------------------------------------------------

    async def test_reads_are_detached_copies(self, uow_factory: UnitOfWorkFactory) -> None:
        """Changing a loaded aggregate without ``save`` changes nothing and announces nothing."""
        order = new_order()
        await _store(uow_factory, order)
        async with uow_factory() as uow:
            changed = await uow.orders.get(order.order_id)
            untouched = await uow.orders.get(order.order_id)
            assert changed is not None
            assert untouched is not None
            changed.cancel(now=T0, ids=new_id)
            assert untouched.status is OrderStatus.CREATED
            await uow.commit()
        assert not any(isinstance(e, OrderCancelled) for e in uow.collect_new_events())
        stored = await _stored(uow_factory, order.order_id)
        assert stored is not None
        assert stored.status is OrderStatus.CREATED

    async def test_changing_an_added_aggregate_after_commit_changes_nothing_stored(
        self, uow_factory: UnitOfWorkFactory
    ) -> None:
        """The store keeps its own copy, not the caller's object."""
        order = new_order()
        await _store(uow_factory, order)
        order.cancel(now=T0, ids=new_id)
        stored = await _stored(uow_factory, order.order_id)
        assert stored is not None
        assert stored.status is OrderStatus.CREATED

    # --- optimistic concurrency --------------------------------------------------------

    async def test_racing_saves_of_one_aggregate_let_exactly_one_win(
        self, uow_factory: UnitOfWorkFactory
    ) -> None:
        """Both load one version; one commits whole, the other gets ``ConcurrencyError``.

        The loser stores nothing of its other changes and announces nothing.
        """
        order = new_order()
        await _store(uow_factory, order)
        barrier = asyncio.Barrier(2)

        def cancel(o: Order) -> None:
            o.cancel(now=T0, ids=new_id)

        def start_payment(o: Order) -> None:
            o.start_payment(PaymentId(uuid4()), now=T0, ids=new_id)

        bystanders = [new_order(), new_order()]
        users = [new_user(), new_user()]
        units: list[UnitOfWork] = []

        async def change(apply: Callable[[Order], None], racer: int) -> None:
            async with uow_factory() as uow:
                units.append(uow)
                loaded = await uow.orders.get(order.order_id)
                assert loaded is not None
                await wait_for_each_other(barrier)
                await uow.users.add(users[racer])
                await uow.orders.add(bystanders[racer])
                uow.publish_on_commit(_extra_event())
                apply(loaded)
                await uow.orders.save(loaded)
                await let_others_run()
                await uow.commit()

        outcomes = await asyncio.gather(
            change(cancel, 0), change(start_payment, 1), return_exceptions=True
        )
        assert sum(o is None for o in outcomes) == 1, outcomes
        assert all(isinstance(o, ConcurrencyError) for o in outcomes if o is not None), outcomes
        won = outcomes.index(None)
        stored = await _stored(uow_factory, order.order_id)
        assert stored is not None
        assert stored.status is (OrderStatus.CANCELLED if won == 0 else OrderStatus.PAYMENT_PENDING)
        for racer in (0, 1):
            kept = await _stored(uow_factory, bystanders[racer].order_id)
            user = await _stored_user(uow_factory, users[racer].user_id)
            assert (kept is not None, user is not None) == (racer == won, racer == won)
        announced = [bool(unit.collect_new_events()) for unit in units]
        assert sorted(announced) == [False, True], "the loser announced, or the winner did not"

    async def test_saving_a_stale_copy_raises_concurrency_error(
        self, uow_factory: UnitOfWorkFactory
    ) -> None:
        """A copy loaded before someone else's commit cannot overwrite it."""
        order = new_order()
        await _store(uow_factory, order)
        stale = await _stored(uow_factory, order.order_id)
        assert stale is not None

        async def start_payment(uow: UnitOfWork) -> None:
            fresh = await uow.orders.get(order.order_id)
            assert fresh is not None
            fresh.start_payment(PaymentId(uuid4()), now=T0, ids=new_id)
            await uow.orders.save(fresh)

        await in_unit(uow_factory, start_payment)
        stale.cancel(now=T0, ids=new_id)
        async with uow_factory() as uow:
            with pytest.raises(ConcurrencyError):
                await change_and_commit(uow, lambda u: u.orders.save(stale))
        stored = await _stored(uow_factory, order.order_id)
        assert stored is not None
        assert stored.status is OrderStatus.PAYMENT_PENDING

    async def test_a_loaded_aggregate_can_be_saved_again_after_its_commit(
        self, uow_factory: UnitOfWorkFactory
    ) -> None:
        """A commit moves the saved object's version on, so a later unit can save it again."""
        order = new_order()
        await _store(uow_factory, order)
        async with uow_factory() as uow:
            loaded = await uow.orders.get(order.order_id)
            assert loaded is not None
            version = loaded.version
            loaded.start_payment(PaymentId(uuid4()), now=T0, ids=new_id)
            await uow.orders.save(loaded)
            await uow.commit()
        started = uow.collect_new_events()
        assert loaded.version > version

        async with uow_factory() as uow:
            loaded.cancel(now=T0 + timedelta(seconds=1), ids=new_id)
            await uow.orders.save(loaded)
            await uow.commit()
        cancelled = uow.collect_new_events()
        assert [type(e) for e in cancelled] == [OrderCancelled], "an old event was sent again"
        assert not set(_ids(started)) & set(_ids(cancelled))
        stored = await _stored(uow_factory, order.order_id)
        assert stored is not None
        assert stored.status is OrderStatus.CANCELLED

    async def test_an_added_aggregate_can_be_saved_after_its_commit(
        self, uow_factory: UnitOfWorkFactory
    ) -> None:
        """After ``add`` and commit, the same object saves in a new unit without a conflict."""
        order = new_order()
        async with uow_factory() as uow:
            await uow.orders.add(order)
            await uow.commit()
        created = uow.collect_new_events()
        assert order.version > 0
        reloaded = await _stored(uow_factory, order.order_id)
        assert reloaded is not None
        assert reloaded.version == order.version

        async with uow_factory() as uow:
            order.cancel(now=T0, ids=new_id)
            await uow.orders.save(order)
            await uow.commit()
        cancelled = uow.collect_new_events()
        assert [type(e) for e in cancelled] == [OrderCancelled], "an old event was sent again"
        assert not set(_ids(created)) & set(_ids(cancelled))

    # --- events ------------------------------------------------------------------------

    async def test_committed_events_are_collected_once_after_commit(
        self, uow_factory: UnitOfWorkFactory
    ) -> None:
        """Added and saved aggregates' events and ``publish_on_commit`` ones, in their order."""
        existing = new_order()
        await _store(uow_factory, existing)
        order = new_order()
        payment = new_payment(order)
        order.start_payment(payment.payment_id, now=T0, ids=new_id)
        extra = _extra_event()
        async with uow_factory() as uow:
            await uow.orders.add(order)
            await uow.payments.add(payment)
            loaded = await uow.orders.get(existing.order_id)
            assert loaded is not None
            loaded.cancel(now=T0, ids=new_id)
            await uow.orders.save(loaded)
            uow.publish_on_commit(extra)
            assert uow.collect_new_events() == [], "events announced before the commit"
            await uow.commit()
        events = uow.collect_new_events()
        assert uow.collect_new_events() == [], "events collected twice"
        ids = _ids(events)
        assert len(ids) == len(set(ids)), "an event was announced twice"
        by_type = [type(e).__name__ for e in events]
        assert sorted(by_type) == [
            "OrderCancelled",
            "OrderCreated",
            "OrderPaymentStarted",
            "PaymentInitiated",
            "TicketIssued",
        ]
        assert extra.event_id in ids
        assert by_type.index("OrderCreated") < by_type.index("OrderPaymentStarted")

    async def test_a_failed_commit_stores_nothing_and_announces_nothing(
        self, uow_factory: UnitOfWorkFactory
    ) -> None:
        """A conflict refuses the whole unit: its other changes and events are gone too."""
        order = new_order()
        await _store(uow_factory, order)
        stale = await _stored(uow_factory, order.order_id)
        assert stale is not None

        async def cancel(uow: UnitOfWork) -> None:
            fresh = await uow.orders.get(order.order_id)
            assert fresh is not None
            fresh.cancel(now=T0, ids=new_id)
            await uow.orders.save(fresh)

        await in_unit(uow_factory, cancel)
        bystander, user = new_order(), new_user()
        stale.start_payment(PaymentId(uuid4()), now=T0, ids=new_id)

        async def change(u: UnitOfWork) -> None:
            await u.orders.add(bystander)
            await u.users.add(user)
            u.publish_on_commit(_extra_event())
            await u.orders.save(stale)

        async with uow_factory() as uow:
            with pytest.raises(ConcurrencyError):
                await change_and_commit(uow, change)
        assert uow.collect_new_events() == []
        assert await _stored(uow_factory, bystander.order_id) is None
        assert await _stored_user(uow_factory, user.user_id) is None

    async def test_a_duplicate_refuses_the_whole_unit(self, uow_factory: UnitOfWorkFactory) -> None:
        """A unique key taken meanwhile by another unit: nothing of this unit is stored."""
        taken = new_user()
        bystander, late = new_order(), new_user(email=taken.email)
        async with uow_factory() as uow:
            await uow.orders.add(bystander)
            await in_unit(uow_factory, lambda other: other.users.add(taken))
            with pytest.raises(EmailTaken):
                await change_and_commit(uow, lambda u: u.users.add(late))
        assert uow.collect_new_events() == []
        assert await _stored(uow_factory, bystander.order_id) is None
        assert await _stored_user(uow_factory, late.user_id) is None

    # --- memory ------------------------------------------------------------------------

    async def test_a_finished_unit_is_freed_without_the_garbage_collector(
        self, uow_factory: UnitOfWorkFactory
    ) -> None:
        """A unit that used every repository is gone as soon as nobody holds it.

        A unit in a reference cycle waits for the garbage collector; a server making
        hundreds a second then spends much of its CPU, and long pauses, collecting them.
        """
        order = new_order()
        payment = new_payment(order)
        gc.collect()
        gc.disable()
        try:
            async with uow_factory() as uow:
                await uow.orders.add(order)
                await uow.payments.add(payment)
                assert await uow.orders.get(order.order_id) is not None
                await uow.users.get(UserId(uuid4()))
                await uow.tickets.list_for_order(order.order_id)
                await uow.processed_events.add("contract", uuid4())
                await uow.commit()
            assert [type(e) for e in uow.collect_new_events()][:1] == [OrderCreated]
            again = uow_factory()  # and one left by an error
            with contextlib.suppress(_Oops):
                async with again:
                    await again.users.get(UserId(uuid4()))
                    raise _Oops
            units = [weakref.ref(uow), weakref.ref(again)]
            del uow, again
            assert [unit() for unit in units] == [None, None], "a unit outlived its last user"
        finally:
            gc.enable()
