"""The waiting-room contract against the in-memory waiting-room store."""

import random
from collections import Counter
from datetime import timedelta
from uuid import uuid4

import pytest

from openticket.adapters.memory.clock import FakeClock
from openticket.adapters.memory.waiting_room import MemoryWaitingRoomStore
from openticket.application.ports.waiting_room import WaitingRoomStore
from openticket.domain.shared import SessionId, UserId
from openticket.testing.contracts.waiting_room import ScriptedDraws, WaitingRoomStoreContract


class TestMemoryWaitingRoomStore(WaitingRoomStoreContract):
    @pytest.fixture
    async def waiting_room(self, clock: FakeClock, draws: ScriptedDraws) -> WaitingRoomStore:
        return MemoryWaitingRoomStore(
            clock, admission_ttl=timedelta(seconds=self.admission_ttl), draw=draws
        )


def test_the_memory_store_is_a_waiting_room_store() -> None:
    assert isinstance(MemoryWaitingRoomStore(FakeClock()), WaitingRoomStore)


def test_an_admission_ttl_under_a_millisecond_is_refused() -> None:
    with pytest.raises(ValueError, match="admission_ttl"):
        MemoryWaitingRoomStore(FakeClock(), admission_ttl=timedelta(microseconds=999))


async def test_run_out_admissions_and_emptied_rooms_are_forgotten() -> None:
    """A long-running process does not keep every room and admission it ever had."""
    clock = FakeClock()
    store = MemoryWaitingRoomStore(clock, admission_ttl=timedelta(seconds=1))
    admitted, left = SessionId(uuid4()), SessionId(uuid4())
    for _ in range(3):
        await store.join(admitted, UserId(uuid4()))
    await store.admit_next(admitted, 3)
    user = UserId(uuid4())
    await store.join(left, user)
    await store.remove(left, user)
    clock.advance(1)
    assert await store.admit_next(admitted, 1) == []
    assert store._rooms == {}  # the leak is only visible inside


async def test_the_first_place_of_the_pre_queue_goes_to_each_joiner_alike() -> None:
    """Six buyers join 6,000 pre-queues in the same order: each comes first about 1,000 times.

    Seeded, so the outcome is fixed; the bound is generous (chi-square with 5 degrees of
    freedom exceeds 20.5 one time in a thousand). A store that kept the join order would
    put the first joiner first every time (chi-square 30,000).
    """
    clock = FakeClock()
    store = MemoryWaitingRoomStore(clock, draw=random.Random(16).random)
    opens = clock.now() + timedelta(minutes=30)
    buyers = [UserId(uuid4()) for _ in range(6)]
    rooms = 6000
    first: Counter[UserId] = Counter()
    for _ in range(rooms):
        session = SessionId(uuid4())
        for buyer in buyers:
            await store.join(session, buyer, pre_queue_until=opens)
        (winner,) = await store.admit_next(session, 1)
        first[winner] += 1
    expected = rooms / len(buyers)
    chi_square = sum((first[b] - expected) ** 2 / expected for b in buyers)
    assert chi_square < 20.5, (chi_square, first)


async def test_leases_of_past_rooms_and_emptied_rooms_leave_no_trace() -> None:
    """Released leases are forgotten, and so are rooms nobody waits in any more."""
    clock = FakeClock()
    store = MemoryWaitingRoomStore(clock)
    session, user = SessionId(uuid4()), UserId(uuid4())
    await store.join(session, user, pre_queue_until=clock.now() + timedelta(minutes=1))
    assert await store.rooms() == [session]
    assert await store.lease(session, "api-1", timedelta(seconds=5))
    await store.admit_next(session, 1)
    assert await store.rooms() == []
    await store.release_lease(session, "api-1")
    assert store._leases == {}  # the leak is only visible inside


async def test_a_refused_draw_leaves_no_room_behind() -> None:
    """A draw outside [0, 1) is refused before the session's room is made."""
    clock = FakeClock()
    store = MemoryWaitingRoomStore(clock, draw=lambda: 1.5)
    with pytest.raises(ValueError, match="ticket"):
        await store.join(
            SessionId(uuid4()), UserId(uuid4()), pre_queue_until=clock.now() + timedelta(hours=1)
        )
    assert store._rooms == {}  # the leak is only visible inside
