"""A clock and id sources that tests control: time moves only when told, ids repeat per seed."""

from __future__ import annotations

import hashlib
import itertools
from datetime import UTC, datetime, timedelta
from uuid import UUID

DEFAULT_START = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


class FakeClock:
    """A ``Clock`` that stands still until moved. Can go back too (clock-skew tests)."""

    def __init__(self, start: datetime = DEFAULT_START) -> None:
        if start.tzinfo is None:
            raise ValueError("FakeClock needs a timezone-aware start")
        self._now = start

    def now(self) -> datetime:
        """The current fake moment."""
        return self._now

    def advance(self, delta: timedelta | float) -> datetime:
        """Move forward by ``delta`` (seconds if a number); negative moves back."""
        step = delta if isinstance(delta, timedelta) else timedelta(seconds=delta)
        self._now += step
        return self._now

    def set(self, when: datetime) -> None:
        """Jump to ``when`` (forward or back)."""
        if when.tzinfo is None:
            raise ValueError("FakeClock needs timezone-aware times")
        self._now = when


class SequentialIdGenerator:
    """An ``IdGenerator`` that yields the same ids in the same order for the same seed."""

    def __init__(self, seed: int = 0) -> None:
        self._high = (seed & (2**64 - 1)) << 64
        self._counter = itertools.count(1)

    def new_id(self) -> UUID:
        """The next id: the seed in the high 64 bits, the position in the low ones."""
        return UUID(int=self._high | next(self._counter))


class SequentialTicketCodes:
    """A ``TicketCodeGenerator`` for tests: deterministic per seed, never repeating.

    Not unguessable: use ``openticket.adapters.system.SecretTicketCodeGenerator`` in production.
    """

    def __init__(self, seed: int = 0) -> None:
        self._seed = seed
        self._counter = itertools.count(1)

    def new_code(self) -> str:
        """The next code (32 hex characters)."""
        digest = hashlib.sha256(f"{self._seed}:{next(self._counter)}".encode()).hexdigest()
        return digest[:32]
