"""Seat commands over NATS request/reply, against the real server.

A "worker" (an embedded OpenTicket on its own NATS connection) hosts its partition
actors with ``PartitionHost``; the test sends commands with ``RemoteSeating`` on another
connection. A twin of the worker, built the same way but never on NATS, answers the same
commands locally: the path must give the same results and raise the same errors.
Subjects live under the test's own prefix.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from uuid import UUID

import attrs
import msgspec
import nats
import nats.errors
import pytest
from nats.aio.client import Client
from nats.js.api import StreamConfig
from nats.js.errors import NotFoundError

from openticket import bootstrap
from openticket.adapters import tracing
from openticket.adapters.memory import (
    FakeClock,
    MemoryLockStore,
    SequentialIdGenerator,
    SequentialTicketCodes,
)
from openticket.adapters.nats.command_path import (
    ERROR_CLASSES,
    MAX_COMMANDS_PER_MESSAGE,
    CommandBatch,
    PartitionHost,
    RemoteSeating,
    RemoteSeatingError,
    decode_error,
    encode_error,
)
from openticket.adapters.nats.streams import SEATS, STREAMS, ensure_streams, stream_name
from openticket.application.correlation import correlated, correlation_id
from openticket.application.errors import NotFound, SeatingUnavailable
from openticket.application.ports.errors import AdapterUnavailable, ConcurrencyError
from openticket.application.ports.lock_store import LockOp, LockResult
from openticket.application.seating.api import seat_statuses
from openticket.application.seating.commands import (
    ExtendSeats,
    HoldSeats,
    ReleaseSeats,
    ReturnSeats,
    SaleRecorded,
    SellSeats,
)
from openticket.application.seating.router import PartitionRouter
from openticket.application.seating.service import SeatingService, TicketedSeats
from openticket.domain.seating import (
    HoldExpired,
    InventorySnapshot,
    NotHolder,
    SeatHold,
    SeatsHeld,
    SeatsSpanAreas,
    SeatStatus,
    SeatsUnavailable,
    StaleFencingToken,
    TooManySeats,
)
from openticket.domain.shared import (
    AreaId,
    DomainError,
    HoldId,
    InvalidTransition,
    OrderId,
    SeatId,
    SessionId,
    UserId,
    ValidationError,
)
from openticket.domain.venue import UnknownSeats
from openticket.entrypoints.settings import Settings
from openticket.testing.world import World, build_world

if TYPE_CHECKING:
    from tests.conftest import SpanReader

pytestmark = pytest.mark.nats

PARTITIONS = 4
A, B = AreaId("A"), AreaId("B")
Seating = SeatingService | RemoteSeating


# --- the worker, its twin, the caller ------------------------------------------------------------


class SlowLockStore:
    """A memory lock store whose ``execute`` takes ``delay`` seconds (while ``slow``)."""

    def __init__(self, clock: FakeClock, delay: float) -> None:
        self.inner = MemoryLockStore(clock)
        self.delay = delay
        self.slow = False

    async def execute(self, ops: Sequence[LockOp]) -> list[LockResult]:
        if self.slow:
            await asyncio.sleep(self.delay)
        return await self.inner.execute(ops)

    async def load(self, session_id: SessionId, area_id: AreaId) -> InventorySnapshot:
        return await self.inner.load(session_id, area_id)


@attrs.define
class Side:
    """An embedded OpenTicket with one session on sale, actors running."""

    world: World
    clock: FakeClock
    lock_store: SlowLockStore

    @property
    def seating(self) -> SeatingService:
        return self.world.app.seating

    @property
    def session(self) -> SessionId:
        return self.world.session_id


@contextlib.asynccontextmanager
async def running_side() -> AsyncIterator[Side]:
    clock = FakeClock()
    store = SlowLockStore(clock, delay=0.5)
    app = bootstrap(
        Settings(partitions=PARTITIONS, hold_ttl_seconds=120),
        clock=clock,
        ids=SequentialIdGenerator(7),
        ticket_codes=SequentialTicketCodes(7),
        lock_store=store,
    )
    world = await build_world(app, clock)
    await app.start(sweeper=False)
    try:
        yield Side(world, clock, store)
    finally:
        await app.stop()


@contextlib.asynccontextmanager
async def connected(nats_url: str) -> AsyncIterator[Client]:
    client = await nats.connect(nats_url, connect_timeout=5, allow_reconnect=False)
    try:
        yield client
    finally:
        await client.close()


@contextlib.asynccontextmanager
async def hosting(
    nats_url: str, seating: SeatingService, prefix: str, partitions: Sequence[int] = ()
) -> AsyncIterator[PartitionHost]:
    """A host on a connection of its own, serving ``partitions`` (default: all)."""
    async with connected(nats_url) as client:
        host = PartitionHost(client, seating, prefix=prefix)
        for partition in partitions or range(PARTITIONS):
            await host.serve(partition)
        try:
            yield host
        finally:
            await host.stop()


@pytest.fixture
async def worker(nats_url: str, unique: str) -> AsyncIterator[Side]:
    """The worker: its actors answer on NATS under the prefix ``unique``."""
    async with running_side() as side, hosting(nats_url, side.seating, unique):
        yield side


@pytest.fixture
async def worker_host(nats_url: str, unique: str) -> AsyncIterator[tuple[Side, PartitionHost]]:
    """The worker and its host, for tests that change what the host serves."""
    async with running_side() as side, hosting(nats_url, side.seating, unique) as host:
        yield side, host


@pytest.fixture
async def twin() -> AsyncIterator[Side]:
    """The same world as the worker's, answering in process (no NATS)."""
    async with running_side() as side:
        yield side


