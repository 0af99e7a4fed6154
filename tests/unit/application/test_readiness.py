"""Readiness answers in bounded time, naming each dependency, even when one hangs."""

from __future__ import annotations

import asyncio
import time

from openticket import bootstrap
from openticket.application.facade import READINESS_TIMEOUT
from openticket.entrypoints.settings import Settings


async def test_a_dependency_that_hangs_reads_down_without_holding_the_others() -> None:
    async def hangs() -> bool:
        await asyncio.sleep(3600)  # a cut connection nobody times out
        return True

    async def answers() -> bool:
        return True

    async def refuses() -> bool:
        raise ConnectionRefusedError

    app = bootstrap(
        Settings(partitions=2),
        health_checks={"database": hangs, "redis": answers, "nats": hangs, "mail": refuses},
    )
    await app.start(sweeper=False)
    try:
        began = time.monotonic()
        checks = await app.readiness()
        took = time.monotonic() - began
    finally:
        await app.stop()

    assert checks == {
        "seating": "ok",
        "database": "down",
        "redis": "ok",
        "nats": "down",
        "mail": "down",
    }
    # asked side by side: two hanging dependencies cost one bound, not two
    assert READINESS_TIMEOUT <= took < 2 * READINESS_TIMEOUT
