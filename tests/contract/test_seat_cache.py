"""The seat-status-cache contract against the in-memory cache, and what only it promises."""

from uuid import uuid4

import pytest

from openticket.adapters.memory.seat_cache import MemorySeatStatusCache
from openticket.application.ports.messaging import SeatStatusChanged
from openticket.application.ports.seat_cache import SeatStatusCache
from openticket.domain.seating import SeatStatus
from openticket.domain.shared import SeatId, SessionId
from openticket.testing.contracts._builders import T0
from openticket.testing.contracts.seat_cache import SeatStatusCacheContract


class TestMemorySeatStatusCache(SeatStatusCacheContract):
    @pytest.fixture
    def seat_cache(self) -> SeatStatusCache:
        return MemorySeatStatusCache()


def test_the_memory_cache_is_a_seat_status_cache() -> None:
    assert isinstance(MemorySeatStatusCache(), SeatStatusCache)


async def test_the_memory_cache_forgets_sessions_whose_seats_are_all_free_again() -> None:
    cache = MemorySeatStatusCache()
    session_id = SessionId(uuid4())

    def change(status: SeatStatus) -> SeatStatusChanged:
        return SeatStatusChanged(
            session_id=session_id, seat_id=SeatId("A-1-1"), status=status, at=T0
        )

    await cache.apply([change(SeatStatus.HELD)])
    await cache.apply([change(SeatStatus.AVAILABLE)])
    assert cache._sessions == {}
