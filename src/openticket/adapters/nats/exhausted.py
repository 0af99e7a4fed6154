"""Messages JetStream stopped delivering unanswered, parked all the same.

An :class:`~openticket.adapters.nats.consumer.EventConsumer` parks a message itself
when its last delivery fails. But when the process handling that last delivery dies
(``kill -9``, a lost machine) or cannot reach the parking stream, nobody answers it,
and once its ``ack_wait`` runs out JetStream gives up on the message: it is not
delivered again, and the only trace is an advisory on
``$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.<stream>.<durable>``.

:class:`ExhaustedDeliveries` listens to that advisory for one durable — in a queue
group, so that of the listeners in every worker, one acts on each advisory — reads the
message from its stream by sequence and parks it with reason ``max_deliver``, so that
an operator finds it in the PARKED stream with the rest. A copy parked twice (the
consumer and this listener, or two listeners) is stored once: the copy's
``Nats-Msg-Id`` is the durable, stream and sequence.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any, Final

import structlog
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from openticket.adapters.nats.consumer import Parking, ParkReason
from openticket.adapters.nats.errors import UNREACHABLE
from openticket.application.ports.errors import AdapterUnavailable

_log = structlog.get_logger("openticket.nats.consumer")

MAX_DELIVERIES_ADVISORY: Final = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES"
"""The advisory's subject without ``.<stream>.<durable>``."""


class ExhaustedDeliveries:
    """Parks each message of ``stream`` that ``durable`` stopped delivering unanswered."""

    def __init__(
        self, nc: Client, js: JetStreamContext, parking: Parking, *, stream: str, durable: str
    ) -> None:
        self._nc = nc
        self._js = js
        self._parking = parking
        self._stream = stream
        self._durable = durable
        self._subscription: Subscription | None = None
        self.parked = 0
        """Messages this listener parked."""

    @property
    def stream(self) -> str:
        """The stream of the durable."""
        return self._stream

    @property
    def durable(self) -> str:
        """The durable whose advisories it follows."""
        return self._durable

    @property
    def subject(self) -> str:
        """The advisory subject it listens to."""
        return f"{MAX_DELIVERIES_ADVISORY}.{self._stream}.{self._durable}"

    async def start(self) -> None:
        """Begin listening (idempotent); ``AdapterUnavailable`` if NATS is away."""
        if self._subscription is not None:
            return
        try:
            self._subscription = await self._nc.subscribe(
                self.subject, queue=f"{self._stream}-{self._durable}-exhausted", cb=self._advised
            )
        except (NatsError, OSError) as e:
            raise AdapterUnavailable(f"cannot listen to {self.subject}: {e!r}") from e

    async def stop(self) -> None:
        """Stop listening (idempotent)."""
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            with contextlib.suppress(NatsError, OSError):
                await subscription.unsubscribe()

    async def _advised(self, advisory: Msg) -> None:
        try:
            body: dict[str, Any] = json.loads(advisory.data)
            sequence, deliveries = int(body["stream_seq"]), int(body["deliveries"])
        except (ValueError, KeyError, TypeError) as e:
            _log.warning("max_deliveries_advisory_unreadable", subject=advisory.subject, error=e)
            return
        where = {"durable": self._durable, "stream": self._stream, "stream_seq": sequence}
        try:
            stored = await self._js.get_msg(self._stream, sequence)
        except NotFoundError:
            _log.error("exhausted_event_gone", **where, deliveries=deliveries)
            return
        except UNREACHABLE as e:
            _log.error("exhausted_event_unread", **where, error=repr(e))
            return
        try:
            await self._parking.park_stored(
                stored,
                stream=self._stream,
                durable=self._durable,
                deliveries=deliveries,
                reason=ParkReason.EXHAUSTED,
                error=f"no answer in {deliveries} deliveries: the process handling the last"
                " one stopped or stalled",
            )
        except AdapterUnavailable as e:  # it stays in its stream; the log says where
            _log.error("event_park_failed", **where, deliveries=deliveries, park_error=repr(e))
            return
        self.parked += 1
