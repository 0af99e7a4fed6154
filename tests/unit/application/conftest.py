"""An embedded OpenTicket on a fake clock with one session on sale (actors running)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from openticket import bootstrap
from openticket.adapters.memory import FakeClock, SequentialIdGenerator, SequentialTicketCodes
from openticket.entrypoints.settings import Settings
from openticket.testing.world import World, build_world


@pytest.fixture
async def world() -> AsyncIterator[World]:
    clock = FakeClock()
    app = bootstrap(
        Settings(partitions=4, hold_ttl_seconds=120),
        clock=clock,
        ids=SequentialIdGenerator(7),
        ticket_codes=SequentialTicketCodes(7),
    )
    built = await build_world(app, clock)
    await app.start(sweeper=False)
    try:
        yield built
    finally:
        await app.stop()