@pytest.fixture
def remote(nats_client: Client, unique: str) -> RemoteSeating:
    return RemoteSeating(nats_client, PartitionRouter(PARTITIONS), prefix=unique, timeout=5)


def hold_id(n: int) -> HoldId:
    return HoldId(UUID(int=10_000 + n))


def order_id(n: int) -> OrderId:
    return OrderId(UUID(int=20_000 + n))


def buyer(n: int) -> UserId:
    return UserId(UUID(int=30_000 + n))


def seats(*ids: str) -> list[SeatId]:
    return [SeatId(s) for s in ids]


def hold(
    seating: Seating,
    session: SessionId,
    n: int,
    seat_ids: Sequence[str],
    *,
    area: AreaId = A,
    max_seats: int | None = 4,
) -> Awaitable[SeatHold]:
    return seating.ask(
        HoldSeats(
            session_id=session,
            area_id=area,
            hold_id=hold_id(n),
            holder_id=buyer(n),
            order_id=order_id(n),
            seat_ids=tuple(seats(*seat_ids)),
            max_seats=max_seats,
        )
    )


def release(seating: Seating, session: SessionId, n: int) -> Awaitable[SeatHold]:
    return seating.ask(ReleaseSeats(session_id=session, area_id=A, hold_id=hold_id(n)))


def extend(seating: Seating, session: SessionId, n: int) -> Awaitable[SeatHold]:
    return seating.ask(ExtendSeats(session_id=session, area_id=A, hold_id=hold_id(n)))


@attrs.frozen
class Failure:
    """What a command raised, down to the fields the application reads."""

    cls: type[BaseException]
    text: str
    seat_ids: object

    @classmethod
    def of(cls, error: BaseException) -> Failure:
        return cls(type(error), str(error), getattr(error, "seat_ids", None))


async def outcome(call: Awaitable[Any]) -> Any:
    try:
        return await call
    except Exception as e:
        return Failure.of(e)


Story = Callable[[Seating, FakeClock, SessionId], Awaitable[list[Any]]]


async def purchase_story(seating: Seating, clock: FakeClock, session: SessionId) -> list[Any]:
    """Hold, extend, release, hold again, sell (twice), look, return (twice), look."""
    seen: list[Any] = [await outcome(hold(seating, session, 1, ["A-1-1", "A-1-2"]))]
    clock.advance(30)
    seen.append(await outcome(extend(seating, session, 1)))
    seen.append(await outcome(release(seating, session, 1)))
    second = await outcome(hold(seating, session, 2, ["A-1-1", "A-1-2"]))
    seen.append(second)
    assert isinstance(second, SeatHold)
    sale = SellSeats(
        session_id=session,
        area_id=A,
        hold_id=hold_id(2),
        fencing_token=second.fencing_token,
        order_id=order_id(2),
        seat_ids=second.seat_ids,
    )
    seen.append(await outcome(seating.ask(sale)))
    seen.append(await outcome(seating.ask(sale)))  # a replay
    seen.append(await outcome(hold(seating, session, 3, ["A-2-1"])))
    seen.append(await outcome(seat_statuses(seating, session, [A, B])))
    back = ReturnSeats(
        session_id=session,
        area_id=A,
        hold_id=hold_id(2),
        order_id=order_id(2),
        seat_ids=second.seat_ids,
    )
    seen.append(await outcome(seating.ask(back)))
    seen.append(await outcome(seating.ask(back)))
    seen.append(await outcome(seat_statuses(seating, session, [A])))
    return seen


