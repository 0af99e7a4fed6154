"""Adapters that run beside the application: started before it, stopped after it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol


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
