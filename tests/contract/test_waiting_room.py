"""The waiting-room contract against the in-memory waiting-room store."""

from datetime import timedelta
from uuid import uuid4

import pytest

from openticket.adapters.memory.clock import FakeClock
from openticket.adapters.memory.waiting_room import MemoryWaitingRoomStore
from openticket.application.ports.waiting_room import WaitingRoomStore
from openticket.domain.shared import SessionId, UserId
from openticket.testing.contracts.waiting_room import WaitingRoomStoreContract


class TestMemoryWaitingRoomStore(WaitingRoomStoreContract):
    @pytest.fixture
    async def waiting_room(self, clock: FakeClock) -> WaitingRoomStore:
        return MemoryWaitingRoomStore(clock, admission_ttl=timedelta(seconds=self.admission_ttl))


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
