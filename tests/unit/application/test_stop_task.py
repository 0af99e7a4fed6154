"""``stop_task`` ends a loop even when the loop swallowed a cancellation."""

from __future__ import annotations

import asyncio

import pytest

from openticket.application.ports.lifecycle import stop_task


async def test_a_loop_that_swallowed_a_cancellation_still_stops() -> None:
    """Python 3.11's wait_for can lose a cancellation; the loop must end all the same."""
    turns = 0

    async def loop() -> None:
        nonlocal turns
        while True:
            turns += 1
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                if turns == 1:
                    continue  # lost once, as a racing wait_for would lose it
                raise

    task = asyncio.create_task(loop())
    await asyncio.sleep(0)
    await asyncio.wait_for(stop_task(task), 2)
    assert task.cancelled()
    assert turns == 2


async def test_what_the_task_raised_is_raised() -> None:
    async def failing() -> None:
        raise RuntimeError("broken")

    task = asyncio.create_task(failing())
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="broken"):
        await stop_task(task)


async def test_a_task_that_never_ends_is_left_after_the_deadline() -> None:
    giving_in = asyncio.Event()

    async def stubborn() -> None:
        while not giving_in.is_set():
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                continue

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    started = asyncio.get_running_loop().time()
    await stop_task(task, within=0.3)
    assert 0.25 <= asyncio.get_running_loop().time() - started < 1
    assert not task.done()
    giving_in.set()
    await stop_task(task)
    assert task.done()


async def test_nothing_to_stop() -> None:
    await stop_task(None)
