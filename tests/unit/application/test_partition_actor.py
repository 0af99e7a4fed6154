"""Partition actors: batching, contention, fencing across actors, any ``LockStore``."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Sequence
from datetime import timedelta
from uuid import UUID

import attrs
import pytest

from openticket import bootstrap
from openticket.adapters.memory import (
    FakeClock,
    MemoryLockStore,
    SequentialIdGenerator,
    SequentialTicketCodes,
)
from openticket.application.errors import SeatingUnavailable
from openticket.application.ports.clock import Clock
from openticket.application.ports.lock_store import (
    AcquireHold,
    Done,
    ExtendHold,
    Granted,
    LockOp,
    LockResult,
    MarkSold,
    Refused,
    ReleaseHold,
    ReleaseSold,
    RestoreHold,
)
from openticket.application.seating.api import seat_statuses
from openticket.application.seating.commands import HoldSeats, ReleaseSeats, SellSeats
from openticket.application.seating.router import PartitionRouter
from openticket.application.seating.service import SeatingService, TicketedSeats
from openticket.domain.ordering import OrderStatus
from openticket.domain.seating import (
    InventorySnapshot,
    SeatHold,
    SeatHoldRejected,
    SeatStatus,
    SeatsUnavailable,
)
from openticket.domain.shared import (
    AreaId,
    DomainEvent,
    HoldId,
    OrderId,
    SeatId,
    SessionId,
    UserId,
)
from openticket.domain.ticketing import TicketStatus
from openticket.domain.venue import parse_seat_id
from openticket.entrypoints.settings import Settings
from openticket.testing.world import World, build_world


class RecordingLockStore:
    """A second ``LockStore``, written here from the port's rules alone; it records batches."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.batches: list[list[LockOp]] = []
        self.locks: dict[tuple[SessionId, SeatId], SeatHold] = {}
        self.sold: dict[tuple[SessionId, SeatId], OrderId] = {}
        self.tokens = itertools.count(1)
        self.last_token = 0

    def _live(self, session: SessionId, seat: SeatId) -> SeatHold | None:
        hold = self.locks.get((session, seat))
        return hold if hold is not None and self.clock.now() < hold.expires_at else None

    async def execute(self, ops: Sequence[LockOp]) -> list[LockResult]:
        self.batches.append(list(ops))
        return [self._one(op) for op in ops]

    def _one(self, op: LockOp) -> LockResult:
        if isinstance(op, AcquireHold):
            taken = tuple(
                s
                for s in op.seat_ids
                if (op.session_id, s) in self.sold or self._live(op.session_id, s)
            )
            if taken:
                return Refused(taken)
            self.last_token = max(next(self.tokens), op.after_token + 1)
            self.tokens = itertools.count(self.last_token + 1)
            hold = SeatHold(
                hold_id=op.hold_id,
                session_id=op.session_id,
                area_id=op.area_id,
                holder_id=op.holder_id,
                order_id=op.order_id,
                seat_ids=op.seat_ids,
                fencing_token=self.last_token,
                expires_at=op.expires_at,
            )
            for seat in op.seat_ids:
                self.locks[(op.session_id, seat)] = hold
            return Granted(hold)
        if isinstance(op, ReleaseSold):
            freed = tuple(s for s in op.seat_ids if self.sold.pop((op.session_id, s), None))
            return Done(freed)
        if isinstance(op, RestoreHold):
            hold = op.hold
            in_way = tuple(
                s
                for s in hold.seat_ids
                if (hold.session_id, s) in self.sold
                or ((live := self._live(hold.session_id, s)) is not None and live != hold)
            )
            if in_way:
                return Refused(in_way)
            for seat in hold.seat_ids:
                self.locks[(hold.session_id, seat)] = hold
            if hold.fencing_token >= self.last_token:
                self.last_token = hold.fencing_token
                self.tokens = itertools.count(self.last_token + 1)
            return Done(hold.seat_ids)
        mine = [self._live(op.session_id, s) for s in op.seat_ids]
        if isinstance(op, ReleaseHold):
            freed = tuple(
                s for s, h in zip(op.seat_ids, mine, strict=True) if h and h.hold_id == op.hold_id
            )
            for seat in freed:
                del self.locks[(op.session_id, seat)]
            return Done(freed)
        if not all(h is not None and h.hold_id == op.hold_id for h in mine):
            return Refused(op.seat_ids)
        if isinstance(op, ExtendHold):
            for seat, hold in zip(op.seat_ids, mine, strict=True):
                assert hold is not None
                self.locks[(op.session_id, seat)] = attrs.evolve(hold, expires_at=op.expires_at)
            return Done(op.seat_ids)
        assert isinstance(op, MarkSold)
        if any(h is not None and h.fencing_token != op.fencing_token for h in mine):
            return Refused(op.seat_ids)
        for seat, hold in zip(op.seat_ids, mine, strict=True):
            assert hold is not None
            del self.locks[(op.session_id, seat)]
            self.sold[(op.session_id, seat)] = hold.order_id
        return Done(op.seat_ids)

    async def load(self, session_id: SessionId, area_id: AreaId) -> InventorySnapshot:
        holds = {
            h.hold_id: h
            for (s, _), h in self.locks.items()
            if s == session_id and h.area_id == area_id and self.clock.now() < h.expires_at
        }
        sold = {
            seat: order
            for (s, seat), order in self.sold.items()
            if s == session_id and parse_seat_id(seat).area_id == area_id
        }
        return InventorySnapshot(
            holds=tuple(holds.values()), sold=sold, last_fencing_token=self.last_token
        )


