"""The partition actor: the one place where a partition's seat holds are decided.

One actor owns one partition number and every ``(session, area)`` inventory that
routes to it. Callers put commands into its mailbox and await the reply. The actor
drains the whole mailbox, decides every command in one pass against its in-memory
inventories, writes the decisions through to the lock store in **one** batched call,
then applies what the store granted and answers. Commands of one partition are thus
decided strictly in arrival order, by one task, without locks.

An inventory is rebuilt from the lock store and the sold tickets the first time a
command needs it, before that command is answered — so an actor that takes over a
partition (restart, failover) never answers from a blank state.

Where partitions move between processes (workers holding leases), the actor asks its
``tenure`` before deciding each batch: the epoch of the lease this process holds on the
partition now, or ``None``. Without a lease it decides nothing (``SeatingUnavailable``:
try again, the new owner answers); under a new epoch it forgets what it knew and
rebuilds. So an owner that was paused past its lease (SIGSTOP, a long GC, a VM
migration) and resumed cannot answer from memory that another owner has since made
stale — a refusal it decides is true of the store when it decides it.

One module, over 500 lines: the actor's batch (decide, write, apply, answer) and its
rebuild are one loop; splitting it would put the hot path across modules.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import attrs
import structlog

from openticket.application.correlation import correlation_id
from openticket.application.errors import SeatingUnavailable
from openticket.application.ports.clock import Clock, IdGenerator
from openticket.application.ports.lifecycle import stop_task
from openticket.application.ports.lock_store import (
    AcquireHold,
    Done,
    ExtendHold,
    Granted,
    LockOp,
    LockResult,
    LockStore,
    MarkSold,
    Refused,
    ReleaseHold,
    ReleaseSold,
    RestoreHold,
)
from openticket.application.seating.commands import (
    ExtendSeats,
    HoldSeats,
    ReadSeats,
    ReleaseSeats,
    ReturnSeats,
    SaleRecorded,
    SeatCommand,
    SeatsByStatus,
    SellSeats,
)
from openticket.application.seating.router import PartitionKey
from openticket.domain.seating import (
    HoldExpired,
    InventorySnapshot,
    NotHolder,
    SeatHold,
    SeatHoldRejected,
    SeatInventory,
    SeatStatus,
    SeatsUnavailable,
    StaleFencingToken,
)
from openticket.domain.shared import (
    AreaId,
    DomainError,
    DomainEvent,
    HoldId,
    OrderId,
    SeatId,
    SessionId,
)


@attrs.frozen(kw_only=True)
class PartitionLoaded(DomainEvent):
    """An actor (re)built a partition: the status of each of its seats at that moment.

    Published in order with the partition's later decisions, so whoever keeps a copy of
    seat statuses (the shared seat-status cache) can start from it.
    """

    session_id: SessionId
    area_id: AreaId
    held: tuple[SeatId, ...]
    sold: tuple[SeatId, ...]
    available: tuple[SeatId, ...]


_log = structlog.get_logger("openticket.seating")

SeatLayout = Callable[[SessionId, AreaId], Awaitable[frozenset[SeatId]]]
"""The seats of a session's area (from the catalog). Raises ``NotFound`` for neither."""
SoldSeats = Callable[[SessionId, AreaId], Awaitable[Mapping[SeatId, OrderId]]]
"""Seats with live tickets in a session's area, and their orders (from the database)."""
Tenure = Callable[[], int | None]
"""The epoch of the lease under which this process owns the partition now; ``None``
while it holds none. Epochs only grow: a later claim has a larger one."""
EventSink = Callable[[list[DomainEvent], dict[UUID, str]], None]
"""Receives the events of each decided batch, in order, and the request id (correlation)
of those a request caused, by event id. Must not block."""


# --- what only the actor is asked ----------------------------------------------------


@attrs.frozen
class ExpireHolds:
    """Expire every hold of this partition that is due now (the sweep's housekeeping)."""


Mail = tuple[SeatCommand[Any] | ExpireHolds, PartitionKey | None, "asyncio.Future[Any]", str | None]
"""A mailbox item: the command, its partition key (none for ``ExpireHolds``), the reply
future and the request id (correlation) of the request that sent it."""


