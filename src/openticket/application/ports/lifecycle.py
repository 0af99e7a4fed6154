"""Adapters that run beside the application: started before it, stopped after it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

CANCEL_AGAIN_EVERY = 0.1
"""Seconds between the cancellations ``stop_task`` sends a task that has not ended."""


class Component(Protocol):
    """Something with a lifetime: a connection pool, a relay loop, a consumer."""

    async def start(self) -> None:
        """Get ready (open connections, start loops); idempotent."""
        ...

    async def stop(self) -> None:
        """Finish and release everything; idempotent."""
        ...


HealthCheck = Callable[[], Awaitable[bool]]
"""Answers whether a dependency works now (readiness), without raising."""


async def stop_task(task: asyncio.Task[Any] | None, *, within: float = 10.0) -> None:
    """Cancel ``task`` and wait until it has ended; raise what it raised, if not cancelled.

    A task can swallow a cancellation: Python 3.11's ``asyncio.wait_for`` loses one that
    arrives just as what it awaits completes (a driver's pool or a client's timeout),
    and a loop that lost it runs on and holds its process's shutdown forever. So the
    task is cancelled again every ``CANCEL_AGAIN_EVERY`` seconds until it ends; after
    ``within`` seconds it is left running (it ends with the event loop).
    """
    if task is None:
        return
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not task.done():
        remaining = deadline - loop.time()
        if remaining <= 0:
            return
        task.cancel()
        await asyncio.wait({task}, timeout=min(CANCEL_AGAIN_EVERY, remaining))
    if not task.cancelled() and (error := task.exception()) is not None:
        raise error
