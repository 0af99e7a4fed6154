"""The ``SeatStatusCache`` contract: the current status of every seat of a session."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from uuid import uuid4

from openticket.application.ports.messaging import SeatStatusChanged
from openticket.application.ports.seat_cache import SeatStatusCache
from openticket.domain.seating import SeatStatus
from openticket.domain.shared import AreaId, SeatId, SessionId
from openticket.testing.contracts._builders import T0, seat

HELD, SOLD, AVAILABLE = SeatStatus.HELD, SeatStatus.SOLD, SeatStatus.AVAILABLE


def _change(session_id: SessionId, seat_id: SeatId, status: SeatStatus) -> SeatStatusChanged:
    return SeatStatusChanged(session_id=session_id, seat_id=seat_id, status=status, at=T0)


def _status(statuses: Mapping[SeatId, SeatStatus], seat_id: SeatId) -> SeatStatus:
    """What a seat shows: a seat the cache does not mention is available."""
    return statuses.get(seat_id, AVAILABLE)


class SeatStatusCacheContract:
    """What every ``SeatStatusCache`` must do.

    Subclass it once per adapter and define the fixture ``seat_cache``. Every test
    uses fresh random session ids, so a shared server is fine.
    """

    async def test_a_session_nobody_changed_has_only_available_seats(
        self, seat_cache: SeatStatusCache
    ) -> None:
        """No change yet: the cache mentions no seat of the session."""
        assert dict(await seat_cache.statuses(SessionId(uuid4()))) == {}

    async def test_held_and_sold_seats_are_read_back(self, seat_cache: SeatStatusCache) -> None:
        """Each changed seat reads back with its status."""
        session_id = SessionId(uuid4())
        a1, a2, b1 = seat("A", 1, 1), seat("A", 1, 2), seat("B", 3, 7)
        await seat_cache.apply([_change(session_id, a1, HELD), _change(session_id, a2, HELD)])
        await seat_cache.apply([_change(session_id, b1, SOLD)])
        assert dict(await seat_cache.statuses(session_id)) == {a1: HELD, a2: HELD, b1: SOLD}

    async def test_the_last_change_of_a_seat_wins_within_and_across_batches(
        self, seat_cache: SeatStatusCache
    ) -> None:
        """Changes apply in order: held then sold is sold; sold then held is held."""
        session_id = SessionId(uuid4())
        a1, a2, a3 = seat("A", 1, 1), seat("A", 1, 2), seat("A", 1, 3)
        await seat_cache.apply(
            [
                _change(session_id, a1, HELD),
                _change(session_id, a2, SOLD),
                _change(session_id, a1, SOLD),
                _change(session_id, a2, HELD),
                _change(session_id, a3, HELD),
                _change(session_id, a3, AVAILABLE),
            ]
        )
        statuses = await seat_cache.statuses(session_id)
        assert (_status(statuses, a1), _status(statuses, a2), _status(statuses, a3)) == (
            SOLD,
            HELD,
            AVAILABLE,
        )
        await seat_cache.apply([_change(session_id, a3, SOLD)])
        await seat_cache.apply([_change(session_id, a3, AVAILABLE), _change(session_id, a3, HELD)])
        assert _status(await seat_cache.statuses(session_id), a3) == HELD

    async def test_a_seat_made_available_again_reads_as_available(
        self, seat_cache: SeatStatusCache
    ) -> None:
        """Released, expired or returned seats read as available; the others stay."""
        session_id = SessionId(uuid4())
        a1, a2 = seat("A", 1, 1), seat("A", 1, 2)
        await seat_cache.apply([_change(session_id, a1, HELD), _change(session_id, a2, SOLD)])
        await seat_cache.apply([_change(session_id, a1, AVAILABLE)])
        statuses = await seat_cache.statuses(session_id)
        assert _status(statuses, a1) == AVAILABLE
        assert {s: st for s, st in statuses.items() if st is not AVAILABLE} == {a2: SOLD}
        await seat_cache.apply([_change(session_id, a2, AVAILABLE)])
        statuses = await seat_cache.statuses(session_id)
        assert all(st is AVAILABLE for st in statuses.values())

    async def test_freeing_a_seat_nobody_took_is_harmless(
        self, seat_cache: SeatStatusCache
    ) -> None:
        """An available change for an unknown seat or session changes nothing."""
        session_id = SessionId(uuid4())
        await seat_cache.apply([_change(session_id, seat("A", 1, 1), AVAILABLE)])
        statuses = await seat_cache.statuses(session_id)
        assert all(st is AVAILABLE for st in statuses.values())

    async def test_sessions_are_kept_apart(self, seat_cache: SeatStatusCache) -> None:
        """One batch may change several sessions; each reads only its own seats."""
        first, second = SessionId(uuid4()), SessionId(uuid4())
        same_seat = seat("A", 1, 1)
        await seat_cache.apply(
            [
                _change(first, same_seat, HELD),
                _change(second, same_seat, SOLD),
                _change(second, seat("B", 1, 1), HELD),
            ]
        )
        assert dict(await seat_cache.statuses(first)) == {same_seat: HELD}
        assert dict(await seat_cache.statuses(second)) == {
            same_seat: SOLD,
            seat("B", 1, 1): HELD,
        }

    async def test_clear_forgets_one_session(self, seat_cache: SeatStatusCache) -> None:
        """After ``clear`` every seat of the session is available; other sessions stay."""
        cleared, kept = SessionId(uuid4()), SessionId(uuid4())
        await seat_cache.apply(
            [_change(cleared, seat("A", 1, 1), SOLD), _change(kept, seat("A", 1, 1), HELD)]
        )
        await seat_cache.clear(cleared)
        assert dict(await seat_cache.statuses(cleared)) == {}
        assert dict(await seat_cache.statuses(kept)) == {seat("A", 1, 1): HELD}
        await seat_cache.clear(cleared)  # twice, or a session never seen: harmless
        await seat_cache.clear(SessionId(uuid4()))
        await seat_cache.apply([_change(cleared, seat("A", 1, 2), HELD)])
        assert dict(await seat_cache.statuses(cleared)) == {seat("A", 1, 2): HELD}

    async def test_areas_marked_complete_are_listed_per_session_until_cleared(
        self, seat_cache: SeatStatusCache
    ) -> None:
        """No area is complete at first; marking is per session, idempotent, and cleared."""
        session_id, other = SessionId(uuid4()), SessionId(uuid4())
        assert await seat_cache.complete_areas(session_id) == frozenset()
        await seat_cache.mark_complete(session_id, AreaId("A"))
        await seat_cache.mark_complete(session_id, AreaId("A"))
        await seat_cache.mark_complete(session_id, AreaId("B"))
        await seat_cache.mark_complete(other, AreaId("C"))
        assert await seat_cache.complete_areas(session_id) == {AreaId("A"), AreaId("B")}
        await seat_cache.clear(session_id)
        assert await seat_cache.complete_areas(session_id) == frozenset()
        assert await seat_cache.complete_areas(other) == {AreaId("C")}

    async def test_an_empty_batch_is_harmless(self, seat_cache: SeatStatusCache) -> None:
        """Nothing to apply: nothing changes."""
        session_id = SessionId(uuid4())
        await seat_cache.apply([])
        await seat_cache.apply([_change(session_id, seat("A", 1, 1), SOLD)])
        await seat_cache.apply([])
        assert dict(await seat_cache.statuses(session_id)) == {seat("A", 1, 1): SOLD}

    async def test_what_statuses_returned_does_not_change_later(
        self, seat_cache: SeatStatusCache
    ) -> None:
        """The mapping is a snapshot of the moment it was read."""
        session_id = SessionId(uuid4())
        await seat_cache.apply([_change(session_id, seat("A", 1, 1), HELD)])
        before = await seat_cache.statuses(session_id)
        await seat_cache.apply(
            [_change(session_id, seat("A", 1, 1), SOLD), _change(session_id, seat("A", 1, 2), HELD)]
        )
        assert dict(before) == {seat("A", 1, 1): HELD}

    async def test_a_whole_sold_out_session_reads_back(self, seat_cache: SeatStatusCache) -> None:
        """Thousands of seats in one batch, then half of them freed in the next."""
        session_id = SessionId(uuid4())
        seat_ids = [
            seat(area, row, n) for area in "AB" for row in range(1, 21) for n in range(1, 51)
        ]
        started = T0
        await seat_cache.apply(
            [
                SeatStatusChanged(
                    session_id=session_id,
                    seat_id=s,
                    status=SOLD,
                    at=started + timedelta(milliseconds=i),
                )
                for i, s in enumerate(seat_ids)
            ]
        )
        assert dict(await seat_cache.statuses(session_id)) == dict.fromkeys(seat_ids, SOLD)
        await seat_cache.apply([_change(session_id, s, AVAILABLE) for s in seat_ids[::2]])
        statuses = await seat_cache.statuses(session_id)
        assert {s: st for s, st in statuses.items() if st is not AVAILABLE} == dict.fromkeys(
            seat_ids[1::2], SOLD
        )