# --- the actor --------------------------------------------------------------------


class _Plan:
    """What the first pass decided for one command."""

    __slots__ = (
        "command",
        "correlation",
        "error",
        "events",
        "hold",
        "inventory",
        "key",
        "op_index",
        "reply",
        "result",
    )

    inventory: SeatInventory
    """The inventory of the command's partition key; set once loaded (never read before)."""

    def __init__(
        self,
        command: SeatCommand[Any] | ExpireHolds,
        key: PartitionKey | None,
        reply: asyncio.Future[Any],
        correlation: str | None,
    ) -> None:
        self.command = command
        self.key = key
        self.reply = reply
        self.correlation = correlation
        self.events = (0, 0)
        """Where this command's events are in the batch's event list (start, end)."""
        self.op_index: int | None = None
        self.error: BaseException | None = None
        self.result: Any = None
        self.hold: SeatHold | None = None
        """The live hold a sale is of, as this actor knows it."""


class _Batch:
    """What the first pass has decided so far in one batch, per partition key."""

    __slots__ = ("claimed", "expires_at", "freed", "now", "ops", "taken", "touched")

    def __init__(self, now: datetime, expires_at: datetime) -> None:
        self.now = now
        self.expires_at = expires_at
        self.ops: list[LockOp] = []
        self.touched: set[HoldId] = set()
        self.claimed: dict[PartitionKey, set[SeatId]] = {}
        self.freed: dict[PartitionKey, set[SeatId]] = {}
        self.taken: tuple[SeatId, ...] = ()
        """The seats in the way of the hold just refused."""

    def freed_in(self, key: PartitionKey) -> set[SeatId]:
        """Seats released earlier in this batch in a partition key."""
        return self.freed.setdefault(key, set())