async def started_world(lock_store_kind: str) -> tuple[World, FakeClock, object]:
    clock = FakeClock()
    store = RecordingLockStore(clock) if lock_store_kind == "recording" else MemoryLockStore(clock)
    app = bootstrap(
        Settings(partitions=2, hold_ttl_seconds=120),
        clock=clock,
        ids=SequentialIdGenerator(3),
        ticket_codes=SequentialTicketCodes(3),
        lock_store=store,
    )
    world = await build_world(app, clock)
    await app.start(sweeper=False)
    return world, clock, store


@pytest.mark.parametrize("lock_store_kind", ["memory", "recording"])
async def test_the_same_actors_run_unchanged_on_any_lock_store(lock_store_kind: str) -> None:
    world, clock, store = await started_world(lock_store_kind)
    app = world.app
    try:
        buyers = {world.buyer(n).user_id: world.buyer(n) for n in range(8)}
        attempts = await asyncio.gather(
            *(
                app.place_order(b, world.session_id, ["A-1-1", f"A-2-{i + 1}"])
                for i, b in enumerate(buyers.values())
            ),
            return_exceptions=True,
        )
        orders = [a for a in attempts if not isinstance(a, BaseException)]
        refused = [a for a in attempts if isinstance(a, SeatsUnavailable)]
        assert (len(orders), len(refused)) == (1, 7)
        (order,) = orders
        await app.pay(buyers[order.user_id], order.order_id)
        assert (await app.get_order(world.admin, order.order_id)).status is OrderStatus.COMPLETED

        lonely = await app.place_order(world.buyer(20), world.session_id, ["B-1-1"])
        clock.advance(timedelta(seconds=121))
        await app.sweep()
        assert (await app.get_order(world.admin, lonely.order_id)).status is OrderStatus.EXPIRED
        again = await app.place_order(world.buyer(21), world.session_id, ["B-1-1"])
        assert again.status is OrderStatus.CREATED
        if isinstance(store, RecordingLockStore):
            holds = [op for batch in store.batches for op in batch if isinstance(op, AcquireHold)]
            assert len(holds) == 3  # the seven refusals were decided in memory
            assert len(store.batches) < len(holds) + 6  # the eight racing orders shared batches
    finally:
        await app.stop()


