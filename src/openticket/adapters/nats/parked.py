"""How many messages wait in the deployment's ``PARKED`` stream for an operator."""

from __future__ import annotations

from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from openticket.adapters.nats.consumer import parked_stream
from openticket.adapters.nats.errors import UNREACHABLE
from openticket.application.ports.errors import AdapterUnavailable


class NatsParkedMessages:
    """``ParkedMessages`` read from the ``PARKED`` stream's state."""

    def __init__(self, js: JetStreamContext, *, prefix: str = "") -> None:
        self._js = js
        self._stream = parked_stream(prefix)

    async def parked(self) -> int:
        """Messages in the stream (0 when no consumer ever parked one: no stream yet)."""
        try:
            info = await self._js.stream_info(self._stream)
        except NotFoundError:
            return 0
        except UNREACHABLE as e:
            raise AdapterUnavailable(f"NATS did not answer: {e!r}") from e
        return int(info.state.messages)