async def error_story(seating: Seating, clock: FakeClock, session: SessionId) -> list[Any]:
    """One command for each error a seat command can raise."""
    held = await hold(seating, session, 1, ["A-1-1"])
    seen = [
        await outcome(hold(seating, session, 2, ["A-1-1", "A-1-3"])),  # SeatsUnavailable
        await outcome(release(seating, session, 99)),  # NotHolder
        await outcome(  # StaleFencingToken
            seating.ask(
                SellSeats(
                    session_id=session,
                    area_id=A,
                    hold_id=hold_id(1),
                    fencing_token=held.fencing_token + 1,
                    order_id=order_id(1),
                    seat_ids=held.seat_ids,
                )
            )
        ),
        await outcome(hold(seating, session, 3, ["B-1-1"])),  # SeatsSpanAreas
        await outcome(hold(seating, session, 4, ["A-9-9"])),  # UnknownSeats
        await outcome(hold(seating, session, 5, [])),  # ValidationError
        await outcome(hold(seating, session, 6, ["A-2-1", "A-2-2"], max_seats=1)),  # TooMany
        await outcome(hold(seating, session, 7, ["Z-1-1"], area=AreaId("Z"))),  # no area Z
        await outcome(hold(seating, SessionId(UUID(int=404)), 8, ["A-1-1"])),  # NotFound
    ]
    clock.advance(121)
    seen.append(await outcome(extend(seating, session, 1)))  # HoldExpired
    return seen


# --- the same answers as in process -------------------------------------------------------------


async def test_a_purchase_through_the_path_answers_as_the_local_service_does(
    worker: Side, twin: Side, remote: RemoteSeating
) -> None:
    assert worker.session == twin.session  # the same world, built twice

    through_nats = await purchase_story(remote, worker.clock, worker.session)
    in_process = await purchase_story(twin.seating, twin.clock, twin.session)

    assert through_nats == in_process
    first, extended, released, second, sold, replayed, refused, statuses, *_ = through_nats
    assert isinstance(first, SeatHold)
    assert first.seat_ids == ("A-1-1", "A-1-2")
    assert extended.expires_at == first.expires_at + timedelta(seconds=30)
    assert released.hold_id == first.hold_id
    assert second.fencing_token > first.fencing_token
    assert sold == SaleRecorded(("A-1-1", "A-1-2"))
    assert replayed == SaleRecorded(("A-1-1", "A-1-2"), replayed=True)
    assert isinstance(refused, SeatHold)  # A-2-1 was free
    assert statuses[SeatId("A-1-1")] is SeatStatus.SOLD
    assert statuses[SeatId("A-2-1")] is SeatStatus.HELD
    assert statuses[SeatId("B-1-5")] is SeatStatus.AVAILABLE
    assert len(statuses) == 25  # every seat of both areas
    assert through_nats[-3:-1] == [("A-1-1", "A-1-2"), ()]  # returned, then nothing to return
    assert through_nats[-1][SeatId("A-1-1")] is SeatStatus.AVAILABLE


async def test_a_refused_hold_raises_seats_unavailable_naming_the_seats_in_the_way(
    worker: Side, remote: RemoteSeating
) -> None:
    await hold(remote, worker.session, 1, ["A-1-4"])
    with pytest.raises(SeatsUnavailable) as refused:
        await hold(remote, worker.session, 2, ["A-1-3", "A-1-4"])
    assert refused.value.seat_ids == ("A-1-4",)
    assert refused.value.message == "seats not available: A-1-4"


