"""The signal-counter contract against the in-memory counter, and what only it promises."""

from datetime import timedelta

import pytest

from openticket.adapters.memory.clock import DEFAULT_START
from openticket.adapters.memory.signal_counter import MemorySignalCounter
from openticket.application.ports.signal_counter import SignalCounter, Tally
from openticket.testing.contracts.signal_counter import SignalCounterContract


class TestMemorySignalCounter(SignalCounterContract):
    @pytest.fixture
    async def signal_counter(self) -> SignalCounter:
        return MemorySignalCounter()


def test_the_memory_counter_is_a_signal_counter() -> None:
    assert isinstance(MemorySignalCounter(), SignalCounter)


async def test_quiet_keys_are_forgotten_one_window_after_their_newest_entry() -> None:
    counter = MemorySignalCounter()
    short = timedelta(seconds=1)
    for n in range(1000):
        await counter.count([Tally(key=f"address:{n}", window=short)], now=DEFAULT_START)
    assert counter.tracked_keys() == 1000
    later = DEFAULT_START + timedelta(seconds=0.5)
    await counter.count([Tally(key="address:0", window=short)], now=later)
    await counter.count([Tally(key="kept", window=timedelta(minutes=1))], now=later)
    assert counter.tracked_keys() == 1001

    await counter.count([], now=DEFAULT_START + short)
    assert counter.tracked_keys() == 2  # address:0 (seen half a window ago) and "kept"

    await counter.count([], now=later + short)
    assert counter.tracked_keys() == 1


async def test_reading_an_unknown_key_tracks_nothing() -> None:
    counter = MemorySignalCounter()
    read = Tally(key="nobody", window=timedelta(seconds=1), add=False)
    assert await counter.count([read], now=DEFAULT_START) == (0,)
    assert counter.tracked_keys() == 0


async def test_a_flooded_key_keeps_only_its_cap() -> None:
    counter = MemorySignalCounter()
    tally = Tally(key="address:flood", window=timedelta(minutes=1), cap=40)
    for n in range(10_000):
        await counter.count([tally], now=DEFAULT_START + timedelta(milliseconds=n))
    assert len(counter._keys["address:flood"].entries) == 40


@pytest.mark.parametrize(
    ("key", "window", "cap"),
    [
        ("", timedelta(seconds=1), 1),
        ("k", timedelta(0), 1),
        ("k", timedelta(microseconds=999), 1),
        ("k", timedelta(seconds=1), 0),
    ],
)
def test_a_tally_needs_a_key_a_window_and_a_cap(key: str, window: timedelta, cap: int) -> None:
    with pytest.raises(ValueError, match="must"):
        Tally(key=key, window=window, cap=cap)
