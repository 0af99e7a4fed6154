"""The lock-store contract against Redis, and what only a shared server can show."""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta
from typing import Any
from uuid import uuid4

import pytest
import redis.asyncio as aioredis
from redis.asyncio.connection import Connection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.crc import key_slot
from redis.exceptions import NoScriptError, RedisError

from openticket.adapters.redis.lock_store import RedisLockStore
from openticket.adapters.system import SystemClock
from openticket.application.ports.clock import Clock
from openticket.application.ports.errors import AdapterUnavailable
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
)
from openticket.domain.seating import SeatHold
from openticket.domain.shared import AreaId, HoldId, OrderId, SeatId, SessionId, UserId
from openticket.testing.contracts import InRealTime, LockStoreContract
from openticket.testing.contracts._builders import seat

pytestmark = pytest.mark.redis

TTL = 0.3
"""Seconds a hold lives in these tests (the contract's ``hold_ttl``)."""


class TestRedisLockStore(InRealTime, LockStoreContract):
    """In real time, as in production: locks end at their expiry on the system clock."""

    hold_ttl = TTL


    @pytest.fixture
    async def lock_store(
        self, redis_client: aioredis.Redis, clock: Clock, key_prefix: str
    ) -> LockStore:
        return RedisLockStore(redis_client, clock, prefix=key_prefix)


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


def lock_key(prefix: str, session: SessionId, seat_id: str) -> str:
    return f"{prefix}seat:lock:{{{session}}}:{seat_id}"


@pytest.fixture
def store(redis_client: aioredis.Redis, key_prefix: str) -> RedisLockStore:
    return RedisLockStore(redis_client, SystemClock(), prefix=key_prefix)


@pytest.fixture
async def other_client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    """A second client with its own pool: another process, as far as Redis can tell."""
    client = aioredis.Redis.from_url(redis_url)
    try:
        yield client
    finally:
        await client.aclose()


# --- contention and fencing across processes -------------------------------------------------


async def test_the_contract_races_a_thousand_buyers() -> None:
    """The contract's contention test runs with 1,000 separate ``execute`` calls."""
    assert TestRedisLockStore.concurrent_buyers >= 1000


async def test_a_thousand_buyers_on_two_clients_get_one_seat_once(
    redis_client: aioredis.Redis, other_client: aioredis.Redis, key_prefix: str
) -> None:
    stores = [
        RedisLockStore(c, SystemClock(), prefix=key_prefix) for c in (redis_client, other_client)
    ]
    session, s = SessionId(uuid4()), seat("A", 1, 1)
    ops = [acquire(session, s, ttl=30) for _ in range(1000)]
    answers = await asyncio.gather(*(stores[i % 2].execute([op]) for i, op in enumerate(ops)))
    granted = [r for (r,) in answers if isinstance(r, Granted)]
    assert len(granted) == 1
    assert all(r == Refused((s,)) for (r,) in answers if not isinstance(r, Granted))


async def test_two_processes_interleaving_batches_never_share_a_seat_and_tokens_grow(
    redis_client: aioredis.Redis, other_client: aioredis.Redis, key_prefix: str
) -> None:
    session = SessionId(uuid4())
    seats = [seat("A", row, n) for row in range(1, 4) for n in range(1, 11)]  # 30 seats
    rng = random.Random(7)
    owner: dict[SeatId, SeatHold] = {}
    tokens_in_order: list[list[int]] = [[], []]

    async def process(index: int, client: aioredis.Redis) -> None:
        store = RedisLockStore(client, SystemClock(), prefix=key_prefix)
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
            results = await store.execute(ops)
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

    await asyncio.gather(process(0, redis_client), process(1, other_client))

    for tokens in tokens_in_order:
        assert tokens
        assert all(a < b for a, b in itertools.pairwise(tokens)), tokens
    everything = tokens_in_order[0] + tokens_in_order[1]
    assert len(set(everything)) == len(everything), "a token was issued twice"
    snapshot = await RedisLockStore(redis_client, SystemClock(), prefix=key_prefix).load(
        session, AreaId("A")
    )
    assert {h.hold_id for h in snapshot.holds} == {h.hold_id for h in owner.values()}
    assert snapshot.last_fencing_token == max(everything)


# --- an expired holder ----------------------------------------------------------------------


