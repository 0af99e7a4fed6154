"""The ``WaitingRoomStore`` contract: a fair queue per session, admitted k at a time.

A pre-queue lottery, then first come, first served; the rooms and the admitter lease.

One module, over 500 lines: a contract suite is one class an adapter subclasses.
"""

from __future__ import annotations

import asyncio
import random
from collections import deque
from datetime import datetime, timedelta
from uuid import uuid4

import pytest

from openticket.adapters.memory.clock import FakeClock
from openticket.application.ports.clock import Clock
from openticket.application.ports.waiting_room import QueueTicket, WaitingRoomStore
from openticket.domain.shared import SessionId, UserId
from openticket.testing.contracts._clock import ClockedContract

_MILLISECOND = timedelta(milliseconds=1)


class ScriptedDraws:
    """A pre-queue draw source whose next tickets a test chooses; seeded random ones after.

    Pass it as the store's ``draw``. ``drawn`` counts the tickets the store drew.
    """

    def __init__(self, seed: int = 0) -> None:
        self._next: deque[float] = deque()
        self._random = random.Random(seed)  # noqa: S311  # test tickets, not secrets
        self.drawn = 0

    def script(self, *tickets: float) -> None:
        """The tickets the next draws give, in order."""
        self._next.extend(tickets)

    def __call__(self) -> float:
        """The next ticket: a scripted one while any is left, then a seeded random one."""
        self.drawn += 1
        return self._next.popleft() if self._next else self._random.random()