async def test_every_error_comes_back_as_the_same_class_with_the_same_fields(
    worker: Side, twin: Side, remote: RemoteSeating
) -> None:
    through_nats = await error_story(remote, worker.clock, worker.session)
    in_process = await error_story(twin.seating, twin.clock, twin.session)

    assert through_nats == in_process
    assert [f.cls for f in through_nats] == [
        SeatsUnavailable,
        NotHolder,
        StaleFencingToken,
        SeatsSpanAreas,
        UnknownSeats,
        ValidationError,
        TooManySeats,
        ValidationError,
        NotFound,
        HoldExpired,
    ]
    assert through_nats[0].seat_ids == ("A-1-1",)
    assert through_nats[4].seat_ids == ("A-9-9",)


async def test_a_stopped_actor_makes_the_path_answer_seating_unavailable(
    worker: Side, remote: RemoteSeating
) -> None:
    partition = remote.router.partition_of(worker.session, A)
    await worker.seating.actors[partition].stop()

    with pytest.raises(SeatingUnavailable, match=f"partition {partition}"):
        await hold(remote, worker.session, 1, ["A-1-1"])


def test_each_error_class_and_unknown_ones_survive_the_wire() -> None:
    known: list[Exception] = [
        SeatsUnavailable(seats("A-1-1", "A-1-2")),
        UnknownSeats(("A-9-9",)),
        HoldExpired("hold h expired at noon"),
        NotHolder("no hold h in this partition"),
        StaleFencingToken("hold h has token 3, not 4"),
        TooManySeats("at most 4 seats per order"),
        SeatsSpanAreas("all seats of an order must be in one area"),
        ValidationError("a hold needs at least one seat"),
        DomainError("something the domain refused"),
        NotFound("no session s"),
        SeatingUnavailable("partition 3 stopped"),
        AdapterUnavailable("redis is down"),
    ]
    assert {type(e) for e in known} == set(ERROR_CLASSES.values())
    for error in known:
        again = decode_error(encode_error(error))
        assert Failure.of(again) == Failure.of(error), error
        assert getattr(again, "code", None) == getattr(error, "code", None)

    # a class this side does not know keeps its code and its kind (so its HTTP status)
    transition = decode_error(encode_error(InvalidTransition("Order", "paid", "created")))
    assert isinstance(transition, RemoteSeatingError)
    assert isinstance(transition, DomainError)
    assert not isinstance(transition, ValidationError)
    assert (transition.code, str(transition)) == (
        "invalid_transition",
        "Order cannot go from 'paid' to 'created'",
    )
    conflict = decode_error(encode_error(ConcurrencyError("saved meanwhile")))
    assert isinstance(conflict, RemoteSeatingError)
    assert conflict.code == "concurrent_update"
    assert not isinstance(conflict, DomainError)

    class OddSeats(ValidationError):
        code = "odd_seats"

        def __init__(self, seat_ids: tuple[str, ...]) -> None:
            super().__init__("odd seats")
            self.seat_ids = seat_ids

    odd = decode_error(encode_error(OddSeats(("A-1-3",))))
    assert isinstance(odd, ValidationError)
    assert (odd.code, odd.message, odd.seat_ids) == ("odd_seats", "odd seats", ("A-1-3",))

    # a bug on the other side is a plain error (a 500), not one of ours
    bug = decode_error(encode_error(KeyError("partition")))
    assert isinstance(bug, RemoteSeatingError)
    assert not isinstance(bug, DomainError)
    assert bug.code == "internal_error"
    assert "KeyError" in str(bug)


# --- contention, correlation ---------------------------------------------------------------------


async def test_a_thousand_concurrent_holds_of_one_seat_grant_exactly_one(
    worker: Side, remote: RemoteSeating
) -> None:
    attempts = await asyncio.gather(
        *(hold(remote, worker.session, n, ["A-1-5"]) for n in range(1000)),
        return_exceptions=True,
    )

    granted = [a for a in attempts if isinstance(a, SeatHold)]
    refused = [a for a in attempts if isinstance(a, SeatsUnavailable)]
    assert len(granted) == 1
    assert len(refused) == 999
    assert all(r.seat_ids == ("A-1-5",) for r in refused)
    statuses = await seat_statuses(remote, worker.session, [A])
    assert statuses[SeatId("A-1-5")] is SeatStatus.HELD