async def test_an_expired_holder_cannot_touch_the_next_holders_lock(
    store: RedisLockStore, redis_client: aioredis.Redis, key_prefix: str
) -> None:
    session, s = SessionId(uuid4()), seat("A", 1, 1)
    old = await grant(store, acquire(session, s, ttl=0.1))
    await asyncio.sleep(0.15)
    new = await grant(store, acquire(session, s, ttl=5))
    key = lock_key(key_prefix, session, s)
    before = await redis_client.get(key)
    assert before is not None
    assert new.hold_id.hex.encode() in before

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
            MarkSold(
                session_id=session,
                area_id=old.area_id,
                hold_id=old.hold_id,
                seat_ids=(s,),
                fencing_token=old.fencing_token,
            ),
            MarkSold(  # the right hold, the expired holder's token
                session_id=session,
                area_id=new.area_id,
                hold_id=new.hold_id,
                seat_ids=(s,),
                fencing_token=old.fencing_token,
            ),
        ]
    )
    assert results == [Done(()), Refused((s,)), Refused((s,)), Refused((s,))]
    assert await redis_client.get(key) == before
    assert 4000 < await redis_client.pttl(key) <= 5000
    snapshot = await store.load(session, AreaId("A"))
    assert snapshot.holds == (new,)
    assert dict(snapshot.sold) == {}


# --- one round trip per batch ---------------------------------------------------------------


class CountingConnection(Connection):
    """A connection that counts its writes: one write then reading the replies is a round trip."""

    writes = 0

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        type(self).writes += 1
        await super().send_packed_command(command, check_health)


@pytest.fixture
async def counting_client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    class Counting(CountingConnection):
        writes = 0

    pool = aioredis.ConnectionPool.from_url(redis_url, connection_class=Counting)
    client = aioredis.Redis(connection_pool=pool)
    try:
        await client.ping()  # connect (and its handshake) before counting
        yield client
    finally:
        await client.aclose()


def writes(client: aioredis.Redis) -> int:
    connection_class: Any = client.connection_pool.connection_class
    return int(connection_class.writes)


async def test_a_batch_of_one_session_is_one_round_trip(
    counting_client: aioredis.Redis, key_prefix: str
) -> None:
    store = RedisLockStore(counting_client, SystemClock(), prefix=key_prefix)
    session = SessionId(uuid4())
    await store.execute([acquire(session, seat("Z", 1, 1))])  # the server knows the script now
    first, second = acquire(session, seat("A", 1, 1)), acquire(session, seat("A", 1, 2))
    sold = acquire(session, seat("A", 1, 3), seat("A", 1, 4))
    granted = await store.execute([first, second, sold])
    hold = granted[2]
    assert isinstance(hold, Granted)
    start = writes(counting_client)
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
            MarkSold(
                session_id=session,
                area_id=sold.area_id,
                hold_id=sold.hold_id,
                seat_ids=sold.seat_ids,
                fencing_token=hold.hold.fencing_token,
            ),
            ReleaseSold(session_id=session, area_id=AreaId("A"), seat_ids=(seat("A", 1, 4),)),
        ]
    )
    assert writes(counting_client) - start == 1
    assert all(isinstance(r, Granted) for r in results[:8])
    assert results[8:] == [
        Done(first.seat_ids),
        Done(second.seat_ids),
        Done(sold.seat_ids),
        Done((seat("A", 1, 4),)),
    ]


async def test_a_batch_mixing_sessions_is_one_round_trip_and_keeps_op_order(
    counting_client: aioredis.Redis, key_prefix: str
) -> None:
    store = RedisLockStore(counting_client, SystemClock(), prefix=key_prefix)
    one, two, three = (SessionId(uuid4()) for _ in range(3))
    s = seat("A", 1, 1)
    await store.execute([acquire(one, seat("Z", 1, 1))])
    first = acquire(one, s)
    ops: list[LockOp] = [
        first,
        acquire(two, s),
        acquire(one, s),  # refused: ``first`` holds it
        ReleaseHold(session_id=one, area_id=first.area_id, hold_id=first.hold_id, seat_ids=(s,)),
        acquire(three, s),
        acquire(one, s),  # granted: released just before
        acquire(two, s),  # refused
    ]
    start = writes(counting_client)
    results = await store.execute(ops)
    assert writes(counting_client) - start == 1
    kinds = [type(r).__name__ for r in results]
    assert kinds == ["Granted", "Granted", "Refused", "Done", "Granted", "Granted", "Refused"]
    assert results[3] == Done((s,))
    granted = [r.hold for r in results if isinstance(r, Granted)]
    assert [h.session_id for h in granted] == [one, two, three, one]
    one_tokens = [h.fencing_token for h in granted if h.session_id == one]
    assert one_tokens[0] < one_tokens[1]


