"""The lock-store contract on NATS JetStream KV, and what only a shared server can show."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any
from uuid import uuid4

import nats
import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext, api
from nats.js.errors import KeyNotFoundError, NotFoundError
from nats.js.kv import KeyValue

from openticket.adapters.nats.cluster import (
    SERIALIZED_WRITES_SINCE,
    UnsafeNatsServer,
    server_version,
)
from openticket.adapters.nats.lock_store import NatsKvLockStore
from openticket.adapters.system import SystemClock
from openticket.application.ports.clock import Clock
from openticket.application.ports.errors import AdapterUnavailable
from openticket.application.ports.lock_store import (
    AcquireHold,
    Done,
    ExtendHold,
    Granted,
    LockOp,
    LockStore,
    MarkSold,
    Refused,
    ReleaseHold,
    ReleaseSold,
)
from openticket.domain.seating import SeatHold
from openticket.domain.shared import AreaId, HoldId, OrderId, SeatId, SessionId, UserId
from openticket.testing.contracts import InRealTime, LockStoreContract
from openticket.testing.contracts._builders import seat

pytestmark = pytest.mark.nats

TTL = 0.5
"""Seconds a hold lives in these tests (the contract's ``hold_ttl``)."""


@pytest.fixture
async def bucket(nats_client: Client, unique: str) -> AsyncIterator[str]:
    """A bucket name of the test's own; the bucket is deleted at the end."""
    name = f"seats_{unique}"
    try:
        yield name
    finally:
        with contextlib.suppress(NotFoundError):
            await nats_client.jetstream().delete_key_value(name)


class TestNatsKvLockStore(InRealTime, LockStoreContract):
    """In real time, as in production: locks end at the deadline in their value."""

    counts_its_tokens = False  # tokens are the bucket's revisions

    hold_ttl = TTL


    @pytest.fixture
    async def lock_store(self, nats_client: Client, clock: Clock, bucket: str) -> LockStore:
        return await NatsKvLockStore.open(nats_client.jetstream(), clock, bucket=bucket)


# --- helpers -------------------------------------------------------------------------------


def acquire(
    session: SessionId, *seats: SeatId, ttl: float = TTL, area: str = "A", hold_id: Any = None
) -> AcquireHold:
    """A new buyer's hold request for ``seats``, living ``ttl`` seconds from now."""
    at = SystemClock().now() + timedelta(seconds=ttl)
    return AcquireHold(
        hold_id=hold_id or HoldId(uuid4()),
        session_id=session,
        area_id=AreaId(area),
        holder_id=UserId(uuid4()),
        order_id=OrderId(uuid4()),
        seat_ids=seats,
        expires_at=at.replace(microsecond=at.microsecond // 1000 * 1000),
    )


async def grant(store: LockStore, op: AcquireHold) -> SeatHold:
    (result,) = await store.execute([op])
    assert isinstance(result, Granted), result
    return result.hold


def sell(hold: SeatHold, token: int | None = None) -> MarkSold:
    return MarkSold(
        session_id=hold.session_id,
        area_id=hold.area_id,
        hold_id=hold.hold_id,
        seat_ids=hold.seat_ids,
        fencing_token=hold.fencing_token if token is None else token,
    )


def key(session: SessionId, seat_id: str) -> str:
    return f"{session}.{seat_id.split('-', maxsplit=1)[0]}.{seat_id}"


async def raw(kv: KeyValue, session: SessionId, seat_id: str) -> KeyValue.Entry | None:
    """The seat's KV entry as stored, or None when there is none (or a delete marker)."""
    try:
        return await kv.get(key(session, seat_id))
    except KeyNotFoundError:
        return None


@pytest.fixture
async def js(nats_client: Client) -> JetStreamContext:
    return nats_client.jetstream()


@pytest.fixture
async def store(js: JetStreamContext, bucket: str) -> NatsKvLockStore:
    return await NatsKvLockStore.open(js, SystemClock(), bucket=bucket)


@pytest.fixture
async def kv(js: JetStreamContext, store: NatsKvLockStore, bucket: str) -> KeyValue:
    return await js.key_value(bucket)


@pytest.fixture
async def other_client(nats_url: str) -> AsyncIterator[Client]:
    """A second connection: another process, as far as the server can tell."""
    client = await nats.connect(nats_url, connect_timeout=5, allow_reconnect=False)
    try:
        yield client
    finally:
        await client.close()


# --- the bucket ------------------------------------------------------------------------------


async def test_the_contract_races_a_thousand_buyers() -> None:
    """The contract's contention test runs with 1,000 separate ``execute`` calls."""
    assert TestNatsKvLockStore.concurrent_buyers >= 1000


async def test_a_replicated_bucket_is_refused_on_a_server_before_2_9_21(
    js: JetStreamContext, bucket: str
) -> None:
    """Its clustered compare-and-set is not serialized (nats-server #4320): two buyers
    could both win a seat. Refused before anything is created, naming the way out."""
    version = server_version(js)
    assert version is not None
    assert version < SERIALIZED_WRITES_SINCE, "design.md: the test server is a 2.9 before .21"
    with pytest.raises(UnsafeNatsServer) as refused:
        await NatsKvLockStore.open(js, SystemClock(), bucket=bucket, replicas=3)
    message = str(refused.value)
    assert "3 replicas" in message
    assert "#4320" in message
    assert "OPENTICKET_NATS_REPLICAS=1" in message
    with pytest.raises(NotFoundError):
        await js.stream_info(f"KV_{bucket}")


async def test_the_bucket_is_created_once_with_history_1_on_file(
    js: JetStreamContext, bucket: str
) -> None:
    first = await NatsKvLockStore.open(js, SystemClock(), bucket=bucket)
    second = await NatsKvLockStore.open(js, SystemClock(), bucket=bucket)  # idempotent
    await second.ensure_bucket()
    info = await js.stream_info(f"KV_{bucket}")
    assert info.config.max_msgs_per_subject == 1
    assert info.config.storage == api.StorageType.FILE
    assert info.config.allow_direct
    session = SessionId(uuid4())
    hold = await grant(first, acquire(session, seat("A", 1, 1)))
    assert (await second.load(session, AreaId("A"))).holds == (hold,)


async def test_a_bucket_made_elsewhere_with_another_configuration_is_used_as_it_is(
    js: JetStreamContext, bucket: str
) -> None:
    await js.create_key_value(api.KeyValueConfig(bucket=bucket, history=5, direct=False))
    store = await NatsKvLockStore.open(js, SystemClock(), bucket=bucket)
    info = await js.stream_info(f"KV_{bucket}")
    assert info.config.max_msgs_per_subject == 5
    session, s = SessionId(uuid4()), seat("A", 1, 1)
    hold = await grant(store, acquire(session, s, ttl=5))
    assert await store.execute([acquire(session, s)]) == [Refused((s,))]  # read without direct get
    assert (await store.load(session, AreaId("A"))).holds == (hold,)


async def test_keys_name_the_session_the_area_and_the_seat(
    store: NatsKvLockStore, js: JetStreamContext, bucket: str
) -> None:
    session = SessionId(uuid4())
    await grant(store, acquire(session, seat("A", 1, 1), seat("A", 1, 2), ttl=5))
    await grant(store, acquire(session, seat("B", "R2", 7), area="B", ttl=5))
    info = await js.stream_info(f"KV_{bucket}", subjects_filter=f"$KV.{bucket}.>")
    assert sorted(s.removeprefix(f"$KV.{bucket}.") for s in info.state.subjects or ()) == sorted(
        [f"{session}.A.A-1-1", f"{session}.A.A-1-2", f"{session}.B.B-R2-7"]
    )


# --- all or nothing, fencing, expiry ---------------------------------------------------------


async def test_a_refused_hold_leaves_no_key_behind(store: NatsKvLockStore, kv: KeyValue) -> None:
    session = SessionId(uuid4())
    held = await grant(store, acquire(session, seat("A", 1, 3), ttl=5))
    (result,) = await store.execute(
        [acquire(session, seat("A", 1, 1), seat("A", 1, 2), seat("A", 1, 3), seat("A", 1, 4))]
    )
    assert result == Refused((seat("A", 1, 3),))
    for n in (1, 2, 4):
        assert await raw(kv, session, seat("A", 1, n)) is None  # created, then deleted
    snapshot = await store.load(session, AreaId("A"))
    assert snapshot.holds == (held,)


async def test_a_refusal_names_every_seat_in_the_way_whatever_the_store_remembers(
    store: NatsKvLockStore, other_client: Client, bucket: str, kv: KeyValue
) -> None:
    """Seats held through another connection (unknown here) and through this store."""
    other = NatsKvLockStore(other_client.jetstream(), SystemClock(), bucket=bucket)
    session = SessionId(uuid4())
    s1, s2, s3, s4 = (seat("A", 1, n) for n in range(1, 5))
    await grant(other, acquire(session, s1, ttl=5))
    await grant(store, acquire(session, s2, ttl=5))
    sold = await grant(other, acquire(session, s4, ttl=5))
    await other.execute([sell(sold)])
    (result,) = await store.execute([acquire(session, s3, s1, s4, s2)])
    assert result == Refused((s1, s4, s2))
    assert await raw(kv, session, s3) is None
    (result,) = await other.execute([acquire(session, s2, s3)])
    assert result == Refused((s2,))
    assert await raw(kv, session, s3) is None


async def test_tokens_are_kv_revisions_of_the_holds_last_seat(
    store: NatsKvLockStore, kv: KeyValue
) -> None:
    session = SessionId(uuid4())
    seats = (seat("A", 1, 1), seat("A", 1, 2), seat("A", 1, 3))
    hold = await grant(store, acquire(session, *seats, ttl=5))
    revisions = [(await kv.get(key(session, s))).revision for s in seats]
    assert hold.fencing_token == revisions[-1] == max(revisions)


async def test_tokens_follow_op_order_when_a_seat_needs_a_second_try(
    js: JetStreamContext, store: NatsKvLockStore, bucket: str
) -> None:
    """A seat with a delete marker is written later than a fresh one: the order still holds."""
    session = SessionId(uuid4())
    old = await grant(store, acquire(session, seat("A", 1, 1)))
    await store.execute(
        [
            ReleaseHold(
                session_id=session, area_id=old.area_id, hold_id=old.hold_id, seat_ids=old.seat_ids
            )
        ]
    )
    forgetful = NatsKvLockStore(js, SystemClock(), bucket=bucket)  # knows no revision
    results = await forgetful.execute(
        [
            acquire(session, seat("A", 1, 1)),  # exists (a delete marker): create, read, update
            acquire(session, seat("A", 2, 1)),  # fresh: created at once
            acquire(session, seat("A", 2, 2), seat("A", 1, 1)),  # refused: taken just before
            acquire(session, seat("A", 3, 1), seat("A", 3, 2)),
        ]
    )
    assert isinstance(results[2], Refused)
    tokens = [r.hold.fencing_token for r in results if isinstance(r, Granted)]
    assert len(tokens) == 3
    assert all(a < b for a, b in itertools.pairwise(tokens)), tokens
    assert tokens[0] > old.fencing_token
    snapshot = await forgetful.load(session, AreaId("A"))
    assert sorted(h.fencing_token for h in snapshot.holds) == tokens


async def test_an_expired_holder_cannot_touch_the_next_holders_lock(
    store: NatsKvLockStore, kv: KeyValue
) -> None:
    session, s = SessionId(uuid4()), seat("A", 1, 1)
    old = await grant(store, acquire(session, s, ttl=0.1))
    await asyncio.sleep(0.15)
    new = await grant(store, acquire(session, s, ttl=5))
    before = await raw(kv, session, s)
    assert before is not None
    assert new.hold_id.hex.encode() in (before.value or b"")

    results = await store.execute(
        [
            ReleaseHold(
                session_id=session, area_id=old.area_id, hold_id=old.hold_id, seat_ids=(s,)
            ),
            ExtendHold(
                session_id=session,
                area_id=old.area_id,
                hold_id=old.hold_id,
                seat_ids=(s,),
                expires_at=SystemClock().now() + timedelta(seconds=60),
            ),
            sell(old),
            sell(new, token=old.fencing_token),  # the right hold, the expired holder's token
        ]
    )
    assert results == [Done(()), Refused((s,)), Refused((s,)), Refused((s,))]
    after = await raw(kv, session, s)
    assert after is not None
    assert (after.revision, after.value) == (before.revision, before.value)
    snapshot = await store.load(session, AreaId("A"))
    assert snapshot.holds == (new,)
    assert dict(snapshot.sold) == {}


async def test_an_expired_holder_on_another_connection_cannot_touch_it_either(
    store: NatsKvLockStore, other_client: Client, bucket: str, kv: KeyValue
) -> None:
    """The stale holder's store remembers the old revision; its writes must still fail."""
    stale = NatsKvLockStore(other_client.jetstream(), SystemClock(), bucket=bucket)
    session, s = SessionId(uuid4()), seat("A", 1, 1)
    old = await grant(stale, acquire(session, s, ttl=0.1))
    await asyncio.sleep(0.15)
    new = await grant(store, acquire(session, s, ttl=5))
    before = await raw(kv, session, s)
    assert before is not None
    results = await stale.execute(
        [
            ExtendHold(
                session_id=session,
                area_id=old.area_id,
                hold_id=old.hold_id,
                seat_ids=(s,),
                expires_at=SystemClock().now() + timedelta(seconds=60),
            ),
            sell(old),
            ReleaseHold(
                session_id=session, area_id=old.area_id, hold_id=old.hold_id, seat_ids=(s,)
            ),
        ]
    )
    assert results == [Refused((s,)), Refused((s,)), Done(())]
    after = await raw(kv, session, s)
    assert after is not None
    assert (after.revision, after.value) == (before.revision, before.value)
    assert (await stale.load(session, AreaId("A"))).holds == (new,)


async def test_an_expired_lock_is_taken_over_with_a_larger_token(
    store: NatsKvLockStore, kv: KeyValue
) -> None:
    session = SessionId(uuid4())
    seats = (seat("A", 1, 1), seat("A", 1, 2))
    old = await grant(store, acquire(session, *seats, ttl=0.1))
    await asyncio.sleep(0.15)
    new = await grant(store, acquire(session, seat("A", 1, 2), seat("A", 1, 1), ttl=5))
    assert new.fencing_token > old.fencing_token
    entry = await raw(kv, session, seat("A", 1, 1))
    assert entry is not None
    assert new.hold_id.hex.encode() in (entry.value or b"")


# --- two processes ---------------------------------------------------------------------------


async def test_a_thousand_buyers_on_two_connections_get_one_seat_once(
    store: NatsKvLockStore, other_client: Client, bucket: str
) -> None:
    stores = [store, NatsKvLockStore(other_client.jetstream(), SystemClock(), bucket=bucket)]
    session, s = SessionId(uuid4()), seat("A", 1, 1)
    ops = [acquire(session, s, ttl=30) for _ in range(1000)]
    answers = await asyncio.gather(*(stores[i % 2].execute([op]) for i, op in enumerate(ops)))
    granted = [r for (r,) in answers if isinstance(r, Granted)]
    assert len(granted) == 1
    assert all(r == Refused((s,)) for (r,) in answers if not isinstance(r, Granted))
    for each in stores:
        assert (await each.load(session, AreaId("A"))).holds == (granted[0].hold,)


async def test_overlapping_holds_on_two_connections_never_share_a_seat(
    store: NatsKvLockStore, other_client: Client, bucket: str
) -> None:
    stores = [store, NatsKvLockStore(other_client.jetstream(), SystemClock(), bucket=bucket)]
    session = SessionId(uuid4())
    ring = [seat("A", 1, n) for n in range(1, 11)]
    ops = [
        acquire(session, ring[i % 10], ring[(i + 1) % 10], ring[(i + 3) % 10], ttl=30)
        for i in range(300)
    ]
    answers = await asyncio.gather(*(stores[i % 2].execute([op]) for i, op in enumerate(ops)))
    granted = [r.hold for (r,) in answers if isinstance(r, Granted)]
    assert granted
    taken = [s for hold in granted for s in hold.seat_ids]
    assert len(taken) == len(set(taken)), "a seat was granted to two holds"
    tokens = [h.fencing_token for h in granted]
    assert len(set(tokens)) == len(tokens)
    snapshot = await stores[1].load(session, AreaId("A"))
    assert set(snapshot.holds) == set(granted)


async def test_two_processes_interleaving_batches_never_share_a_seat_and_tokens_grow(
    store: NatsKvLockStore, other_client: Client, bucket: str
) -> None:
    session = SessionId(uuid4())
    seats = [seat("A", row, n) for row in range(1, 4) for n in range(1, 11)]  # 30 seats
    rng = random.Random(7)
    owner: dict[SeatId, SeatHold] = {}
    tokens_in_order: list[list[int]] = [[], []]
    stores = [store, NatsKvLockStore(other_client.jetstream(), SystemClock(), bucket=bucket)]

    async def process(index: int) -> None:
        mine: list[SeatHold] = []
        for _ in range(40):
            ops: list[LockOp] = [
                acquire(session, *rng.sample(seats, rng.randint(1, 3)), ttl=30) for _ in range(6)
            ]
            if mine and rng.random() < 0.5:
                hold = mine.pop(rng.randrange(len(mine)))
                ops.insert(
                    rng.randrange(len(ops)),
                    ReleaseHold(
                        session_id=session,
                        area_id=hold.area_id,
                        hold_id=hold.hold_id,
                        seat_ids=hold.seat_ids,
                    ),
                )
                # freed by this batch (the release runs before the acquires after it)
                for s in hold.seat_ids:
                    assert owner.pop(s) == hold
            results = await stores[index].execute(ops)
            for op, result in zip(ops, results, strict=True):
                if isinstance(result, Granted):
                    for s in result.hold.seat_ids:
                        assert s not in owner, f"{s} granted to two holds"
                        owner[s] = result.hold
                    mine.append(result.hold)
                    tokens_in_order[index].append(result.hold.fencing_token)
                elif isinstance(op, AcquireHold):
                    assert isinstance(result, Refused)
                    assert result.seat_ids
                else:
                    assert isinstance(result, Done)
            await asyncio.sleep(0)

    await asyncio.gather(process(0), process(1))

    for tokens in tokens_in_order:
        assert tokens
        assert all(a < b for a, b in itertools.pairwise(tokens)), tokens
    everything = tokens_in_order[0] + tokens_in_order[1]
    assert len(set(everything)) == len(everything), "a token was issued twice"
    snapshot = await store.load(session, AreaId("A"))
    assert {h.hold_id for h in snapshot.holds} == {h.hold_id for h in owner.values()}
    assert snapshot.last_fencing_token >= max(everything)


async def test_a_hold_extended_on_one_connection_sells_on_the_other(
    store: NatsKvLockStore, other_client: Client, bucket: str
) -> None:
    """Failover: the next actor loads the hold and finishes it with its original token."""
    session = SessionId(uuid4())
    seats = (seat("A", 1, 1), seat("A", 1, 2))
    hold = await grant(store, acquire(session, *seats, ttl=5))
    later = hold.expires_at + timedelta(seconds=5)
    extend = ExtendHold(
        session_id=session,
        area_id=hold.area_id,
        hold_id=hold.hold_id,
        seat_ids=seats,
        expires_at=later,
    )
    assert await store.execute([extend]) == [Done(seats)]
    successor = NatsKvLockStore(other_client.jetstream(), SystemClock(), bucket=bucket)
    (loaded,) = (await successor.load(session, AreaId("A"))).holds
    assert loaded.fencing_token == hold.fencing_token
    assert loaded.expires_at == later
    assert await successor.execute([sell(loaded)]) == [Done(seats)]
    # the first actor's view is stale now; its late sale is a replay, a wrong token is not
    assert await store.execute([sell(hold)]) == [Done(seats)]
    assert await store.execute([sell(hold, hold.fencing_token + 1)]) == [Refused(seats)]
    snapshot = await store.load(session, AreaId("A"))
    assert dict(snapshot.sold) == dict.fromkeys(seats, hold.order_id)


# --- replays, round trips, load ----------------------------------------------------------------


async def test_a_replayed_acquire_answers_as_the_first_time(store: NatsKvLockStore) -> None:
    """A batch sent again after a lost answer must not refuse its own locks."""
    session = SessionId(uuid4())
    op = acquire(session, seat("A", 1, 1), seat("A", 1, 2), ttl=5)
    (first,) = await store.execute([op])
    (again,) = await store.execute([op])
    assert isinstance(first, Granted)
    assert again == first
    impostor = acquire(session, *op.seat_ids, ttl=5, hold_id=op.hold_id)
    assert await store.execute([impostor]) == [Refused(op.seat_ids)]
    assert await store.execute([sell(first.hold)]) == [Done(op.seat_ids)]
    assert await store.execute([sell(first.hold)]) == [Done(op.seat_ids)]
    stale = sell(first.hold, first.hold.fencing_token + 1)
    assert await store.execute([stale]) == [Refused(op.seat_ids)]
    assert await store.execute(
        [ReleaseSold(session_id=session, area_id=AreaId("A"), seat_ids=op.seat_ids)]
    ) == [Done(op.seat_ids)]
    assert await store.execute(
        [ReleaseSold(session_id=session, area_id=AreaId("A"), seat_ids=op.seat_ids)]
    ) == [Done(())]


async def test_a_batch_of_its_own_holds_is_one_wave_of_writes_without_reads(
    store: NatsKvLockStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = SessionId(uuid4())
    first, second = acquire(session, seat("A", 1, 1)), acquire(session, seat("A", 1, 2))
    sold = acquire(session, seat("A", 1, 3), seat("A", 1, 4))
    granted = await store.execute([first, second, sold])
    hold = granted[2]
    assert isinstance(hold, Granted)

    reads, writes = 0, 0
    real_get, real_write = store._get, store._write

    async def counting_get(key: str) -> Any:
        nonlocal reads
        reads += 1
        return await real_get(key)

    async def counting_write(key: str, value: bytes | None, expected: int) -> int | None:
        nonlocal writes
        writes += 1
        return await real_write(key, value, expected)

    monkeypatch.setattr(store, "_get", counting_get)
    monkeypatch.setattr(store, "_write", counting_write)
    results = await store.execute(
        [
            *(acquire(session, seat("A", 2, n)) for n in range(1, 9)),
            ReleaseHold(
                session_id=session,
                area_id=first.area_id,
                hold_id=first.hold_id,
                seat_ids=first.seat_ids,
            ),
            ExtendHold(
                session_id=session,
                area_id=second.area_id,
                hold_id=second.hold_id,
                seat_ids=second.seat_ids,
                expires_at=second.expires_at + timedelta(seconds=1),
            ),
            sell(hold.hold),
        ]
    )
    assert (reads, writes) == (0, 8 + 1 + 1 + 2)
    assert all(isinstance(r, Granted) for r in results[:8])
    assert results[8:] == [Done(first.seat_ids), Done(second.seat_ids), Done(sold.seat_ids)]


async def test_load_reads_only_the_partition(
    store: NatsKvLockStore, js: JetStreamContext, bucket: str
) -> None:
    session, other = SessionId(uuid4()), SessionId(uuid4())
    hold = await grant(store, acquire(session, seat("A", 1, 1), seat("A", 1, 2), ttl=5))
    await grant(store, acquire(session, seat("AB", 1, 1), area="AB", ttl=5))
    await grant(store, acquire(other, seat("A", 1, 1), ttl=5))
    cold = NatsKvLockStore(js, SystemClock(), bucket=bucket)
    snapshot = await cold.load(session, AreaId("A"))
    assert snapshot.holds == (hold,)
    assert snapshot.last_fencing_token == hold.fencing_token
    assert len(cold._known) == 2  # the two keys of the partition, nothing else


async def test_a_hold_of_many_seats_is_taken_sold_and_released_whole(
    store: NatsKvLockStore,
) -> None:
    session = SessionId(uuid4())
    seats = tuple(seat("A", f"R{n // 100}", 1 + n % 100) for n in range(1000))
    hold = await grant(store, acquire(session, *seats, ttl=10))
    assert (await store.load(session, AreaId("A"))).holds == (hold,)
    (refused,) = await store.execute([acquire(session, seats[0], seats[-1])])
    assert refused == Refused((seats[0], seats[-1]))
    results = await store.execute(
        [sell(hold), ReleaseSold(session_id=session, area_id=AreaId("A"), seat_ids=seats)]
    )
    assert results == [Done(seats), Done(seats)]
    snapshot = await store.load(session, AreaId("A"))
    assert snapshot.holds == ()
    assert dict(snapshot.sold) == {}


# --- an unreachable server ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(
            lambda store, session: store.execute([acquire(session, seat("A", 1, 1))]),
            id="acquire",
        ),
        pytest.param(
            lambda store, session: store.execute(
                [ReleaseSold(session_id=session, area_id=AreaId("A"), seat_ids=(seat("A", 1, 1),))]
            ),
            id="release-sold",
        ),
        pytest.param(lambda store, session: store.load(session, AreaId("A")), id="load"),
        pytest.param(lambda store, session: store.ensure_bucket(), id="ensure-bucket"),
    ],
)
async def test_a_closed_connection_raises_adapter_unavailable(
    nats_url: str, bucket: str, call: Any
) -> None:
    client = await nats.connect(nats_url, connect_timeout=5, allow_reconnect=False)
    store = await NatsKvLockStore.open(client.jetstream(), SystemClock(), bucket=bucket)
    await client.close()
    assert isinstance(store, LockStore)
    with pytest.raises(AdapterUnavailable) as raised:
        await call(store, SessionId(uuid4()))
    assert isinstance(raised.value.__cause__, nats.errors.Error)


async def test_a_missing_bucket_raises_adapter_unavailable(js: JetStreamContext) -> None:
    store = NatsKvLockStore(js, SystemClock(), bucket=f"missing_{uuid4().hex[:8]}")
    with pytest.raises(AdapterUnavailable):
        await store.execute([acquire(SessionId(uuid4()), seat("A", 1, 1))])