async def test_the_commands_of_one_tick_for_a_partition_travel_as_one_message(
    worker_host: tuple[Side, PartitionHost], remote: RemoteSeating
) -> None:
    """Asked together, 40 commands of one area cost one request and one reply, in order."""
    side, host = worker_host
    await seat_statuses(remote, side.session, [A])  # loaded: the message below is the only one
    sent, answered = remote.messages, host.answered

    asked = [hold(remote, side.session, n, ["A-2-9"]) for n in range(20)]
    asked += [hold(remote, side.session, n, ["A-2-7"]) for n in range(20, 40)]
    answers = await asyncio.gather(*asked, return_exceptions=True)

    assert remote.messages == sent + 1
    assert host.answered == answered + 1
    for first in (0, 20):  # the first hold of each seat in the message wins
        granted, *refused = answers[first : first + 20]
        assert isinstance(granted, SeatHold)
        assert granted.hold_id == hold_id(first)
        assert all(isinstance(r, SeatsUnavailable) for r in refused)


async def test_more_commands_than_a_message_carries_go_in_several(
    worker: Side, remote: RemoteSeating
) -> None:
    sent = remote.messages
    asked = [
        hold(remote, worker.session, n, ["A-2-8"]) for n in range(MAX_COMMANDS_PER_MESSAGE + 1)
    ]
    answers = await asyncio.gather(*asked, return_exceptions=True)

    assert remote.messages == sent + 2
    assert sum(isinstance(a, SeatHold) for a in answers) == 1


async def test_the_request_id_reaches_the_events_the_owner_publishes(
    worker: Side, remote: RemoteSeating
) -> None:
    seen: dict[HoldId, str | None] = {}

    async def record(event: SeatsHeld) -> None:
        seen[event.hold_id] = correlation_id.get()

    worker.world.app.bus.subscribe(SeatsHeld, "test_record_correlation", record)

    async def hold_as(request_id: str | None, n: int) -> SeatHold:
        with correlated(request_id):
            return await hold(remote, worker.session, n, [f"A-2-{n}"])

    await asyncio.gather(hold_as("req-1", 1), hold_as("req-2", 2), hold_as(None, 3))
    await worker.seating.flush_events()

    assert seen == {hold_id(1): "req-1", hold_id(2): "req-2", hold_id(3): None}


async def test_each_traced_command_is_decided_in_a_child_span_of_its_own_caller(
    worker_host: tuple[Side, PartitionHost], remote: RemoteSeating, spans: SpanReader
) -> None:
    """Two requests' holds share one message; each decision continues its own trace."""
    side, _ = worker_host
    await seat_statuses(remote, side.session, [A])
    sent = remote.messages

    async def hold_in_request(n: int) -> str:
        with tracing.span(f"request {n}", tracing.SpanKind.SERVER) as request:
            await hold(remote, side.session, n, [f"A-1-{n}"])
            return format(request.get_span_context().span_id, "016x")

    requests = await asyncio.gather(hold_in_request(1), hold_in_request(2))

    assert remote.messages == sent + 1  # one message carried both traces
    finished = spans()
    by_id = {format(s.context.span_id, "016x"): s for s in finished}
    decided = [s for s in finished if s.name == "seat hold decide"]
    assert len(decided) == 2
    roots = set()
    for decision in decided:
        assert decision.parent is not None
        asked = by_id[format(decision.parent.span_id, "016x")]
        assert (asked.name, asked.kind) == ("seat hold", tracing.SpanKind.CLIENT)
        assert asked.context.trace_id == decision.context.trace_id
        assert asked.parent is not None
        roots.add(format(asked.parent.span_id, "016x"))
    assert roots == set(requests)  # each under its own request, not the other's


async def test_a_refused_command_s_spans_record_the_refusal(
    worker: Side, remote: RemoteSeating, spans: SpanReader
) -> None:
    await hold(remote, worker.session, 1, ["A-1-5"])
    with pytest.raises(SeatsUnavailable):
        await hold(remote, worker.session, 2, ["A-1-5"])

    refused = [s for s in spans() if s.name.startswith("seat hold") and not s.status.is_ok]
    assert {s.name for s in refused} == {"seat hold", "seat hold decide"}
    assert all("SeatsUnavailable" in (s.status.description or "") for s in refused)


# --- nobody there, too slow, handing over --------------------------------------------------------