async def test_a_server_without_the_script_gets_it_loaded(
    store: RedisLockStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """NOSCRIPT (a restarted or flushed server): load the script, call again, no op lost.

    The server is shared, so the test does not flush its script cache: the first
    ``EVALSHA`` of each path is answered NOSCRIPT by a wrapper instead.
    """
    session, other = SessionId(uuid4()), SessionId(uuid4())
    calls = 0
    real_command = store._command

    async def forgetful(*args: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise NoScriptError("No matching script. Please use EVAL.")
        return await real_command(*args)

    monkeypatch.setattr(store, "_command", forgetful)
    (result,) = await store.execute([acquire(session, seat("A", 1, 1))])
    assert isinstance(result, Granted)
    assert calls == 2

    real_pipeline = store._pipeline
    pipelines = 0

    async def forgetful_pipeline(batch: list[Any]) -> list[Any]:
        nonlocal pipelines
        pipelines += 1
        if pipelines == 1:
            return [NoScriptError("No matching script.") for _ in batch]
        return await real_pipeline(batch)

    monkeypatch.setattr(store, "_pipeline", forgetful_pipeline)
    results = await store.execute(
        [acquire(session, seat("A", 1, 2)), acquire(other, seat("A", 1, 2))]
    )
    assert all(isinstance(r, Granted) for r in results)
    assert pipelines == 2


# --- replays, keys, load -----------------------------------------------------------------------


async def test_a_replayed_batch_answers_as_the_first_time(store: RedisLockStore) -> None:
    """redis-py sends a command again when its reply is lost: the replay must not refuse."""
    session = SessionId(uuid4())
    op = acquire(session, seat("A", 1, 1), seat("A", 1, 2), ttl=5)
    (first,) = await store.execute([op])
    (again,) = await store.execute([op])
    assert isinstance(first, Granted)
    assert again == first
    # the same hold id from another buyer is not a replay
    impostor = acquire(session, *op.seat_ids, ttl=5, hold_id=op.hold_id)
    assert await store.execute([impostor]) == [Refused(op.seat_ids)]
    sell = MarkSold(
        session_id=session,
        area_id=op.area_id,
        hold_id=op.hold_id,
        seat_ids=op.seat_ids,
        fencing_token=first.hold.fencing_token,
    )
    assert await store.execute([sell]) == [Done(op.seat_ids)]
    assert await store.execute([sell]) == [Done(op.seat_ids)]
    stale = MarkSold(
        session_id=session,
        area_id=op.area_id,
        hold_id=op.hold_id,
        seat_ids=op.seat_ids,
        fencing_token=first.hold.fencing_token + 1,
    )
    assert await store.execute([stale]) == [Refused(op.seat_ids)]


async def test_every_key_of_a_session_is_in_one_cluster_slot(
    store: RedisLockStore, redis_client: aioredis.Redis, key_prefix: str
) -> None:
    session = SessionId(uuid4())
    hold = await grant(store, acquire(session, seat("A", 1, 1), seat("A", 1, 2), ttl=5))
    await grant(store, acquire(session, seat("B", 1, 1), area="B", ttl=5))
    await store.execute(
        [
            MarkSold(
                session_id=session,
                area_id=hold.area_id,
                hold_id=hold.hold_id,
                seat_ids=(seat("A", 1, 1), seat("A", 1, 2)),
                fencing_token=hold.fencing_token,
            )
        ]
    )
    keys = sorted([k.decode() async for k in redis_client.scan_iter(match=f"{key_prefix}*")])
    tag = f"{{{session}}}"
    assert keys == sorted(
        [
            f"{key_prefix}seat:lock:{tag}:A-1-1",
            f"{key_prefix}seat:lock:{tag}:A-1-2",
            f"{key_prefix}seat:lock:{tag}:B-1-1",
            f"{key_prefix}seat:token:{tag}",
            f"{key_prefix}seat:holds:{tag}:B",
            f"{key_prefix}seat:sold:{tag}:A",
        ]
    )
    assert len({key_slot(k.encode()) for k in keys}) == 1
    sold_key = lock_key(key_prefix, session, seat("A", 1, 1))
    assert await redis_client.pttl(sold_key) == -1  # a sold mark never expires
    assert 0 < await redis_client.pttl(lock_key(key_prefix, session, seat("B", 1, 1))) <= 5000


async def test_load_prunes_expired_holds_from_the_index(
    store: RedisLockStore, redis_client: aioredis.Redis, key_prefix: str
) -> None:
    session = SessionId(uuid4())
    short = [await grant(store, acquire(session, seat("A", 1, n), ttl=0.1)) for n in range(1, 6)]
    live = await grant(store, acquire(session, seat("A", 2, 1), ttl=5))
    index = f"{key_prefix}seat:holds:{{{session}}}:A"
    assert await redis_client.hlen(index) == len(short) + 1
    await asyncio.sleep(0.15)
    snapshot = await store.load(session, AreaId("A"))
    assert snapshot.holds == (live,)
    assert await redis_client.hlen(index) == 1
    assert snapshot.last_fencing_token == live.fencing_token


async def test_released_and_sold_holds_leave_the_index(
    store: RedisLockStore, redis_client: aioredis.Redis, key_prefix: str
) -> None:
    session = SessionId(uuid4())
    a = await grant(store, acquire(session, seat("A", 1, 1), ttl=5))
    b = await grant(store, acquire(session, seat("A", 1, 2), ttl=5))
    await store.execute(
        [
            ReleaseHold(
                session_id=session, area_id=a.area_id, hold_id=a.hold_id, seat_ids=a.seat_ids
            ),
            MarkSold(
                session_id=session,
                area_id=b.area_id,
                hold_id=b.hold_id,
                seat_ids=b.seat_ids,
                fencing_token=b.fencing_token,
            ),
        ]
    )
    assert await redis_client.exists(f"{key_prefix}seat:holds:{{{session}}}:A") == 0
    sold = await redis_client.hgetall(f"{key_prefix}seat:sold:{{{session}}}:A")
    assert sold == {b"A-1-2": b.order_id.hex.encode()}


async def test_a_client_that_decodes_responses_works_too(redis_url: str, key_prefix: str) -> None:
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        store = RedisLockStore(client, SystemClock(), prefix=key_prefix)
        session = SessionId(uuid4())
        hold = await grant(store, acquire(session, seat("A", 1, 1), ttl=5))
        snapshot = await store.load(session, AreaId("A"))
        assert snapshot.holds == (hold,)
    finally:
        await client.aclose()


# --- an unreachable server ------------------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(
            lambda store, session: store.execute([acquire(session, seat("A", 1, 1))]), id="execute"
        ),
        pytest.param(
            lambda store, session: store.execute(
                [acquire(session, seat("A", 1, 1)), acquire(SessionId(uuid4()), seat("A", 1, 1))]
            ),
            id="execute-mixed",
        ),
        pytest.param(lambda store, session: store.load(session, AreaId("A")), id="load"),
    ],
)
async def test_an_unreachable_redis_raises_adapter_unavailable(call: Any) -> None:
    client = aioredis.Redis.from_url(
        "redis://127.0.0.1:1/0", socket_connect_timeout=1, retry=Retry(NoBackoff(), 0)
    )
    try:
        store = RedisLockStore(client, SystemClock())
        assert isinstance(store, LockStore)
        with pytest.raises(AdapterUnavailable) as raised:
            await call(store, SessionId(uuid4()))
        assert isinstance(raised.value.__cause__, RedisError | OSError)
    finally:
        await client.aclose()


