"""The ``WaitingRoomStore`` contract: a fair first-come queue per session, admitted k at a time."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from uuid import uuid4

import pytest

from openticket.adapters.memory.clock import FakeClock
from openticket.application.ports.clock import Clock
from openticket.application.ports.waiting_room import QueueTicket, WaitingRoomStore
from openticket.domain.shared import SessionId, UserId
from openticket.testing.contracts._clock import ClockedContract

_MILLISECOND = timedelta(milliseconds=1)


class WaitingRoomStoreContract(ClockedContract):
    """What every ``WaitingRoomStore`` adapter must do.

    Subclass it once per adapter and define the async fixture ``waiting_room``, which
    yields a store built with the ``clock`` fixture and an admission TTL of
    :attr:`admission_ttl` seconds. The default ``clock`` is a ``FakeClock`` and
    :meth:`pass_time` moves it; an adapter used with real time (Redis in the
    integration tests) overrides ``clock`` with a system clock, ``pass_time`` with a
    real sleep, and usually :attr:`admission_ttl` with something short. Every test
    uses fresh random session and user ids, so a shared server is fine.
    """

    admission_ttl: float = 1.0
    """Seconds an admission lasts in the store under test. Tests pass fractions of it."""

    concurrent_joins: int = 500
    """How many buyers join one queue at once in the concurrency test."""

    # --- helpers ---------------------------------------------------------------------

    @property
    def _ttl(self) -> timedelta:
        """The admission TTL as the stores keep it (whole milliseconds)."""
        return timedelta(seconds=self.admission_ttl) // _MILLISECOND * _MILLISECOND

    @staticmethod
    def _session() -> SessionId:
        return SessionId(uuid4())

    @staticmethod
    def _users(count: int) -> list[UserId]:
        return [UserId(uuid4()) for _ in range(count)]

    @staticmethod
    def _floor_ms(when: datetime) -> datetime:
        return when.replace(microsecond=when.microsecond // 1000 * 1000)

    async def _join_all(
        self, store: WaitingRoomStore, session: SessionId, count: int
    ) -> list[UserId]:
        """``count`` new buyers, joined one after the other; in join order."""
        users = self._users(count)
        for user in users:
            await store.join(session, user)
        return users

    async def _places(
        self, store: WaitingRoomStore, session: SessionId, users: list[UserId]
    ) -> list[int | None]:
        """Each buyer's place (``None`` for nobody, 0 for admitted)."""
        tickets = [await store.position(session, user) for user in users]
        return [None if t is None else t.position for t in tickets]

    async def _admitted_ticket(
        self, store: WaitingRoomStore, session: SessionId, user: UserId
    ) -> QueueTicket:
        ticket = await store.position(session, user)
        assert ticket is not None, f"{user} is not in the waiting room"
        assert ticket.admitted, f"{user} is not admitted: {ticket}"
        return ticket

    # --- joining -----------------------------------------------------------------------

    async def test_joins_get_places_in_join_order(self, waiting_room: WaitingRoomStore) -> None:
        """The n-th buyer to join is waiting at place n; ``position`` says the same."""
        session = self._session()
        users = self._users(5)
        tickets = [await waiting_room.join(session, user) for user in users]
        assert [t.position for t in tickets] == [1, 2, 3, 4, 5]
        assert not any(t.admitted for t in tickets)
        assert all(t.admitted_until is None for t in tickets)
        assert [await waiting_room.position(session, user) for user in users] == tickets
        assert await waiting_room.length(session) == 5

    async def test_joined_at_is_the_moment_of_joining(
        self, waiting_room: WaitingRoomStore, clock: Clock
    ) -> None:
        """``joined_at`` is the store clock's time of the join, to the millisecond."""
        session = self._session()
        before = self._floor_ms(clock.now())
        ticket = await waiting_room.join(session, UserId(uuid4()))
        after = clock.now()
        assert before <= ticket.joined_at <= after
        assert ticket.joined_at.microsecond % 1000 == 0

    async def test_joining_again_keeps_the_place(
        self, waiting_room: WaitingRoomStore, clock: Clock
    ) -> None:
        """A buyer who joins again (a retry, a second tab) keeps place and join time."""
        session = self._session()
        first, second, third = await self._join_all(waiting_room, session, 3)
        original = await waiting_room.position(session, second)
        await self.pass_time(clock, self.admission_ttl / 10)
        again = await waiting_room.join(session, second)
        assert again == original
        assert again.position == 2
        assert await waiting_room.length(session) == 3
        latecomer = await waiting_room.join(session, UserId(uuid4()))
        assert latecomer.position == 4
        assert await self._places(waiting_room, session, [first, second, third]) == [1, 2, 3]

    async def test_many_joins_of_one_buyer_at_once_make_one_place(
        self, waiting_room: WaitingRoomStore
    ) -> None:
        """Racing joins of the same buyer all get the same single place."""
        session = self._session()
        await self._join_all(waiting_room, session, 2)
        user = UserId(uuid4())
        tickets = await asyncio.gather(*(waiting_room.join(session, user) for _ in range(50)))
        assert {t.position for t in tickets} == {3}
        assert len({t.joined_at for t in tickets}) == 1
        assert await waiting_room.length(session) == 3

    async def test_concurrent_joins_get_every_place_exactly_once(
        self, waiting_room: WaitingRoomStore
    ) -> None:
        """Many buyers joining at once get the places 1..n, each one, and keep them."""
        session = self._session()
        users = self._users(self.concurrent_joins)
        tickets = await asyncio.gather(*(waiting_room.join(session, user) for user in users))
        places = [t.position for t in tickets]
        assert sorted(places) == list(range(1, self.concurrent_joins + 1))
        assert await waiting_room.length(session) == self.concurrent_joins
        assert await self._places(waiting_room, session, users) == places
        # admission follows the places the buyers were shown
        by_place = [user for _, user in sorted(zip(places, users, strict=True))]
        assert await waiting_room.admit_next(session, self.concurrent_joins) == by_place

    # --- places move up ----------------------------------------------------------------

    async def test_places_move_up_when_someone_ahead_leaves(
        self, waiting_room: WaitingRoomStore
    ) -> None:
        """Leaving moves everyone behind up by one; those ahead keep their place."""
        session = self._session()
        a, b, c, d = await self._join_all(waiting_room, session, 4)
        assert await waiting_room.remove(session, b) is True
        assert await self._places(waiting_room, session, [a, b, c, d]) == [1, None, 2, 3]
        assert await waiting_room.length(session) == 3

    async def test_places_move_up_when_buyers_ahead_are_admitted(
        self, waiting_room: WaitingRoomStore
    ) -> None:
        """After two admissions the third buyer is first; joining again keeps that."""
        session = self._session()
        a, b, c, d = await self._join_all(waiting_room, session, 4)
        assert await waiting_room.admit_next(session, 2) == [a, b]
        assert await self._places(waiting_room, session, [a, b, c, d]) == [0, 0, 1, 2]
        assert (await waiting_room.join(session, c)).position == 1
        assert (await waiting_room.join(session, UserId(uuid4()))).position == 3

    # --- admitting ---------------------------------------------------------------------

    async def test_admit_next_admits_in_join_order(self, waiting_room: WaitingRoomStore) -> None:
        """Each call admits the longest-waiting buyers, at most ``count`` of them."""
        session = self._session()
        users = await self._join_all(waiting_room, session, 5)
        assert await waiting_room.admit_next(session, 2) == users[0:2]
        assert await waiting_room.admit_next(session, 2) == users[2:4]
        assert await waiting_room.admit_next(session, 5) == users[4:5]
        assert await waiting_room.admit_next(session, 3) == []
        assert await waiting_room.length(session) == 0
        assert all([await waiting_room.is_admitted(session, user) for user in users])

    async def test_admit_next_skips_buyers_who_left(self, waiting_room: WaitingRoomStore) -> None:
        """A buyer who left the queue is not admitted; the next one is."""
        session = self._session()
        a, b, c = await self._join_all(waiting_room, session, 3)
        await waiting_room.remove(session, b)
        assert await waiting_room.admit_next(session, 2) == [a, c]
        assert not await waiting_room.is_admitted(session, b)

    async def test_admitting_from_an_empty_queue_admits_nobody(
        self, waiting_room: WaitingRoomStore
    ) -> None:
        """An unknown or emptied queue answers ``[]``; so does a count of zero."""
        session = self._session()
        assert await waiting_room.admit_next(session, 3) == []
        (user,) = await self._join_all(waiting_room, session, 1)
        assert await waiting_room.admit_next(session, 0) == []
        assert await self._places(waiting_room, session, [user]) == [1]
        assert await waiting_room.admit_next(session, 1) == [user]
        assert await waiting_room.admit_next(session, 1) == []

    async def test_a_negative_count_is_refused(self, waiting_room: WaitingRoomStore) -> None:
        """``admit_next`` with a negative count raises ``ValueError`` and admits nobody."""
        session = self._session()
        (user,) = await self._join_all(waiting_room, session, 1)
        with pytest.raises(ValueError, match="count"):
            await waiting_room.admit_next(session, -1)
        assert await self._places(waiting_room, session, [user]) == [1]

    async def test_an_admitted_buyer_is_let_in_for_the_admission_ttl(
        self, waiting_room: WaitingRoomStore, clock: Clock
    ) -> None:
        """Admitted: place 0, join time kept, admitted until TTL from the admission."""
        session = self._session()
        first, second = await self._join_all(waiting_room, session, 2)
        joined = await waiting_room.position(session, first)
        assert joined is not None
        await self.pass_time(clock, self.admission_ttl / 10)
        before = self._floor_ms(clock.now())
        assert await waiting_room.admit_next(session, 1) == [first]
        after = clock.now()

        ticket = await self._admitted_ticket(waiting_room, session, first)
        assert ticket.position == 0
        assert ticket.joined_at == joined.joined_at
        assert ticket.admitted_until is not None
        assert before + self._ttl <= ticket.admitted_until <= after + self._ttl
        assert await waiting_room.is_admitted(session, first)
        assert not await waiting_room.is_admitted(session, second)
        assert await waiting_room.length(session) == 1

    async def test_an_admitted_buyer_who_joins_again_stays_admitted(
        self, waiting_room: WaitingRoomStore
    ) -> None:
        """Joining after admission answers the admission; it adds no place in the queue."""
        session = self._session()
        first, _ = await self._join_all(waiting_room, session, 2)
        await waiting_room.admit_next(session, 1)
        admitted = await self._admitted_ticket(waiting_room, session, first)
        assert await waiting_room.join(session, first) == admitted
        assert await waiting_room.length(session) == 1
        assert await waiting_room.is_admitted(session, first)

    async def test_concurrent_admissions_never_admit_a_buyer_twice(
        self, waiting_room: WaitingRoomStore
    ) -> None:
        """Racing ``admit_next`` calls admit every waiting buyer once, in join-order runs."""
        session = self._session()
        users = await self._join_all(waiting_room, session, 30)
        batches = await asyncio.gather(*(waiting_room.admit_next(session, 5) for _ in range(10)))
        admitted = [user for batch in batches for user in batch]
        assert len(admitted) == len(set(admitted)) == 30
        assert set(admitted) == set(users)
        # every batch is a run of the queue as it stood: the batches, put in order, are it
        runs = sorted((batch for batch in batches if batch), key=lambda b: users.index(b[0]))
        assert [user for run in runs for user in run] == users
        assert all(len(batch) <= 5 for batch in batches)
        assert await waiting_room.length(session) == 0
        assert all([await waiting_room.is_admitted(session, user) for user in users])

    # --- admissions run out ------------------------------------------------------------

    async def test_an_admission_runs_out_after_the_ttl(
        self, waiting_room: WaitingRoomStore, clock: Clock
    ) -> None:
        """After the TTL the buyer is neither admitted nor waiting; the queue is untouched."""
        session = self._session()
        first, second = await self._join_all(waiting_room, session, 2)
        await waiting_room.admit_next(session, 1)
        await self.pass_time(clock, self.admission_ttl / 2)
        assert await waiting_room.is_admitted(session, first)
        await self.pass_time(clock, self.admission_ttl * 0.6)
        assert not await waiting_room.is_admitted(session, first)
        assert await waiting_room.position(session, first) is None
        assert await self._places(waiting_room, session, [second]) == [1]
        assert await waiting_room.length(session) == 1

    async def test_a_buyer_whose_admission_ran_out_joins_at_the_back(
        self, waiting_room: WaitingRoomStore, clock: Clock
    ) -> None:
        """The old place is gone: a new join is a new place behind everyone, a new join time."""
        session = self._session()
        first, second = await self._join_all(waiting_room, session, 2)
        old = await waiting_room.position(session, first)
        assert old is not None
        await waiting_room.admit_next(session, 1)
        await self.pass_time(clock, self.admission_ttl * 1.1)
        third = UserId(uuid4())
        assert (await waiting_room.join(session, third)).position == 2
        again = await waiting_room.join(session, first)
        assert again.position == 3
        assert not again.admitted
        assert again.joined_at > old.joined_at
        assert await waiting_room.admit_next(session, 3) == [second, third, first]

    async def test_an_admission_ends_exactly_at_admitted_until(
        self, waiting_room: WaitingRoomStore, clock: Clock
    ) -> None:
        """Admitted one millisecond before ``admitted_until``, not at it (needs a FakeClock)."""
        if not isinstance(clock, FakeClock):
            raise TypeError(
                "this check steps time to the millisecond: it needs a FakeClock"
                " (a real-time subclass sets the test to None)"
            )
        session = self._session()
        (user,) = await self._join_all(waiting_room, session, 1)
        await waiting_room.admit_next(session, 1)
        ticket = await self._admitted_ticket(waiting_room, session, user)
        assert ticket.admitted_until is not None
        clock.set(ticket.admitted_until - timedelta(milliseconds=1))
        assert await waiting_room.is_admitted(session, user)
        clock.set(ticket.admitted_until)
        assert not await waiting_room.is_admitted(session, user)
        assert await waiting_room.position(session, user) is None

    # --- leaving -----------------------------------------------------------------------

    async def test_a_waiting_buyer_can_leave(self, waiting_room: WaitingRoomStore) -> None:
        """``remove`` takes the buyer out once; joining again is a new place at the back."""
        session = self._session()
        first, second = await self._join_all(waiting_room, session, 2)
        assert await waiting_room.remove(session, first) is True
        assert await waiting_room.position(session, first) is None
        assert await waiting_room.remove(session, first) is False
        assert await waiting_room.length(session) == 1
        assert (await waiting_room.join(session, first)).position == 2
        assert await waiting_room.admit_next(session, 2) == [second, first]

    async def test_an_admitted_buyer_can_give_up_the_admission(
        self, waiting_room: WaitingRoomStore
    ) -> None:
        """``remove`` ends an admission at once; a second ``remove`` finds nobody."""
        session = self._session()
        first, second = await self._join_all(waiting_room, session, 2)
        await waiting_room.admit_next(session, 1)
        assert await waiting_room.remove(session, first) is True
        assert not await waiting_room.is_admitted(session, first)
        assert await waiting_room.position(session, first) is None
        assert await waiting_room.remove(session, first) is False
        assert await self._places(waiting_room, session, [second]) == [1]

    async def test_removing_a_run_out_admission_finds_nobody(
        self, waiting_room: WaitingRoomStore, clock: Clock
    ) -> None:
        """Once an admission has run out there is nothing left to remove."""
        session = self._session()
        (user,) = await self._join_all(waiting_room, session, 1)
        await waiting_room.admit_next(session, 1)
        await self.pass_time(clock, self.admission_ttl * 1.1)
        assert await waiting_room.remove(session, user) is False

    # --- strangers and sessions --------------------------------------------------------

    async def test_strangers_are_nowhere(self, waiting_room: WaitingRoomStore) -> None:
        """A buyer who never joined has no place, no admission and nothing to remove."""
        session, stranger = self._session(), UserId(uuid4())
        assert await waiting_room.position(session, stranger) is None
        assert not await waiting_room.is_admitted(session, stranger)
        assert await waiting_room.remove(session, stranger) is False
        assert await waiting_room.length(session) == 0
        await self._join_all(waiting_room, session, 2)
        await waiting_room.admit_next(session, 1)
        assert await waiting_room.position(session, stranger) is None
        assert not await waiting_room.is_admitted(session, stranger)
        assert await waiting_room.remove(session, stranger) is False
        assert await waiting_room.length(session) == 1

    async def test_sessions_have_separate_waiting_rooms(
        self, waiting_room: WaitingRoomStore
    ) -> None:
        """Places, admissions and departures in one session change nothing in another."""
        one, other = self._session(), self._session()
        a, b = self._users(2)
        await waiting_room.join(one, a)
        await waiting_room.join(one, b)
        assert (await waiting_room.join(other, b)).position == 1
        assert (await waiting_room.join(other, a)).position == 2

        assert await waiting_room.admit_next(one, 1) == [a]
        assert await waiting_room.is_admitted(one, a)
        assert not await waiting_room.is_admitted(other, a)
        assert await self._places(waiting_room, other, [b, a]) == [1, 2]

        assert await waiting_room.remove(other, b) is True
        assert await self._places(waiting_room, one, [a, b]) == [0, 1]
        assert await self._places(waiting_room, other, [a, b]) == [1, None]
        assert (await waiting_room.length(one), await waiting_room.length(other)) == (1, 1)