@pytest.mark.parametrize("lock_store_kind", ["memory", "recording"])
async def test_a_store_that_forgot_everything_still_sells_what_buyers_pay_for(
    lock_store_kind: str,
) -> None:
    """Reliability 11/28: the lock store restarted empty mid-sale (Redis without persistence).

    The actor still knows the holds it granted: a buyer who pays for one gets it (the
    actor restores it in the store, then sells), new holds get tokens above every token
    the actor saw (not refused as stale), and held or sold seats stay refused.
    """
    world, _, store = await started_world(lock_store_kind)
    app = world.app
    try:
        paying = await app.place_order(world.buyer(1), world.session_id, ["A-1-1", "A-1-2"])
        waiting = await app.place_order(world.buyer(2), world.session_id, ["A-1-3"])
        if isinstance(store, MemoryLockStore):
            store.forget_everything()
        else:
            assert isinstance(store, RecordingLockStore)
            store.locks.clear()
            store.sold.clear()
            store.tokens = itertools.count(1)
            store.last_token = 0
        await app.pay(world.buyer(1), paying.order_id)
        done = await app.get_order(world.admin, paying.order_id)
        assert done.status is OrderStatus.COMPLETED
        tickets = (await app.list_tickets(world.buyer(1))).items
        assert sorted(t.seat_id for t in tickets) == ["A-1-1", "A-1-2"]

        fresh = await app.place_order(world.buyer(3), world.session_id, ["A-1-4"])
        assert fresh.status is OrderStatus.CREATED
        assert fresh.fencing_token > waiting.fencing_token > paying.fencing_token
        for taken in ("A-1-1", "A-1-3"):  # sold; held by a buyer the store forgot
            with pytest.raises(SeatsUnavailable):
                await app.place_order(world.buyer(4), world.session_id, [taken])
    finally:
        await app.stop()


async def test_many_queued_commands_are_decided_in_few_batches() -> None:
    world, _, store = await started_world("recording")
    assert isinstance(store, RecordingLockStore)
    app = world.app
    try:
        seats = [f"A-{r}-{n}" for r in (1, 2) for n in range(1, 11)]
        before = len(store.batches)
        await asyncio.gather(
            *(app.place_order(world.buyer(i), world.session_id, [s]) for i, s in enumerate(seats))
        )
        batches = store.batches[before:]
        assert sum(len(b) for b in batches) == 20
        assert len(batches) <= 3
    finally:
        await app.stop()


async def test_a_thousand_buyers_racing_for_one_seat_get_exactly_one_hold() -> None:
    world, _, _ = await started_world("memory")
    app = world.app
    rejected: list[DomainEvent] = []

    async def collect(event: SeatHoldRejected) -> None:
        rejected.append(event)

    app.bus.subscribe(SeatHoldRejected, "test_collect_rejections", collect)
    try:
        attempts = await asyncio.gather(
            *(app.place_order(world.buyer(i), world.session_id, ["A-1-5"]) for i in range(1000)),
            return_exceptions=True,
        )
        granted = [a for a in attempts if not isinstance(a, BaseException)]
        assert len(granted) == 1
        assert all(isinstance(a, SeatsUnavailable) for a in attempts if a not in granted)
        await app.seating.flush_events()
        assert len(rejected) == 999
    finally:
        await app.stop()


async def test_two_actors_owning_one_partition_still_hold_each_seat_once() -> None:
    """Failover overlap: both actors think the seat is free; the lock store decides."""
    world, clock, store = await started_world("memory")
    app = world.app
    try:
        rival = SeatingService(
            router=PartitionRouter(2),
            lock_store=store,
            layout=app.catalog.seat_layout,
            sold_seats=TicketedSeats(app.catalog._uow),  # the same database
            clock=clock,
            ids=SequentialIdGenerator(99),
            hold_ttl=timedelta(seconds=120),
            publish=app.bus.publish,
        )
        await rival.start()
        session, area = world.session_id, AreaId("A")
        await seat_statuses(rival, session, [area])  # the rival loads its inventory now
        await app.place_order(world.buyer(1), session, ["A-1-8"])

        with pytest.raises(SeatsUnavailable) as refused:
            await rival.ask(
                HoldSeats(
                    session_id=session,
                    area_id=area,
                    hold_id=HoldId(UUID(int=501)),
                    holder_id=UserId(UUID(int=502)),
                    order_id=OrderId(UUID(int=503)),
                    seat_ids=(SeatId("A-1-8"),),
                )
            )
        assert refused.value.seat_ids == ("A-1-8",)
        await rival.stop()
        tickets = (await app.list_tickets(world.buyer(1))).items
        assert all(t.status is TicketStatus.ISSUED for t in tickets)
    finally:
        await app.stop()