async def test_results_answer_every_op_of_a_large_batch(store: RedisLockStore) -> None:
    session = SessionId(uuid4())
    ops: Sequence[LockOp] = [
        acquire(session, seat("A", 1 + n // 100, 1 + n % 100)) for n in range(500)
    ]
    results: list[LockResult] = await store.execute(ops)
    tokens = [r.hold.fencing_token for r in results if isinstance(r, Granted)]
    assert len(tokens) == 500
    assert all(a < b for a, b in itertools.pairwise(tokens))


async def test_a_hold_of_thousands_of_seats_is_one_call(store: RedisLockStore) -> None:
    """Past the script's chunk size (4,000 arguments per MGET, HSET or HDEL)."""
    session = SessionId(uuid4())
    seats = tuple(seat("A", f"R{n // 500}", 1 + n % 500) for n in range(4500))
    hold = await grant(store, acquire(session, *seats, ttl=5))
    assert (await store.load(session, AreaId("A"))).holds == (hold,)
    (refused,) = await store.execute([acquire(session, seats[0], seats[-1])])
    assert refused == Refused((seats[0], seats[-1]))
    results = await store.execute(
        [
            MarkSold(
                session_id=session,
                area_id=hold.area_id,
                hold_id=hold.hold_id,
                seat_ids=seats,
                fencing_token=hold.fencing_token,
            ),
            ReleaseSold(session_id=session, area_id=AreaId("A"), seat_ids=seats),
        ]
    )
    assert results == [Done(seats), Done(seats)]
    snapshot = await store.load(session, AreaId("A"))
    assert snapshot.holds == ()
    assert dict(snapshot.sold) == {}