class WaitingRoomStoreContract(ClockedContract):
    """What every ``WaitingRoomStore`` adapter must do.

    Subclass it once per adapter and define the async fixture ``waiting_room``, which
    yields a store built with the ``clock`` fixture, the ``draws`` fixture as its
    pre-queue draw source and an admission TTL of :attr:`admission_ttl` seconds.
    The default ``clock`` is a ``FakeClock`` and
    :meth:`pass_time` moves it; an adapter used with real time (Redis in the
    integration tests) overrides ``clock`` with a system clock, ``pass_time`` with a
    real sleep, and usually :attr:`admission_ttl` with something short. Every test
    uses fresh random session and user ids, so a shared server is fine.
    """

    admission_ttl: float = 1.0
    """Seconds an admission lasts in the store under test. Tests pass fractions of it."""

    concurrent_joins: int = 500
    """How many buyers join one queue at once in the concurrency test."""

    @pytest.fixture
    def draws(self) -> ScriptedDraws:
        """The pre-queue tickets the store under test draws (pass it as its ``draw``)."""
        return ScriptedDraws()

    # --- helpers ---------------------------------------------------------------------

    @staticmethod
    def _open(clock: Clock) -> datetime:
        """A ``pre_queue_until`` for a sale that opens in an hour: joins enter the pre-queue."""
        return clock.now() + timedelta(hours=1)

    @classmethod
    def _opened(cls, clock: Clock) -> datetime:
        """A ``pre_queue_until`` for a sale that opened just now (at the store's now or before)."""
        return cls._floor_ms(clock.now())

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

    # --- the pre-queue -----------------------------------------------------------------

    async def test_the_pre_queue_stands_ahead_of_later_joiners(
        self, waiting_room: WaitingRoomStore, clock: Clock
    ) -> None:
        """Who joined before the sale opened is ahead of everyone who came after it."""
        session, opens = self._session(), self._open(clock)
        early, late = self._users(8), self._users(4)
        tickets = [await waiting_room.join(session, u, pre_queue_until=opens) for u in early]
        assert all(t.pre_queue and not t.admitted for t in tickets)
        opened = self._opened(clock)
        later = [await waiting_room.join(session, u, pre_queue_until=opened) for u in late]
        assert [t.position for t in later] == [9, 10, 11, 12]
        assert not any(t.pre_queue for t in later)
        places = await self._places(waiting_room, session, early)
        assert sorted(place or 0 for place in places) == list(range(1, 9))  # None is no place
        assert await self._places(waiting_room, session, late) == [9, 10, 11, 12]
        assert await waiting_room.length(session) == 12

    async def test_the_pre_queue_is_in_ticket_order_not_join_order(
        self, waiting_room: WaitingRoomStore, clock: Clock, draws: ScriptedDraws
    ) -> None:
        """Each pre-queue buyer stands where the ticket drawn for them puts them."""
        session, opens = self._session(), self._open(clock)
        users = self._users(5)
        draws.script(0.75, 0.25, 0.5, 0.0, 0.999)
        for user in users:
            await waiting_room.join(session, user, pre_queue_until=opens)
        assert draws.drawn == 5, "build the waiting_room fixture with draw=draws"
        assert await self._places(waiting_room, session, users) == [4, 2, 3, 1, 5]
        tickets = [await waiting_room.position(session, user) for user in users]
        assert all(t is not None and t.pre_queue for t in tickets)

    async def test_joining_the_pre_queue_again_keeps_the_ticket(
        self, waiting_room: WaitingRoomStore, clock: Clock, draws: ScriptedDraws
    ) -> None:
        """A second join, before or after the sale opened, keeps place and ``pre_queue``."""
        session, opens = self._session(), self._open(clock)
        first, second = self._users(2)
        draws.script(0.6, 0.3, 0.1)  # a store that drew anew for a repeat would move first up
        await waiting_room.join(session, first, pre_queue_until=opens)
        original = await waiting_room.join(session, second, pre_queue_until=opens)
        assert original.position == 1
        await self.pass_time(clock, self.admission_ttl / 10)
        again = await waiting_room.join(session, first, pre_queue_until=opens)
        assert again.position == 2
        assert again.pre_queue
        assert await waiting_room.join(session, second, pre_queue_until=opens) == original
        after = await waiting_room.join(session, second, pre_queue_until=self._opened(clock))
        assert after == original
        assert await waiting_room.length(session) == 2
        latecomer = await waiting_room.join(session, UserId(uuid4()))
        assert (latecomer.position, latecomer.pre_queue) == (3, False)

    async def test_a_join_once_the_sale_opened_queues_first_come_first_served(
        self, waiting_room: WaitingRoomStore, clock: Clock, draws: ScriptedDraws
    ) -> None:
        """At or after ``pre_queue_until`` a join goes to the back, drawing no ticket."""
        session = self._session()
        users = self._users(3)
        opened = self._opened(clock)
        tickets = [await waiting_room.join(session, u, pre_queue_until=opened) for u in users]
        assert [(t.position, t.pre_queue) for t in tickets] == [(1, False), (2, False), (3, False)]
        past = opened - timedelta(hours=1)
        fourth = await waiting_room.join(session, UserId(uuid4()), pre_queue_until=past)
        assert (fourth.position, fourth.pre_queue) == (4, False)
        assert draws.drawn == 0
        assert await waiting_room.admit_next(session, 3) == users

    async def test_the_pre_queue_closes_exactly_at_pre_queue_until(
        self, waiting_room: WaitingRoomStore, clock: Clock
    ) -> None:
        """A join one millisecond before ``pre_queue_until`` is in it, one at it is not."""
        if not isinstance(clock, FakeClock):
            raise TypeError(
                "this check steps time to the millisecond: it needs a FakeClock"
                " (a real-time subclass sets the test to None)"
            )
        session, opens = self._session(), self._opened(clock) + timedelta(seconds=10)
        early, late = self._users(2)
        clock.set(opens - _MILLISECOND)
        assert (await waiting_room.join(session, early, pre_queue_until=opens)).pre_queue
        clock.set(opens)
        assert not (await waiting_room.join(session, late, pre_queue_until=opens)).pre_queue
        assert await self._places(waiting_room, session, [early, late]) == [1, 2]

    async def test_a_pre_queue_buyer_jumps_ahead_of_a_queue_formed_without_one(
        self, waiting_room: WaitingRoomStore, clock: Clock
    ) -> None:
        """Whoever joins in a pre-queue stands ahead of every join that drew no ticket."""
        session = self._session()
        before = await self._join_all(waiting_room, session, 2)
        early = UserId(uuid4())
        ticket = await waiting_room.join(session, early, pre_queue_until=self._open(clock))
        assert (ticket.position, ticket.pre_queue) == (1, True)
        assert await self._places(waiting_room, session, before) == [2, 3]

    async def test_admit_next_takes_the_pre_queue_first_in_ticket_order(
        self, waiting_room: WaitingRoomStore, clock: Clock, draws: ScriptedDraws
    ) -> None:
        """Admission goes by ticket through the pre-queue, then by join order."""
        session, opens = self._session(), self._open(clock)
        early, late = self._users(3), self._users(2)
        draws.script(0.5, 0.2, 0.8)
        for user in early:
            await waiting_room.join(session, user, pre_queue_until=opens)
        opened = self._opened(clock)
        for user in late:
            await waiting_room.join(session, user, pre_queue_until=opened)
        assert await waiting_room.admit_next(session, 2) == [early[1], early[0]]
        assert await waiting_room.admit_next(session, 2) == [early[2], late[0]]
        admitted = await self._admitted_ticket(waiting_room, session, early[1])
        assert (admitted.position, admitted.pre_queue) == (0, False)
        assert await waiting_room.join(session, early[1], pre_queue_until=opens) == admitted
        assert await self._places(waiting_room, session, late) == [0, 1]

    async def test_a_pre_queue_buyer_who_leaves_gives_up_the_ticket(
        self, waiting_room: WaitingRoomStore, clock: Clock, draws: ScriptedDraws
    ) -> None:
        """Leaving drops the ticket: a join after the sale opened is at the back."""
        session, opens = self._session(), self._open(clock)
        first, second = self._users(2)
        draws.script(0.1, 0.2)
        await waiting_room.join(session, first, pre_queue_until=opens)
        await waiting_room.join(session, second, pre_queue_until=opens)
        assert await waiting_room.remove(session, first) is True
        assert await self._places(waiting_room, session, [second]) == [1]
        back = await waiting_room.join(session, first, pre_queue_until=self._opened(clock))
        assert (back.position, back.pre_queue) == (2, False)

    async def test_bad_pre_queue_input_is_refused_and_changes_nothing(
        self, waiting_room: WaitingRoomStore, clock: Clock, draws: ScriptedDraws
    ) -> None:
        """A naive ``pre_queue_until`` or a ticket outside [0, 1): ``ValueError``, nobody joins."""
        session, user = self._session(), UserId(uuid4())
        naive = self._open(clock).replace(tzinfo=None)
        with pytest.raises(ValueError, match="pre_queue_until"):
            await waiting_room.join(session, user, pre_queue_until=naive)
        draws.script(1.0)
        with pytest.raises(ValueError, match="ticket"):
            await waiting_room.join(session, user, pre_queue_until=self._open(clock))
        assert await waiting_room.position(session, user) is None
        assert await waiting_room.length(session) == 0

    # --- what the admitter reads ------------------------------------------------------

    async def test_admitted_count_counts_the_admissions_that_still_run(
        self, waiting_room: WaitingRoomStore, clock: Clock
    ) -> None:
        """Waiting buyers do not count; a removal and a run-out admission no longer do."""
        session = self._session()
        assert await waiting_room.admitted_count(session) == 0
        a, b, c, d = await self._join_all(waiting_room, session, 4)
        assert await waiting_room.admitted_count(session) == 0
        await waiting_room.admit_next(session, 3)
        assert await waiting_room.admitted_count(session) == 3
        assert await waiting_room.remove(session, b) is True
        assert await waiting_room.remove(session, d) is True  # waiting: not an admission
        assert await waiting_room.admitted_count(session) == 2
        assert await waiting_room.admitted_count(self._session()) == 0
        await self.pass_time(clock, self.admission_ttl / 2)
        await waiting_room.join(session, d)
        await waiting_room.admit_next(session, 1)
        assert await waiting_room.admitted_count(session) == 3
        await self.pass_time(clock, self.admission_ttl * 0.6)  # a and c ran out, d runs
        assert await waiting_room.admitted_count(session) == 1
        assert await waiting_room.is_admitted(session, d)
        assert not any([await waiting_room.is_admitted(session, u) for u in (a, c)])

    async def test_rooms_name_the_sessions_where_buyers_wait(
        self, waiting_room: WaitingRoomStore, clock: Clock
    ) -> None:
        """A session appears after a join (also into the pre-queue); an untouched one never."""
        one, other, untouched = self._session(), self._session(), self._session()
        assert one not in await waiting_room.rooms()
        await waiting_room.join(one, UserId(uuid4()))
        await waiting_room.join(other, UserId(uuid4()), pre_queue_until=self._open(clock))
        rooms = await waiting_room.rooms()
        assert {one, other} <= set(rooms)
        assert untouched not in rooms
        assert len(rooms) == len(set(rooms))

    # --- the admitter lease ------------------------------------------------------------

    @property
    def _lease_ttl(self) -> timedelta:
        return self._ttl

    async def test_the_lease_has_one_holder_at_a_time(self, waiting_room: WaitingRoomStore) -> None:
        """Taken by one holder, refused to another; sessions have a lease each."""
        session, ttl = self._session(), self._lease_ttl
        assert await waiting_room.lease(session, "api-1", ttl) is True
        assert await waiting_room.lease(session, "api-2", ttl) is False
        assert await waiting_room.lease(session, "api-1", ttl) is True
        assert await waiting_room.lease(session, "api-2", ttl) is False
        assert await waiting_room.lease(self._session(), "api-2", ttl) is True

    async def test_the_holder_renews_the_lease(
        self, waiting_room: WaitingRoomStore, clock: Clock
    ) -> None:
        """A renewal runs a full TTL from the renewal, not from the first lease."""
        session, ttl = self._session(), self._lease_ttl
        assert await waiting_room.lease(session, "api-1", ttl) is True
        await self.pass_time(clock, self.admission_ttl * 0.6)
        assert await waiting_room.lease(session, "api-1", ttl) is True
        await self.pass_time(clock, self.admission_ttl * 0.6)
        assert await waiting_room.lease(session, "api-2", ttl) is False
        await self.pass_time(clock, self.admission_ttl * 0.5)
        assert await waiting_room.lease(session, "api-2", ttl) is True
        assert await waiting_room.lease(session, "api-1", ttl) is False

    async def test_a_lease_is_free_again_after_its_ttl(
        self, waiting_room: WaitingRoomStore, clock: Clock
    ) -> None:
        """A holder that stopped renewing (a dead process) loses the lease after the TTL."""
        session, ttl = self._session(), self._lease_ttl
        assert await waiting_room.lease(session, "api-1", ttl) is True
        await self.pass_time(clock, self.admission_ttl / 2)
        assert await waiting_room.lease(session, "api-2", ttl) is False
        await self.pass_time(clock, self.admission_ttl * 0.6)
        assert await waiting_room.lease(session, "api-2", ttl) is True

    async def test_only_the_holder_releases_the_lease(self, waiting_room: WaitingRoomStore) -> None:
        """Another's release changes nothing; the holder's frees the lease at once."""
        session, ttl = self._session(), self._lease_ttl
        await waiting_room.release_lease(session, "api-1")  # nobody holds it: nothing
        assert await waiting_room.lease(session, "api-1", ttl) is True
        await waiting_room.release_lease(session, "api-2")
        assert await waiting_room.lease(session, "api-2", ttl) is False
        await waiting_room.release_lease(session, "api-1")
        assert await waiting_room.lease(session, "api-2", ttl) is True
        assert await waiting_room.lease(session, "api-1", ttl) is False

    async def test_concurrent_lease_attempts_make_one_holder(
        self, waiting_room: WaitingRoomStore
    ) -> None:
        """Of twenty holders racing for a free lease exactly one gets it."""
        session, ttl = self._session(), self._lease_ttl
        holders = [f"api-{n}" for n in range(20)]
        won = await asyncio.gather(*(waiting_room.lease(session, h, ttl) for h in holders))
        assert sum(won) == 1
        (winner,) = (h for h, w in zip(holders, won, strict=True) if w)
        again = await asyncio.gather(*(waiting_room.lease(session, h, ttl) for h in holders))
        assert [h for h, w in zip(holders, again, strict=True) if w] == [winner]

    async def test_bad_lease_input_is_refused(self, waiting_room: WaitingRoomStore) -> None:
        """An empty holder or a TTL under a millisecond is a ``ValueError``; nothing is taken."""
        session = self._session()
        with pytest.raises(ValueError, match="holder"):
            await waiting_room.lease(session, "", self._lease_ttl)
        with pytest.raises(ValueError, match="ttl"):
            await waiting_room.lease(session, "api-1", timedelta(microseconds=999))
        assert await waiting_room.lease(session, "api-2", self._lease_ttl) is True
