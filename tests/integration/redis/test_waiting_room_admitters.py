"""Two API processes' admitters over one Redis waiting room: one admits, within the stock.

Each process runs the ``WaitingRoom`` admitter on every tick. The session's lease in
Redis lets exactly one of them admit, and the outflow rule holds across both: buyers
admitted and still shopping never pass the seats for sale × overbook. When the holder
stops, the other takes over.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest
import redis.asyncio as aioredis

from openticket.adapters.identity.admission_tokens import JwtAdmissionTokens, admission_key
from openticket.adapters.redis.waiting_room import RedisWaitingRoomStore
from openticket.adapters.system import SystemClock
from openticket.application.access import Requester
from openticket.application.gate.waiting_room import GatePolicy, WaitingRoom
from openticket.application.seating.board import Stock
from openticket.domain.catalog import Session
from openticket.domain.shared import EventId, SessionId, UserId

pytestmark = pytest.mark.redis

SEATS_FOR_SALE = 4
OVERBOOK = 1.5


class _Counted:
    """A ``GateObserver`` counting one process's admissions."""

    def __init__(self) -> None:
        self.admissions = 0

    def admitted(self, session_id: SessionId, count: int) -> None:
        self.admissions += count

    def waiting(self, session_id: SessionId, count: int) -> None:
        """Not counted here."""

    def suspected(self, session_id: SessionId, kind: str, action: str) -> None:
        """Not counted here."""

    def waited(self, session_id: SessionId, seconds: float) -> None:
        """Not counted here."""


def _session(session_id: SessionId) -> Session:
    now = datetime.now(UTC)
    return Session(
        session_id=session_id,
        event_id=EventId(uuid4()),
        start_time=now + timedelta(days=3),
        end_time=now + timedelta(days=3, hours=2),
        sale_start_time=now - timedelta(minutes=1),
        sale_end_time=now + timedelta(days=2),
        queue_enabled=True,
    )


async def test_two_processes_admitters_let_in_once_and_within_the_stock(
    redis_client: aioredis.Redis, key_prefix: str
) -> None:
    session = _session(SessionId(uuid4()))
    clock = SystemClock()

    class Sessions:
        async def get_session(self, session_id: SessionId) -> Session:
            return session

    async def stock(_: SessionId) -> Stock:
        return Stock(sellable=SEATS_FOR_SALE, held=0, sold=0)

    def process(name: str) -> tuple[WaitingRoom, _Counted]:
        observer = _Counted()
        store = RedisWaitingRoomStore(redis_client, clock, prefix=key_prefix)
        gate = WaitingRoom(
            store=store,
            catalog=Sessions(),
            stock=stock,
            tokens=JwtAdmissionTokens(clock, admission_key(b"two processes' shared secret")),
            clock=clock,
            policy=GatePolicy(overbook=OVERBOOK, admit_per_second=1000),
            holder=name,
            observer=observer,
        )
        return gate, observer

    (first, first_seen), (second, second_seen) = process("api-1"), process("api-2")
    buyers = [Requester(UserId(UUID(int=n + 1))) for n in range(20)]
    for n, buyer in enumerate(buyers):  # joins arrive through both processes
        await (first if n % 2 else second).join(buyer, session.session_id)

    for _ in range(5):
        await asyncio.gather(first.admit_due(), second.admit_due())
    room = int(SEATS_FOR_SALE * OVERBOOK)
    store = RedisWaitingRoomStore(redis_client, clock, prefix=key_prefix)
    assert await store.admitted_count(session.session_id) == room
    assert sorted([first_seen.admissions, second_seen.admissions]) == [0, room]

    # the buyers let in finish: the holder lets the next ones in, and no more
    holder, other = (first, second) if first_seen.admissions else (second, first)
    for buyer in buyers:
        if await store.is_admitted(session.session_id, buyer.user_id):
            await holder.spend(buyer, session.session_id)
    await asyncio.gather(holder.admit_due(), other.admit_due())
    assert await store.admitted_count(session.session_id) == room
    assert other is not holder
    assert (second_seen if other is second else first_seen).admissions == 0

    # the holder stops (its lease released): the other process takes over at once
    await holder.stop_admitting()
    for buyer in buyers:
        if await store.is_admitted(session.session_id, buyer.user_id):
            await other.spend(buyer, session.session_id)
    await other.admit_due()
    assert (second_seen if other is second else first_seen).admissions == room
    assert await store.admitted_count(session.session_id) == room
    assert await store.length(session.session_id) == len(buyers) - 3 * room
