"""The NATS connection of a process: one client and its JetStream context.

Every NATS adapter of the process shares it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

import structlog
from nats.aio.client import Client
from nats.errors import Error as NatsError
from nats.js import JetStreamContext

from openticket.application.ports.errors import AdapterUnavailable

_log = structlog.get_logger("openticket.nats")

Setup = Callable[[JetStreamContext], Awaitable[None]]
"""Work to do once connected (create streams and buckets), before anything is served."""


class NatsUnreachable(AdapterUnavailable):
    """NATS did not answer, or JetStream is not enabled on it."""


def where(url: str) -> str:
    """Host and port of a NATS URL, without credentials."""
    parts = urlsplit(url)
    return f"{parts.hostname or 'localhost'}:{parts.port or 4222}"


class NatsConnection:
    """Owns the client the NATS adapters share; a ``Component`` and a health check.

    The JetStream context exists before the connection does, so adapters can be built
    first; ``start`` connects, checks that JetStream answers and runs the setups.
    """

    def __init__(self, url: str, *, timeout: float = 5.0) -> None:
        self.url = url
        self._timeout = timeout
        self.client = Client()
        self.js: JetStreamContext = self.client.jetstream(timeout=timeout)
        self._setups: list[Setup] = []

    @property
    def where(self) -> str:
        """Where the server is, for people."""
        return where(self.url)

    def on_connect(self, setup: Setup) -> None:
        """Run ``setup`` at every ``start`` once connected (idempotent work only)."""
        self._setups.append(setup)

    async def start(self) -> None:
        """Connect (with reconnects later), check JetStream, run the setups."""
        if not self.client.is_connected:
            try:
                # reconnects go on forever once connected; the first connect is bounded
                await asyncio.wait_for(
                    self.client.connect(
                        self.url,
                        connect_timeout=max(1, int(self._timeout)),
                        max_reconnect_attempts=-1,
                        reconnect_time_wait=1,
                        error_cb=self._error,
                        disconnected_cb=self._disconnected,
                        reconnected_cb=self._reconnected,
                    ),
                    self._timeout,
                )
                await self.js.account_info()
            except (NatsError, OSError, TimeoutError) as e:
                await self._close_quietly()
                reason = str(e).strip() or "no answer in time"
                raise NatsUnreachable(
                    f"cannot reach NATS JetStream at {self.where}: {reason}"
                ) from e
        for setup in self._setups:
            await setup(self.js)

    async def stop(self) -> None:
        """Drain and close (a later ``start`` connects the same client again)."""
        if self.client.is_connected:
            try:
                await asyncio.wait_for(self.client.drain(), self._timeout)
            except (NatsError, OSError, TimeoutError):
                await self._close_quietly()

    async def ping(self) -> bool:
        """Whether the server answers a round trip now (readiness)."""
        if not self.client.is_connected:
            return False
        try:
            await self.client.flush(timeout=max(1, int(self._timeout)))
        except (NatsError, OSError, TimeoutError):
            return False
        return True

    async def _close_quietly(self) -> None:
        with contextlib.suppress(NatsError, OSError):
            await self.client.close()

    async def _error(self, error: Exception) -> None:
        _log.warning("nats_error", error=str(error))

    async def _disconnected(self) -> None:
        _log.warning("nats_disconnected", server=self.where)

    async def _reconnected(self) -> None:
        _log.info("nats_reconnected", server=self.where)
