"""The clock of contract suites whose adapters keep time: fake by default, real if asked."""

from __future__ import annotations

import asyncio

import pytest

from openticket.adapters.memory.clock import FakeClock
from openticket.adapters.system import SystemClock
from openticket.application.ports.clock import Clock


class ClockedContract:
    """Gives a suite the fixture ``clock`` (a ``FakeClock``) and :meth:`pass_time`.

    An adapter that keeps real time (Redis) overrides ``clock`` with a system clock
    and ``pass_time`` with a real sleep.
    """

    @pytest.fixture
    def clock(self) -> Clock:
        """The clock the adapter under test is built with (default: a ``FakeClock``)."""
        return FakeClock()

    async def pass_time(self, clock: Clock, seconds: float) -> None:
        """Let ``seconds`` pass for the adapter. Override for one that uses real time."""
        if not isinstance(clock, FakeClock):
            raise TypeError("override pass_time() when the clock is not a FakeClock")
        clock.advance(seconds)


class InRealTime:
    """Mix in before a contract suite for an adapter that keeps real time (Redis, NATS).

    ::

        class TestMyStore(InRealTime, LockStoreContract): ...

    The ``clock`` is the system clock and :meth:`pass_time` sleeps, ``slack`` seconds
    more than asked so that a deadline just reached has surely passed.
    """

    slack: float = 0.002

    @pytest.fixture
    def clock(self) -> Clock:
        """The system clock."""
        return SystemClock()

    async def pass_time(self, clock: Clock, seconds: float) -> None:
        """Sleep ``seconds`` (and the slack)."""
        await asyncio.sleep(seconds + self.slack)