class PartitionActor:
    """Decides the seat commands of one partition, in order, in batches."""

    def __init__(
        self,
        partition: int,
        *,
        lock_store: LockStore,
        layout: SeatLayout,
        sold_seats: SoldSeats,
        clock: Clock,
        ids: IdGenerator,
        hold_ttl: timedelta,
        emit: EventSink,
        tenure: Tenure | None = None,
    ) -> None:
        self.partition = partition
        self.tenure = tenure
        """Asked before each batch (see the module docstring); ``None``: always owned."""
        self._epoch: int | None = None
        """The tenure's epoch the loaded inventories belong to."""
        self._store = lock_store
        self._layout = layout
        self._sold_seats = sold_seats
        self._clock = clock
        self._new_id = ids.new_id
        self._ttl = hold_ttl
        self._emit = emit
        self._inventories: dict[PartitionKey, SeatInventory] = {}
        self._mailbox: list[Mail] = []
        self._idle: asyncio.Future[None] | None = None
        """Set while the actor waits for mail; the next command wakes it."""
        self._task: asyncio.Task[None] | None = None
        self.batches = 0
        """Batches decided (one lock-store call each)."""
        self.decided = 0
        """Commands decided: ``decided / batches`` is the mean batch size."""

    # --- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        """Begin consuming the mailbox."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"partition-actor-{self.partition}")

    async def stop(self) -> None:
        """Stop consuming; commands still queued are refused with ``SeatingUnavailable``."""
        task, self._task = self._task, None
        await stop_task(task)
        mailbox, self._mailbox = self._mailbox, []
        for _, _, reply, _ in mailbox:
            if not reply.done():
                reply.set_exception(SeatingUnavailable(f"partition {self.partition} stopped"))

    def forget(self) -> None:
        """Drop every in-memory inventory (as a crash would); they are rebuilt on next use."""
        self._inventories.clear()

    @property
    def mailbox_depth(self) -> int:
        """Commands waiting for this actor's next batch."""
        return len(self._mailbox)

    @property
    def running(self) -> bool:
        """Whether the actor consumes its mailbox."""
        return self._task is not None and not self._task.done()

    # --- asking ----------------------------------------------------------------------

    def submit(
        self, command: SeatCommand[Any] | ExpireHolds, key: PartitionKey | None
    ) -> asyncio.Future[Any]:
        """Queue ``command`` (of ``key``, this partition's); the future resolves to its reply.

        The future raises the command's error instead. ``key`` is ``None`` only for
        ``ExpireHolds``, which is about the whole partition.
        """
        task = self._task
        if task is None:
            reply: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            reply.set_exception(SeatingUnavailable(f"partition {self.partition} is not running"))
            return reply
        reply = task.get_loop().create_future()
        self._mailbox.append((command, key, reply, correlation_id.get()))
        idle = self._idle
        if idle is not None and not idle.done():
            idle.set_result(None)
        return reply

    def inventory(self, key: PartitionKey) -> SeatInventory | None:
        """The loaded inventory of a session's area, if this actor has loaded it."""
        return self._inventories.get(key)

    async def ensure_loaded(self, key: PartitionKey) -> SeatInventory:
        """The inventory of ``key``, rebuilt from the stores if not loaded yet.

        Raises ``SeatingUnavailable`` if this process does not own the partition now.
        """
        if not self._in_tenure():
            raise self._not_owned()
        inventory = self._inventories.get(key)
        if inventory is None:
            inventory = await self._rebuild(key)
        return inventory

    # --- the loop --------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            if not self._mailbox:
                self._idle = idle = asyncio.get_running_loop().create_future()
                await idle
                self._idle = None
            batch, self._mailbox = self._mailbox, []
            try:
                await self._decide(batch)
            except Exception as e:  # the actor must survive; every caller gets the error
                for _, _, reply, _ in batch:
                    if not reply.done():
                        reply.set_exception(e)

    def _in_tenure(self) -> bool:
        """Whether this process owns the partition now; what an older lease knew is dropped."""
        tenure = self.tenure
        if tenure is None:
            return True
        epoch = tenure()
        if epoch != self._epoch:
            self._inventories.clear()
            self._epoch = epoch
        return epoch is not None

    def _not_owned(self) -> SeatingUnavailable:
        return SeatingUnavailable(
            f"partition {self.partition} is not owned by this process now; try again"
        )

    async def _rebuild(self, key: PartitionKey) -> SeatInventory:
        epoch = self._epoch
        session_id, area_id = key.session_id, key.area_id
        seat_ids = await self._layout(session_id, area_id)
        stored = await self._store.load(session_id, area_id)
        sold = {**stored.sold, **await self._sold_seats(session_id, area_id)}
        inventory = SeatInventory.rebuild(
            session_id=session_id,
            area_id=area_id,
            seat_ids=seat_ids,
            snapshot=InventorySnapshot(
                holds=stored.holds, sold=sold, last_fencing_token=stored.last_fencing_token
            ),
            now=self._clock.now(),
            hold_ttl=self._ttl,
        )
        if self._epoch != epoch:  # the partition changed hands while we read
            raise self._not_owned()
        # a rebuild that raced another command for the same key keeps the first
        kept = self._inventories.setdefault(key, inventory)
        if kept is inventory:
            self._emit([self._loaded(inventory)], {})
        return kept

    def _loaded(self, inventory: SeatInventory) -> PartitionLoaded:
        now = self._clock.now()
        by_status: dict[SeatStatus, list[SeatId]] = {s: [] for s in SeatStatus}
        for seat in inventory.seat_ids:
            by_status[inventory.status(seat, now)].append(seat)
        return PartitionLoaded(
            event_id=self._new_id(),
            occurred_at=now,
            session_id=inventory.session_id,
            area_id=inventory.area_id,
            held=tuple(by_status[SeatStatus.HELD]),
            sold=tuple(by_status[SeatStatus.SOLD]),
            available=tuple(by_status[SeatStatus.AVAILABLE]),
        )

    async def _decide(self, batch: list[Mail]) -> None:
        self.batches += 1
        self.decided += len(batch)
        plans = [_Plan(*mail) for mail in batch]
        if not self._in_tenure():
            self._refuse_all(plans)
            return
        epoch = self._epoch
        inventories = self._inventories
        for plan in plans:
            key = plan.key
            if key is not None:
                inventory = inventories.get(key)
                if inventory is None:
                    try:
                        inventory = await self._rebuild(key)
                    except Exception as e:  # unknown session/area, store down: this command fails
                        plan.error = e
                        continue
                plan.inventory = inventory
        if self.tenure is not None and (not self._in_tenure() or self._epoch != epoch):
            self._refuse_all(plans)  # lost (or lost and won again) while loading
            return
        now = self._clock.now()
        events: list[DomainEvent] = []
        ops = self._plan(plans, now, events)
        results: Sequence[LockResult] = ()
        if ops:
            try:
                results = await self._store.execute(ops)
                results = await self._restore_forgotten(plans, ops, results)
            except Exception as e:  # the store's answer is unknown: nothing is applied
                for plan in plans:
                    if plan.op_index is not None:
                        plan.op_index = None
                        plan.error = e
        self._apply(plans, results, now, events)
        if events:
            self._emit(events, _correlations(plans, events) if self._correlated(plans) else {})

    def _refuse_all(self, plans: list[_Plan]) -> None:
        """Answer a batch this process may not decide: nothing was decided, try again.

        Expiring holds is the owner's housekeeping: without a lease it is simply not due.
        """
        for plan in plans:
            if plan.reply.done():
                continue
            if isinstance(plan.command, ExpireHolds):
                plan.reply.set_result(None)
            else:
                plan.reply.set_exception(self._not_owned())

    async def _restore_forgotten(
        self, plans: list[_Plan], ops: list[LockOp], results: Sequence[LockResult]
    ) -> Sequence[LockResult]:
        """Sales the store refused of holds this actor knows live: restore them, sell again.

        A lock store that lost its state (Redis restarted without persistence, flushed)
        no longer has a hold the buyer is paying for. The actor granted it, keeps it and
        owns the partition: it locks the hold's seats again as they were and sells
        them, all in one more call. Where the store has someone else's lock or sale on a
        seat, the restore is refused and the sale stays refused.
        """
        forgotten = [
            (plan.op_index, plan.hold)
            for plan in plans
            if plan.hold is not None
            and plan.op_index is not None
            and isinstance(results[plan.op_index], Refused)
        ]
        if not forgotten:
            return results
        again: list[LockOp] = []
        for index, hold in forgotten:
            again += [RestoreHold(hold=hold), ops[index]]
        answers = await self._store.execute(again)
        mended = list(results)
        for n, (index, hold) in enumerate(forgotten):
            sold = answers[2 * n + 1]
            if isinstance(sold, Done):
                mended[index] = sold
                _log.warning(
                    "lock_store_forgot_a_hold", partition=self.partition, hold_id=str(hold.hold_id)
                )
        return mended

    # --- first pass: decide in memory, collect the store operations -------------------

    def _plan(self, plans: list[_Plan], now: datetime, events: list[DomainEvent]) -> list[LockOp]:
        batch = _Batch(now, now + self._ttl)
        for plan in plans:
            if plan.error is not None:
                continue
            command, key = plan.command, plan.key
            if key is None:  # ExpireHolds: about the whole partition
                self._expire(now, batch.ops, events)
                continue
            try:
                if isinstance(command, HoldSeats):
                    op: LockOp | None = self._plan_hold(command, key, plan.inventory, batch)
                    if op is None:  # refused: no store call, no exception on the hot path
                        plan.error = error = SeatsUnavailable(batch.taken)
                        events.append(self._rejection(command, error, now))
                        plan.events = (len(events) - 1, len(events))
                        continue
                elif isinstance(command, SellSeats):
                    op = self._plan_sale(command, plan, batch)
                elif isinstance(command, ReleaseSeats):
                    hold = self._live_hold(plan.inventory, command.hold_id, batch)
                    batch.touched.add(hold.hold_id)
                    batch.freed_in(key).update(hold.seat_ids)
                    op = ReleaseHold(
                        session_id=command.session_id,
                        area_id=command.area_id,
                        hold_id=hold.hold_id,
                        seat_ids=hold.seat_ids,
                    )
                elif isinstance(command, ExtendSeats):
                    hold = self._live_hold(plan.inventory, command.hold_id, batch)
                    op = ExtendHold(
                        session_id=command.session_id,
                        area_id=command.area_id,
                        hold_id=hold.hold_id,
                        seat_ids=hold.seat_ids,
                        expires_at=batch.expires_at,
                    )
                elif isinstance(command, ReturnSeats):
                    op = self._plan_return(command, plan)
                elif isinstance(command, ReadSeats):
                    plan.result = _by_status(plan.inventory, now)
                    op = None
                else:
                    raise TypeError(f"not a seat command: {command!r}")
                if op is not None:
                    plan.op_index = len(batch.ops)
                    batch.ops.append(op)
            except DomainError as e:
                plan.error = e
                if isinstance(command, HoldSeats):
                    events.append(self._rejection(command, e, now))
        return batch.ops

    @staticmethod
    def _plan_hold(
        command: HoldSeats, key: PartitionKey, inventory: SeatInventory, batch: _Batch
    ) -> LockOp | None:
        claimed, freed = batch.claimed, batch.freed
        mine = claimed.get(key) if claimed else None
        # (a reused hold id is refused when the hold is granted: ``SeatInventory.grant``)
        taken = inventory.check_hold(
            command.seat_ids,
            command.max_seats,
            batch.now,
            claimed=mine,
            freed=freed.get(key) if freed else None,
        )
        if taken:
            batch.taken = taken
            return None
        if mine is None:
            claimed[key] = set(command.seat_ids)
        else:
            mine.update(command.seat_ids)
        return AcquireHold(
            hold_id=command.hold_id,
            session_id=command.session_id,
            area_id=command.area_id,
            holder_id=command.holder_id,
            order_id=command.order_id,
            seat_ids=command.seat_ids,
            expires_at=batch.expires_at,
            after_token=inventory.last_fencing_token,
        )

    def _plan_sale(self, command: SellSeats, plan: _Plan, batch: _Batch) -> LockOp | None:
        _untouched(command.hold_id, batch)
        hold = plan.inventory.check_sale(
            command.hold_id, command.fencing_token, command.order_id, command.seat_ids, batch.now
        )
        if hold is None:
            plan.result = SaleRecorded(command.seat_ids, replayed=True)
            return None
        batch.touched.add(hold.hold_id)
        plan.hold = hold
        return MarkSold(
            session_id=command.session_id,
            area_id=command.area_id,
            hold_id=hold.hold_id,
            seat_ids=hold.seat_ids,
            fencing_token=hold.fencing_token,
        )

    @staticmethod
    def _plan_return(command: ReturnSeats, plan: _Plan) -> LockOp | None:
        sold_to_order = plan.inventory.sold_to_order(command.order_id, command.seat_ids)
        if not sold_to_order:
            plan.result = ()
            return None
        return ReleaseSold(
            session_id=command.session_id, area_id=command.area_id, seat_ids=sold_to_order
        )

    @staticmethod
    def _correlated(plans: list[_Plan]) -> bool:
        return any(plan.correlation is not None for plan in plans)

    @staticmethod
    def _live_hold(inventory: SeatInventory, hold_id: HoldId, batch: _Batch) -> SeatHold:
        """The live hold, unless a command earlier in the batch already released or sold it."""
        _untouched(hold_id, batch)
        return inventory.live_hold(hold_id, batch.now)

    def _expire(self, now: datetime, ops: list[LockOp], events: list[DomainEvent]) -> None:
        for inventory in self._inventories.values():
            for hold in inventory.expire_due(now, ids=self._new_id):
                # the store forgets an expired lock by itself; this is housekeeping only
                ops.append(
                    ReleaseHold(
                        session_id=inventory.session_id,
                        area_id=inventory.area_id,
                        hold_id=hold.hold_id,
                        seat_ids=hold.seat_ids,
                    )
                )
            events.extend(inventory.collect_events())

    def _rejection(self, command: HoldSeats, error: DomainError, now: datetime) -> SeatHoldRejected:
        unavailable = error.seat_ids if isinstance(error, SeatsUnavailable) else ()
        return SeatHoldRejected(
            event_id=self._new_id(),
            occurred_at=now,
            session_id=command.session_id,
            area_id=command.area_id,
            hold_id=command.hold_id,
            order_id=command.order_id,
            seat_ids=command.seat_ids,
            holder_id=command.holder_id,
            unavailable_seat_ids=unavailable,
            reason=error.code,
        )

    # --- second pass: apply what the store granted, answer ---------------------------

    def _apply(
        self,
        plans: list[_Plan],
        results: Sequence[LockResult],
        now: datetime,
        events: list[DomainEvent],
    ) -> None:
        for plan in plans:
            reply = plan.reply
            command = plan.command
            if plan.error is None and plan.op_index is not None and plan.key is not None:
                start = len(events)
                result = results[plan.op_index]
                inventory = plan.inventory
                try:
                    plan.result = self._apply_one(command, result, inventory, now)
                except DomainError as e:
                    plan.error = e
                    if isinstance(command, HoldSeats):
                        events.append(self._rejection(command, e, now))
                events.extend(inventory.collect_events())
                plan.events = (start, len(events))
            if reply.done():  # the caller gave up waiting; the decision stands
                continue
            if plan.error is not None:
                # the traceback would tie the whole batch into a reference cycle; the
                # caller's await raises the error afresh with its own traceback
                error = plan.error
                reply.set_exception(
                    error if error.__traceback__ is None else error.with_traceback(None)
                )
            else:
                reply.set_result(plan.result)

    def _apply_one(
        self,
        command: SeatCommand[Any] | ExpireHolds,
        result: LockResult,
        inventory: SeatInventory,
        now: datetime,
    ) -> Any:
        ids = self._new_id
        if isinstance(command, HoldSeats):
            if not isinstance(result, Granted):
                taken = result.seat_ids if isinstance(result, Refused) else command.seat_ids
                raise SeatsUnavailable(taken)
            inventory.grant(result.hold, now=now, ids=ids)
            return result.hold
        if isinstance(command, SellSeats):
            if isinstance(result, Refused):
                raise StaleFencingToken(
                    f"the lock store refused the sale of {', '.join(result.seat_ids)}"
                )
            inventory.confirm_sale(command.hold_id, command.fencing_token, now=now, ids=ids)
            return SaleRecorded(command.seat_ids)
        if isinstance(command, ReleaseSeats):
            return inventory.release(command.hold_id, now=now, ids=ids)
        if isinstance(command, ExtendSeats):
            if isinstance(result, Refused):
                # the store no longer has this hold: it is gone for us too
                inventory.release(command.hold_id, now=now, ids=ids)
                raise HoldExpired(f"hold {command.hold_id} is no longer in the lock store")
            return inventory.extend(command.hold_id, now=now, ids=ids)
        if isinstance(command, ReturnSeats):
            returned = inventory.sold_to_order(command.order_id, command.seat_ids)
            inventory.return_seats(
                returned, order_id=command.order_id, hold_id=command.hold_id, now=now, ids=ids
            )
            return returned
        raise TypeError(f"not a seat command: {command!r}")


def _untouched(hold_id: HoldId, batch: _Batch) -> None:
    """Refuse a hold a command earlier in the batch already released or sold (``NotHolder``)."""
    if hold_id in batch.touched:
        raise NotHolder(f"no hold {hold_id} in this partition")


def _by_status(inventory: SeatInventory, now: datetime) -> SeatsByStatus:
    """The seats of each status now (a ``ReadSeats`` reply)."""
    by_status: dict[SeatStatus, list[SeatId]] = {}
    for seat in inventory.seat_ids:
        by_status.setdefault(inventory.status(seat, now), []).append(seat)
    return {status: tuple(seats) for status, seats in by_status.items()}


def _correlations(plans: list[_Plan], events: list[DomainEvent]) -> dict[UUID, str]:
    """The request id of every event a request's command caused, by event id."""
    return {
        event.event_id: plan.correlation
        for plan in plans
        if plan.correlation is not None
        for event in events[plan.events[0] : plan.events[1]]
    }