async def test_without_a_host_a_command_is_tried_again_until_its_timeout(
    nats_client: Client, unique: str
) -> None:
    nobody = RemoteSeating(nats_client, PartitionRouter(PARTITIONS), prefix=unique, timeout=0.6)
    started = time.monotonic()
    with pytest.raises(SeatingUnavailable, match="no worker serves"):
        await hold(nobody, SessionId(UUID(int=1)), 1, ["A-1-1"])
    assert 0.4 <= time.monotonic() - started < 1.5  # about its timeout, not at once
    assert nobody.resent >= 3  # "no responders" each time: sent again every 0.1 s


async def test_a_command_sent_while_its_partition_moves_is_answered_by_the_next_owner(
    nats_url: str, nats_client: Client, unique: str
) -> None:
    """No owner for a moment (a worker stopped, the next one not subscribed yet): the
    buyer waits for the next owner instead of getting a 503."""
    remote = RemoteSeating(nats_client, PartitionRouter(PARTITIONS), prefix=unique, timeout=3)
    async with running_side() as side:
        asked = asyncio.ensure_future(hold(remote, side.session, 1, ["A-1-3"]))
        await asyncio.sleep(0.5)  # nobody serves the partition: "no responders", again
        assert not asked.done()
        async with hosting(nats_url, side.seating, unique):
            granted = await asked
    assert granted.hold_id == hold_id(1)
    assert remote.resent >= 2


async def test_a_host_that_does_not_answer_makes_the_command_unavailable_after_the_timeout(
    nats_client: Client, unique: str
) -> None:
    slow = RemoteSeating(nats_client, PartitionRouter(PARTITIONS), prefix=unique, timeout=0.3)
    session = SessionId(UUID(int=1))
    partition = slow.router.partition_of(session, A)
    # someone listens on the subject but never answers
    await nats_client.subscribe(f"{unique.lower()}.seat.lock.request.{partition}")

    started = time.monotonic()
    with pytest.raises(SeatingUnavailable, match="no answer"):
        await hold(slow, session, 1, ["A-1-1"])
    assert 0.3 <= time.monotonic() - started < 2


async def test_a_hold_that_timed_out_is_released_so_its_seats_are_not_stuck(
    worker: Side, nats_client: Client, unique: str, remote: RemoteSeating
) -> None:
    impatient = RemoteSeating(nats_client, PartitionRouter(PARTITIONS), prefix=unique, timeout=0.2)
    await seat_statuses(impatient, worker.session, [A])  # loaded before the store slows down
    worker.lock_store.slow = True  # each batch takes 0.5 s: the hold is granted, too late

    with pytest.raises(SeatingUnavailable, match="no answer"):
        await hold(impatient, worker.session, 1, ["A-1-6"])
    worker.lock_store.slow = False
    await impatient.stop()  # waits for the release it sent

    again = await hold(remote, worker.session, 2, ["A-1-6"])  # not SeatsUnavailable
    assert again.seat_ids == ("A-1-6",)


async def test_a_hold_granted_by_an_owner_that_died_unanswered_is_released_before_a_retry(
    nats_client: Client, nats_url: str, unique: str
) -> None:
    """The owner grants a hold and dies before answering; nobody serves the partition.

    The caller's process owes the partition the hold's release until an owner answers
    it, and sends it ahead of anything else it asks there: a buyer who tries again once
    the next owner serves gets the seat, not a 409 from their own lost hold.
    """
    async with running_side() as side:
        impatient = RemoteSeating(
            nats_client, PartitionRouter(PARTITIONS), prefix=unique, timeout=0.3
        )
        await seat_statuses(side.seating, side.session, [A])
        subject = f"{unique.lower()}.seat.lock.request.{remote_partition(side.session)}"
        granted: list[SeatHold] = []

        decided = asyncio.Event()

        async def grant(msg: Any) -> None:  # the owner, killed before it answers
            for command in msgspec.json.decode(msg.data, type=CommandBatch).commands:
                granted.append(await side.seating.ask(command))
            decided.set()

        async with connected(nats_url) as owner:
            dying = await owner.subscribe(subject, queue="seat-lock", cb=grant)
            await owner.flush()
            asking = asyncio.ensure_future(hold(impatient, side.session, 1, ["A-1-9"]))
            await asyncio.wait_for(decided.wait(), 5)
            await dying.unsubscribe()  # dead: nobody serves the partition now
            await owner.flush()
            with pytest.raises(SeatingUnavailable, match="no answer"):
                await asking
        assert [h.seat_ids for h in granted] == [("A-1-9",)]  # held, by nobody's order

        async with hosting(nats_url, side.seating, unique):  # the next owner
            again = await hold(impatient, side.session, 1, ["A-1-9"])
            assert again.seat_ids == ("A-1-9",)
            await impatient.stop()


