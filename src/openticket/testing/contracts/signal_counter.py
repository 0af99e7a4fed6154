"""The ``SignalCounter`` contract: sliding-window counts per key, plain or of distinct members."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from uuid import uuid4

from openticket.adapters.memory.clock import DEFAULT_START
from openticket.application.ports.signal_counter import SignalCounter, Tally

_MS = timedelta(milliseconds=1)


class SignalCounterContract:
    """What every ``SignalCounter`` adapter must do.

    Subclass it once per adapter and define the async fixture ``signal_counter``. The
    counter is told "now" with each call, so no clock is needed; every test uses fresh
    random keys, so a shared server is fine.
    """

    window: timedelta = timedelta(seconds=10)
    start: datetime = DEFAULT_START

    concurrent_calls: int = 100
    """How many calls add to one key at once in the contention test."""

    # --- helpers ---------------------------------------------------------------------

    @staticmethod
    def _key(name: str = "signal") -> str:
        return f"{name}:{uuid4().hex}"

    def _at(self, seconds: float) -> datetime:
        return self.start + timedelta(seconds=seconds)

    def _tally(
        self, key: str, *, member: str | None = None, add: bool = True, cap: int = 1000
    ) -> Tally:
        return Tally(key=key, window=self.window, member=member, add=add, cap=cap)

    async def _one(self, counter: SignalCounter, tally: Tally, at: datetime) -> int:
        (count,) = await counter.count([tally], now=at)
        return count

    # --- plain counts ------------------------------------------------------------------

    async def test_each_call_is_one_more_entry(self, signal_counter: SignalCounter) -> None:
        """Three calls at one moment count 1, 2, 3: the answer includes the call's own entry."""
        tally = self._tally(self._key())
        counts = [await self._one(signal_counter, tally, self.start) for _ in range(3)]
        assert counts == [1, 2, 3]

    async def test_an_entry_counts_until_exactly_one_window_later(
        self, signal_counter: SignalCounter
    ) -> None:
        """Counted from its moment to one window later, that moment excluded (to the ms)."""
        tally = self._tally(self._key())
        assert await self._one(signal_counter, tally, self.start) == 1
        assert await self._one(signal_counter, tally, self.start + self.window - _MS) == 2
        # the first entry has just left; the second is still in, with this one
        assert await self._one(signal_counter, tally, self.start + self.window) == 2

    async def test_the_window_slides(self, signal_counter: SignalCounter) -> None:
        """Entries a quarter window apart: at most four count at any moment."""
        tally = self._tally(self._key())
        quarter = self.window.total_seconds() / 4
        counts = [await self._one(signal_counter, tally, self._at(n * quarter)) for n in range(8)]
        assert counts == [1, 2, 3, 4, 4, 4, 4, 4]

    async def test_a_quiet_key_starts_again_from_nothing(
        self, signal_counter: SignalCounter
    ) -> None:
        """A window after a burst, the key counts from 1 again."""
        tally = self._tally(self._key())
        for _ in range(5):
            await self._one(signal_counter, tally, self.start)
        assert await self._one(signal_counter, tally, self.start + 2 * self.window) == 1

    # --- distinct members --------------------------------------------------------------

    async def test_a_distinct_member_counts_once(self, signal_counter: SignalCounter) -> None:
        """The same account seen five times behind an address is one account; three are three."""
        key = self._key("address")
        counts = [
            await self._one(signal_counter, self._tally(key, member=member), self._at(n))
            for n, member in enumerate(["a", "a", "b", "a", "c", "b", "a"])
        ]
        assert counts == [1, 1, 2, 2, 3, 3, 3]

    async def test_a_member_counts_from_its_latest_sighting(
        self, signal_counter: SignalCounter
    ) -> None:
        """Seen again late in the window, a member outlives the first sighting's window."""
        key = self._key("address")
        late = self.window - timedelta(seconds=1)
        await self._one(signal_counter, self._tally(key, member="a"), self.start)
        await self._one(signal_counter, self._tally(key, member="b"), self.start)
        await self._one(signal_counter, self._tally(key, member="a"), self.start + late)
        # one window after the start: "b" has left, "a" (seen again) is still in
        read = self._tally(key, add=False)
        assert await self._one(signal_counter, read, self.start + self.window) == 1
        assert await self._one(signal_counter, read, self.start + late + self.window) == 0

    async def test_an_earlier_sighting_does_not_move_a_member_back(
        self, signal_counter: SignalCounter
    ) -> None:
        """A call stamped earlier (another process's clock) keeps the member's latest moment."""
        key = self._key("address")
        half = self.window / 2
        await self._one(signal_counter, self._tally(key, member="a"), self.start + half)
        await self._one(signal_counter, self._tally(key, member="a"), self.start)
        read = self._tally(key, add=False)
        assert await self._one(signal_counter, read, self.start + self.window) == 1

    # --- reading, keys, several tallies ------------------------------------------------

    async def test_reading_counts_nothing(self, signal_counter: SignalCounter) -> None:
        """A read-only tally answers the count and leaves it as it was; unknown keys are 0."""
        key = self._key()
        read = self._tally(key, add=False)
        assert await self._one(signal_counter, read, self.start) == 0
        assert await self._one(signal_counter, read, self.start) == 0
        await self._one(signal_counter, self._tally(key), self.start)
        await self._one(signal_counter, self._tally(key), self.start)
        assert [await self._one(signal_counter, read, self.start) for _ in range(3)] == [2, 2, 2]
        assert await self._one(signal_counter, self._tally(key), self.start) == 3

    async def test_one_call_answers_each_tally_in_order(
        self, signal_counter: SignalCounter
    ) -> None:
        """Several keys in one call: each answered in its place, each counted on its own."""
        busy, quiet, accounts = self._key(), self._key(), self._key("address")
        for _ in range(4):
            await self._one(signal_counter, self._tally(busy), self.start)
        counts = await signal_counter.count(
            [
                self._tally(busy),
                self._tally(quiet),
                self._tally(accounts, member="u1"),
                self._tally(accounts, member="u2"),
                self._tally(busy, add=False),
            ],
            now=self.start,
        )
        assert counts == (5, 1, 1, 2, 5)

    async def test_an_empty_call_answers_nothing(self, signal_counter: SignalCounter) -> None:
        """No tally, no count."""
        assert await signal_counter.count([], now=self.start) == ()

    # --- the cap -----------------------------------------------------------------------

    async def test_the_count_stops_at_the_cap_keeping_the_newest(
        self, signal_counter: SignalCounter
    ) -> None:
        """Five entries with a cap of 3 count 1, 2, 3, 3, 3; the newest three are the ones kept.

        Once the entries of the first three milliseconds have left the window, the two
        newest still count: a counter that kept the oldest would answer 0.
        """
        key = self._key()
        tally = self._tally(key, cap=3)
        counts = [await self._one(signal_counter, tally, self.start + n * _MS) for n in range(5)]
        assert counts == [1, 2, 3, 3, 3]
        read = self._tally(key, add=False)
        assert await self._one(signal_counter, read, self.start + self.window + 2 * _MS) == 2

    async def test_distinct_members_stop_at_the_cap(self, signal_counter: SignalCounter) -> None:
        """A flood of accounts behind one address is kept to the cap's newest."""
        key = self._key("address")
        counts = [
            await self._one(signal_counter, self._tally(key, member=f"u{n}", cap=5), self._at(n))
            for n in range(20)
        ]
        assert counts == [1, 2, 3, 4, 5] + [5] * 15

    # --- contention --------------------------------------------------------------------

    async def test_concurrent_calls_on_one_key_each_get_a_different_count(
        self, signal_counter: SignalCounter
    ) -> None:
        """Many calls adding to one key at once: none lost, none told the same count."""
        tally = self._tally(self._key())
        counts = await asyncio.gather(
            *(self._one(signal_counter, tally, self.start) for _ in range(self.concurrent_calls))
        )
        assert sorted(counts) == list(range(1, self.concurrent_calls + 1))