class Leases:
    """Which process holds each partition's lease now, with what epoch (the tests move it)."""

    def __init__(self) -> None:
        self.holder: dict[int, tuple[str, int]] = {}
        self.epochs = itertools.count(1)

    def give(self, partition: int, worker: str) -> None:
        self.holder[partition] = (worker, next(self.epochs))

    def lapse(self, partition: int) -> None:
        self.holder.pop(partition, None)

    def tenure_of(self, worker: str) -> Callable[[int], int | None]:
        def tenure(partition: int) -> int | None:
            held = self.holder.get(partition)
            return held[1] if held is not None and held[0] == worker else None

        return tenure


async def test_an_owner_paused_past_its_lease_decides_nothing_from_what_it_knew() -> None:
    """Two workers' actors for one partition, fenced by leases; the first is paused and resumed.

    While it holds no lease it answers ``SeatingUnavailable`` (try again) and changes
    nothing. Once it holds the partition again (a new epoch), it rebuilds: it knows the
    hold the other owner granted meanwhile and sells it, instead of answering ``NotHolder``
    from its memory and leaving a paying buyer refunded.
    """
    world, clock, store = await started_world("memory")
    app = world.app
    leases = Leases()

    def worker(name: str) -> SeatingService:
        seating = SeatingService(
            router=PartitionRouter(2),
            lock_store=store,  # type: ignore[arg-type]
            layout=app.catalog.seat_layout,
            sold_seats=TicketedSeats(app.catalog._uow),
            clock=clock,
            ids=SequentialIdGenerator(hash(name) % 1000),
            hold_ttl=timedelta(seconds=120),
            publish=app.bus.publish,
        )
        seating.fence(leases.tenure_of(name))
        return seating

    first, second = worker("w1"), worker("w2")
    await first.start()
    await second.start()
    session, area = world.session_id, AreaId("A")
    partition = first.router.partition_of(session, area)
    order = OrderId(UUID(int=601))

    def hold(seating: SeatingService, hold_id: int) -> asyncio.Future[SeatHold]:
        return seating.ask(
            HoldSeats(
                session_id=session,
                area_id=area,
                hold_id=HoldId(UUID(int=hold_id)),
                holder_id=UserId(UUID(int=602)),
                order_id=order,
                seat_ids=(SeatId("A-2-2"),),
            )
        )

    try:
        with pytest.raises(SeatingUnavailable):  # nobody holds the lease yet
            await hold(first, 610)
        leases.give(partition, "w1")
        await seat_statuses(first, session, [area])  # w1 knows the area: A-2-2 is free
        leases.lapse(partition)  # w1 is paused past its lease...
        leases.give(partition, "w2")  # ...and w2 takes the partition over
        granted = await hold(second, 611)
        with pytest.raises(SeatingUnavailable):  # w1 resumes: not its partition now
            await first.ask(ReleaseSeats(session_id=session, area_id=area, hold_id=granted.hold_id))
        await first.expire_due()  # its housekeeping is simply not due
        leases.give(partition, "w1")  # w2 hands it back; w1 claims it again

        sale = await first.ask(
            SellSeats(
                session_id=session,
                area_id=area,
                hold_id=granted.hold_id,
                fencing_token=granted.fencing_token,
                order_id=order,
                seat_ids=granted.seat_ids,
            )
        )
        assert sale.seat_ids == ("A-2-2",)
        statuses = await seat_statuses(first, session, [area])
        assert statuses[SeatId("A-2-2")] is SeatStatus.SOLD
    finally:
        await first.stop()
        await second.stop()
        await app.stop()
