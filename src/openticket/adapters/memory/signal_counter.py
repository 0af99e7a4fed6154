"""The signal counter in process memory: for the embedded profile, tests and benchmarks."""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Sequence
from datetime import datetime

from openticket.adapters.millis import MILLISECOND, millis
from openticket.application.ports.signal_counter import Tally


class _Key:
    """One key's entries still inside its window: member → moment (ms)."""

    __slots__ = ("entries", "window_ms")

    def __init__(self, window_ms: int) -> None:
        self.entries: dict[str, int] = {}
        self.window_ms = window_ms

    def expires_at(self) -> int:
        """The moment (ms) from which none of the key's entries counts any more."""
        return max(self.entries.values(), default=0) + self.window_ms


class MemorySignalCounter:
    """A ``SignalCounter`` holding each key's entries in a dict, for one process.

    Exact, and atomic because nothing in ``count`` awaits. Memory stays bounded: a key
    keeps at most its tally's ``cap`` entries, and a key none of whose entries counts
    any more is dropped at the next call after its window, so a flood of one-off keys
    (addresses, devices) is forgotten one window later.
    """

    def __init__(self) -> None:
        self._keys: dict[str, _Key] = {}
        self._expiry: list[tuple[int, str]] = []
        """One ``(expires at or before, key)`` entry per tracked key, earliest first."""
        self._entry_ids = itertools.count()

    async def count(self, tallies: Sequence[Tally], *, now: datetime) -> tuple[int, ...]:
        """Take each tally at ``now``, in one step, and answer their counts in order."""
        at = millis(now)
        self._purge(at)
        return tuple(self._take(tally, at) for tally in tallies)

    def tracked_keys(self) -> int:
        """How many keys the counter holds now (for tests and metrics)."""
        return len(self._keys)

    def _take(self, tally: Tally, now: int) -> int:
        window = tally.window // MILLISECOND
        key = self._keys.get(tally.key)
        if key is None:
            if not tally.add:
                return 0
            key = self._keys[tally.key] = _Key(window)
            heapq.heappush(self._expiry, (now + window, tally.key))
        key.window_ms = window
        entries = key.entries
        cutoff = now - window
        for member in [m for m, moment in entries.items() if moment <= cutoff]:
            del entries[member]
        if tally.add:
            member = tally.member if tally.member is not None else f"#{next(self._entry_ids)}"
            if entries.get(member, cutoff) < now:
                entries.pop(member, None)  # seen again: now its newest entry
                entries[member] = now
            if len(entries) > tally.cap:
                newest = sorted(entries.items(), key=lambda item: item[1])[-tally.cap :]
                key.entries = entries = dict(newest)
        return len(entries)

    def _purge(self, now: int) -> None:
        """Drop the keys of which no entry counts any more."""
        queue, keys = self._expiry, self._keys
        while queue and queue[0][0] <= now:
            _, name = heapq.heappop(queue)
            key = keys[name]
            expires_at = key.expires_at()
            if expires_at <= now:
                del keys[name]
            else:
                heapq.heappush(queue, (expires_at, name))
