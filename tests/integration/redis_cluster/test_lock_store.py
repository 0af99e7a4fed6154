"""The Redis lock store on a three-master cluster: the whole contract, and batches whose
sessions live on different masters."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from uuid import uuid4

import pytest
import redis
from redis.asyncio.cluster import RedisCluster

from openticket.adapters.redis.lock_store import RedisLockStore
from openticket.adapters.system import SystemClock
from openticket.application.ports.clock import Clock
from openticket.application.ports.lock_store import (
    AcquireHold,
    Done,
    Granted,
    LockOp,
    LockStore,
    MarkSold,
    Refused,
    ReleaseHold,
)
from openticket.domain.seating import SeatHold
from openticket.domain.shared import AreaId, HoldId, OrderId, SeatId, SessionId, UserId
from openticket.testing.contracts import InRealTime, LockStoreContract
from openticket.testing.contracts._builders import seat

from .conftest import LocalCluster
from .conftest import sessions_on_every_master as on_every_master

pytestmark = pytest.mark.redis_cluster

TTL = 0.3
"""Seconds a hold lives in the contract's tests."""


class TestRedisLockStoreOnACluster(InRealTime, LockStoreContract):
    """In real time, every session's keys on the master of its hash tag's slot."""

    hold_ttl = TTL

    @pytest.fixture
    async def lock_store(
        self, cluster_client: RedisCluster, clock: Clock, key_prefix: str
    ) -> LockStore:
        return RedisLockStore(cluster_client, clock, prefix=key_prefix)


# --- helpers -------------------------------------------------------------------------------


def acquire(session: SessionId, *seats: SeatId, ttl: float = 30, area: str = "A") -> AcquireHold:
    at = SystemClock().now() + timedelta(seconds=ttl)
    return AcquireHold(
        hold_id=HoldId(uuid4()),
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


def token_key(prefix: str, session: SessionId) -> str:
    return f"{prefix}seat:token:{{{session}}}"


def sessions_on_every_master(cluster: LocalCluster, prefix: str) -> dict[int, SessionId]:
    """One new session per master (the master of its hash tag's slot)."""
    return on_every_master(cluster, lambda session: token_key(prefix, session))


# --- batches across masters ------------------------------------------------------------------


async def test_a_batch_spanning_three_masters_is_answered_in_op_order(
    redis_cluster: LocalCluster, cluster_client: RedisCluster, key_prefix: str
) -> None:
    """An actor's partition may hold sessions of every master: one ``execute`` for all."""
    store = RedisLockStore(cluster_client, SystemClock(), prefix=key_prefix)
    one, two, three = sessions_on_every_master(redis_cluster, key_prefix).values()
    s = seat("A", 1, 1)
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
    results = await store.execute(ops)
    kinds = [type(r).__name__ for r in results]
    assert kinds == ["Granted", "Granted", "Refused", "Done", "Granted", "Granted", "Refused"]
    granted = [r.hold for r in results if isinstance(r, Granted)]
    assert [h.session_id for h in granted] == [one, two, three, one]
    for session in (one, two, three):
        held = (await store.load(session, AreaId("A"))).holds
        assert [h.seat_ids for h in held] == [(s,)]


async def test_every_key_of_a_session_is_on_its_masters_slot(
    redis_cluster: LocalCluster, cluster_client: RedisCluster, key_prefix: str
) -> None:
    store = RedisLockStore(cluster_client, SystemClock(), prefix=key_prefix)
    sessions = sessions_on_every_master(redis_cluster, key_prefix)
    for master, session in sessions.items():
        hold = await grant(store, acquire(session, seat("A", 1, 1), seat("A", 1, 2)))
        await grant(store, acquire(session, seat("B", 1, 1), area="B"))
        sell = MarkSold(
            session_id=session,
            area_id=hold.area_id,
            hold_id=hold.hold_id,
            seat_ids=hold.seat_ids,
            fencing_token=hold.fencing_token,
        )
        assert await store.execute([sell]) == [Done(hold.seat_ids)]
        node = redis.Redis(port=master)
        try:
            keys = sorted(k.decode() for k in node.scan_iter(match=f"{key_prefix}*{{{session}}}*"))
            assert len(keys) == 6  # two locks and a sold mark, the token, two indexes
            assert {node.execute_command("CLUSTER KEYSLOT", k) for k in keys} == {
                cluster_client.keyslot(token_key(key_prefix, session))
            }
        finally:
            node.close()


async def test_a_master_that_lost_the_script_gets_it_again(
    redis_cluster: LocalCluster, cluster_client: RedisCluster, key_prefix: str
) -> None:
    """A promoted replica may not know the script (NOSCRIPT): loaded again, nothing lost."""
    store = RedisLockStore(cluster_client, SystemClock(), prefix=key_prefix)
    sessions = sessions_on_every_master(redis_cluster, key_prefix)
    for session in sessions.values():
        await grant(store, acquire(session, seat("A", 1, 1)))
    for master in sessions:
        node = redis.Redis(port=master)
        try:
            node.script_flush()
        finally:
            node.close()
    one = acquire(sessions.popitem()[1], seat("A", 2, 1))
    results = await store.execute([one, *(acquire(s, seat("A", 2, 1)) for s in sessions.values())])
    assert all(isinstance(r, Granted) for r in results), results
    (again,) = await store.execute([acquire(one.session_id, seat("A", 2, 1))])
    assert again == Refused((seat("A", 2, 1),))


async def test_a_thousand_buyers_on_two_cluster_clients_get_one_seat_once(
    redis_cluster: LocalCluster, cluster_client: RedisCluster, key_prefix: str
) -> None:
    other = RedisCluster.from_url(redis_cluster.url)
    try:
        stores = [
            RedisLockStore(c, SystemClock(), prefix=key_prefix) for c in (cluster_client, other)
        ]
        session, s = SessionId(uuid4()), seat("A", 1, 1)
        ops = [acquire(session, s) for _ in range(1000)]
        answers = await asyncio.gather(*(stores[i % 2].execute([op]) for i, op in enumerate(ops)))
        granted = [r for (r,) in answers if isinstance(r, Granted)]
        assert len(granted) == 1
        assert all(r == Refused((s,)) for (r,) in answers if not isinstance(r, Granted))
    finally:
        await other.aclose()