async def test_a_partition_with_too_much_undecided_work_refuses_more_at_once(
    nats_client: Client, nats_url: str, unique: str
) -> None:
    async with running_side() as side, connected(nats_url) as client:
        host = PartitionHost(client, side.seating, prefix=unique, max_pending=2)
        for partition in range(PARTITIONS):
            await host.serve(partition)
        remote = RemoteSeating(nats_client, PartitionRouter(PARTITIONS), prefix=unique, timeout=5)
        try:
            await seat_statuses(remote, side.session, [A])  # loaded before the store slows down
            side.lock_store.slow = True
            attempts = await asyncio.gather(
                *(hold(remote, side.session, n, [f"A-2-{n + 1}"]) for n in range(6)),
                return_exceptions=True,
            )
        finally:
            await host.stop()
        shed = [a for a in attempts if isinstance(a, SeatingUnavailable)]
        assert len(shed) == 4
        assert all("undecided" in str(a) for a in shed)
        assert sum(isinstance(a, SeatHold) for a in attempts) == 2


async def test_two_hosts_in_the_queue_group_answer_each_request_once(
    worker_host: tuple[Side, PartitionHost], nats_client: Client, nats_url: str, unique: str
) -> None:
    side, first = worker_host
    inbox = nats_client.new_inbox()
    replies = await nats_client.subscribe(inbox)
    requests = 200
    # a second owner of every partition (a handover in progress) joins the queue group
    async with hosting(nats_url, side.seating, unique) as second:
        subject = second.subject(remote_partition(side.session))
        for n in range(requests):
            request = CommandBatch(
                commands=[
                    HoldSeats(
                        session_id=side.session,
                        area_id=A,
                        hold_id=hold_id(n),
                        holder_id=buyer(n),
                        order_id=order_id(n),
                        seat_ids=(SeatId("A-1-7"),),
                    )
                ]
            )
            await nats_client.publish(subject, msgspec.json.encode(request), reply=inbox)
        bodies = [(await replies.next_msg(timeout=5)).data for _ in range(requests)]
    await first.stop()  # both hosts have now answered all they took

    assert first.answered + second.answered == requests  # none was taken twice
    assert first.answered > 0  # both took a share
    assert second.answered > 0
    await nats_client.flush()
    assert replies.pending_msgs == 0
    granted = [b for b in bodies if b.startswith(b'[{"ok"')]
    assert len(granted) == 1


def remote_partition(session: SessionId, area: AreaId = A) -> int:
    return PartitionRouter(PARTITIONS).partition_of(session, area)


async def test_a_released_partition_is_unavailable_and_the_others_still_answer(
    worker_host: tuple[Side, PartitionHost], remote: RemoteSeating
) -> None:
    side, host = worker_host
    await hold(remote, side.session, 1, ["A-1-8"])
    partition = remote_partition(side.session, A)

    await host.release(partition)

    assert partition not in host.partitions
    remote.timeout = 0.5  # what is asked of it waits for its next owner that long
    with pytest.raises(SeatingUnavailable, match="no worker serves"):
        await hold(remote, side.session, 2, ["A-1-9"])
    others = [a for a in (A, B) if remote_partition(side.session, a) != partition]
    for area in others:
        assert await seat_statuses(remote, side.session, [area])
    await host.serve(partition)  # taken back: answered again, from the same state
    with pytest.raises(SeatsUnavailable):
        await hold(remote, side.session, 3, ["A-1-8"])


async def test_a_host_only_serves_partitions_it_owns_and_refuses_misrouted_requests(
    worker: Side, nats_client: Client, nats_url: str, unique: str
) -> None:
    app = worker.world.app
    owned = remote_partition(worker.session, A)
    partial = SeatingService(  # a worker that owns one partition of four
        router=PartitionRouter(PARTITIONS),
        lock_store=worker.lock_store,
        layout=app.catalog.seat_layout,
        sold_seats=TicketedSeats(app.catalog._uow),
        clock=worker.clock,
        ids=SequentialIdGenerator(99),
        hold_ttl=timedelta(seconds=120),
        publish=app.bus.publish,
        partitions=[owned],
    )
    prefix = f"{unique}X"
    # a caller configured with another partition count, and an area it sends to
    # the partition this worker owns though the worker routes it elsewhere
    count, area = next(
        (n, AreaId(f"X{i}"))
        for n in range(2, 64)
        for i in range(100)
        if n != PARTITIONS
        and PartitionRouter(n).partition_of(worker.session, AreaId(f"X{i}")) == owned
        and remote_partition(worker.session, AreaId(f"X{i}")) != owned
    )
    async with connected(nats_url) as client:
        host = PartitionHost(client, partial, prefix=prefix)
        with pytest.raises(ValueError, match="no actor"):
            await host.serve((owned + 1) % PARTITIONS)
        await partial.start()
        try:
            await host.serve(owned)
            misconfigured = RemoteSeating(nats_client, PartitionRouter(count), prefix=prefix)
            with pytest.raises(SeatingUnavailable, match="routes"):
                await seat_statuses(misconfigured, worker.session, [area])
            right = RemoteSeating(nats_client, PartitionRouter(PARTITIONS), prefix=prefix)
            statuses = await seat_statuses(right, worker.session, [A])
            assert statuses[SeatId("A-1-1")] is SeatStatus.AVAILABLE
        finally:
            await host.stop()
            await partial.stop()


# --- the command subject and the streams ---------------------------------------------------------


@contextlib.asynccontextmanager
async def streams_of(client: Client, prefix: str) -> AsyncIterator[None]:
    js = client.jetstream()
    await ensure_streams(js, prefix=prefix)
    try:
        yield
    finally:
        for layout in STREAMS:
            with contextlib.suppress(NotFoundError):
                await js.delete_stream(stream_name(layout.name, prefix))


async def test_with_the_streams_set_up_a_command_gets_the_hosts_reply_not_a_puback(
    worker_host: tuple[Side, PartitionHost], nats_client: Client, remote: RemoteSeating, unique: str
) -> None:
    side, host = worker_host
    js = nats_client.jetstream()
    async with streams_of(nats_client, unique):
        held = await hold(remote, side.session, 1, ["A-2-5"])
        assert held.seat_ids == ("A-2-5",)

        subject = host.subject(remote_partition(side.session))
        hold_a_2_6 = HoldSeats(
            session_id=side.session,
            area_id=A,
            hold_id=hold_id(2),
            holder_id=buyer(2),
            order_id=order_id(2),
            seat_ids=(SeatId("A-2-6"),),
        )
        request = CommandBatch(commands=[hold_a_2_6])
        raw = await nats_client.request(subject, msgspec.json.encode(request), timeout=5)
        (body,) = msgspec.json.decode(raw.data)  # a PubAck would be {"stream": ..., "seq": ...}
        assert set(body) == {"ok"}
        assert body["ok"]["seat_ids"] == ["A-2-6"]
        assert (await js.stream_info(stream_name(SEATS, unique))).state.messages == 0

        for partition in range(PARTITIONS):
            await host.release(partition)
        # nobody serves now: the server says so, no stream answers in the host's place
        with pytest.raises(nats.errors.NoRespondersError):
            await nats_client.request(subject, msgspec.json.encode(request), timeout=1)


async def test_ensure_streams_takes_the_command_subject_out_of_an_older_seats_stream(
    nats_client: Client, unique: str
) -> None:
    js = nats_client.jetstream()
    name = stream_name(SEATS, unique)
    command_subjects = f"{unique.lower()}.seat.lock.request.*"
    layout = next(s for s in STREAMS if s.name == SEATS)
    older = layout.config(prefix=unique)
    await js.add_stream(
        StreamConfig(
            name=name,
            subjects=[command_subjects, *(older.subjects or [])],
            storage=older.storage,
            retention=older.retention,
            max_age=older.max_age,
            duplicate_window=older.duplicate_window,
        )
    )
    async with streams_of(nats_client, unique):
        subjects = (await js.stream_info(name)).config.subjects or []
        assert command_subjects not in subjects
        assert set(layout.subjects(unique)) <= set(subjects)
        with pytest.raises(nats.errors.NoRespondersError):
            await nats_client.request(f"{unique.lower()}.seat.lock.request.0", b"{}", timeout=1)
