"""The saga's roles as durable JetStream consumers: what ``openticket worker`` runs.

Each :class:`~openticket.application.roles.EventRole` (``ticketing``, ``order-saga``,
``payments``) becomes durable pull consumers that read **only the kinds of event it
handles**, one durable per subject (:func:`role_durables`): ``ticketing`` on PAYMENTS
(``payment.succeeded.*``); ``order-saga-payment-failed`` and
``order-saga-refund-succeeded`` on PAYMENTS; ``order-saga-order-failed``,
``-order-cancelled``, ``-order-expired`` and ``-order-refunded`` on ORDERS;
``payments-order-expired`` and ``payments-order-cancelled`` on ORDERS. A role with one
subject in a stream keeps the role's name. The subjects come from the streams' routes
(:data:`~openticket.adapters.nats.streams.ROUTES`).

Why one durable per subject
    NATS 2.9 takes one ``filter_subject`` per consumer. A durable covering a role's
    subjects (``order.>``) was handed every order and ticket event of a purchase only to
    acknowledge it unread: eleven deliveries per purchase, ten of them skipped, each a
    fetch and a confirmed acknowledgement (``docs/performance.md``). The order *between*
    subjects, which a covering durable keeps, is not something the saga relies on:
    every step reads the order or the payment it acts on from the database and acts only
    on the state it finds there (the lock store, for seats, compares the hold and the
    order), and the events of one order that these durables read are alternatives (an
    order fails, is cancelled or expires, once) or come long after (a refund of a
    completed order). Retries already reorder a key's events (see
    :mod:`~openticket.adapters.nats.consumer`). Consumers that need the order across
    kinds (the live feeds, the seat cache) keep one covering filter.

Every worker runs ``instances`` :class:`~openticket.adapters.nats.consumer.EventConsumer`
of each durable; JetStream hands each message to one of them, across all workers, so
the work of a role is shared and survives any worker. A message is acknowledged after
its handler committed; transient failures — the database or NATS away, a partition
moving between workers (``SeatingUnavailable``) — come back with backoff, and after
``max_deliver`` deliveries, or at once for an error a retry would not change, the
message is parked in the deployment's PARKED stream for an operator. One whose last
delivery got no answer at all (its worker died) is parked by an
:class:`~openticket.adapters.nats.exhausted.ExhaustedDeliveries` listener per durable.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta
from typing import Final

import structlog
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from openticket.adapters.nats.consumer import TRANSIENT, EventConsumer, Parking, ensure_parking
from openticket.adapters.nats.exhausted import ExhaustedDeliveries
from openticket.adapters.nats.parked import NatsParkedMessages
from openticket.adapters.nats.streams import ROUTES, UnroutableEvent, stream_name, subject_name
from openticket.application.errors import SeatingUnavailable
from openticket.application.roles import EventRole

_log = structlog.get_logger("openticket.nats.roles")

ROLE_TRANSIENT: Final[tuple[type[BaseException], ...]] = (*TRANSIENT, SeatingUnavailable)
"""Handler errors a later delivery may not meet; a moving partition is one of them."""

DEFAULT_BACKOFF: Final = (
    timedelta(milliseconds=250),
    timedelta(seconds=1),
    timedelta(seconds=2),
    timedelta(seconds=5),
    timedelta(seconds=15),
    timedelta(seconds=30),
)


def role_durables(role: EventRole, prefix: str = "") -> list[tuple[str, str, str]]:
    """``(stream, durable, subject)`` of each durable consumer of ``role``.

    One per subject; the durable is the role's name where the role has one subject in
    that stream, else the role's name and the subject's leaf (``order-saga-order-failed``).
    """
    leaves: dict[str, list[str]] = {}
    for event_type in role.event_types:
        route = ROUTES.get(event_type)
        if route is None:
            raise UnroutableEvent(f"role {role.name}: no subject for {event_type.__name__}")
        leaves.setdefault(route.stream, []).append(route.leaf)
    return [
        (
            stream_name(stream, prefix),
            role.name if len(leafs) == 1 else f"{role.name}-{leaf.replace('.', '-')}",
            subject_name(f"{leaf}.*", prefix),
        )
        for stream, leafs in leaves.items()
        for leaf in leafs
    ]


class RoleConsumers:
    """Durable consumers for ``roles``, ``instances`` of each, parking in ``prefix``'s PARKED."""

    def __init__(
        self,
        nc: Client,
        js: JetStreamContext,
        roles: Sequence[EventRole],
        *,
        prefix: str = "",
        instances: int = 1,
        max_deliver: int = 10,
        replicas: int = 1,
        ack_wait: timedelta = timedelta(seconds=30),
        backoff: Sequence[timedelta] = DEFAULT_BACKOFF,
        batch: int = 10,
        fetch_timeout: timedelta = timedelta(seconds=2),
    ) -> None:
        if instances < 1:
            raise ValueError("a role needs at least one consumer")
        self._js = js
        self._prefix = prefix
        self._replicas = replicas
        parking = Parking(js, prefix=prefix)
        self.consumers: tuple[EventConsumer, ...] = tuple(
            EventConsumer(
                js,
                stream=stream,
                durable=durable,
                subjects=[subject],
                handle=role.handle,
                park=parking,
                max_deliver=max_deliver,
                ack_wait=ack_wait,
                backoff=backoff,
                batch=batch,
                fetch_timeout=fetch_timeout,
                transient=ROLE_TRANSIENT,
                settled_by=role.name,
            )
            for role in roles
            for stream, durable, subject in role_durables(role, prefix)
            for _ in range(instances)
        )
        """Every consumer, ``instances`` in a row per durable and stream."""
        self.exhausted: tuple[ExhaustedDeliveries, ...] = tuple(
            ExhaustedDeliveries(nc, js, parking, stream=stream, durable=durable)
            for stream, durable in dict.fromkeys((c.stream, c.durable) for c in self.consumers)
        )
        """One listener per durable and stream for messages whose last delivery died."""

    async def start(self) -> None:
        """Create the parking stream and the durables, and start fetching.

        Raises ``AdapterUnavailable`` when NATS cannot be reached; consumers started
        before the failure are stopped again.
        """
        await ensure_parking(self._js, self._prefix, replicas=self._replicas)
        try:
            for listener in self.exhausted:
                await listener.start()
            for consumer in self.consumers:
                await consumer.start()
        except BaseException:
            await self.stop()
            raise
        _log.info(
            "role_consumers_started",
            durables=sorted({f"{c.stream}/{c.durable}" for c in self.consumers}),
            consumers=len(self.consumers),
        )

    async def stop(self) -> None:
        """Let every running handler finish and settle; the rest goes back to JetStream."""
        await asyncio.gather(*(consumer.stop() for consumer in self.consumers))
        for listener in self.exhausted:
            await listener.stop()
        _log.info("role_consumers_stopped", **self.counters())

    async def backlog(self) -> dict[str, tuple[int, int]]:
        """Per ``<stream>/<durable>``: messages not delivered yet, and delivered not acked.

        Read from JetStream's consumer info (what every worker's instances share). A
        durable NATS does not know (deleted by hand) is left out.
        """
        found: dict[str, tuple[int, int]] = {}
        for stream, durable in dict.fromkeys((c.stream, c.durable) for c in self.consumers):
            try:
                info = await self._js.consumer_info(stream, durable)
            except NotFoundError:
                continue
            found[f"{stream}/{durable}"] = (
                int(info.num_pending or 0),
                int(info.num_ack_pending or 0),
            )
        return found

    async def parked(self) -> int:
        """Messages waiting in the deployment's PARKED stream for an operator."""
        return await NatsParkedMessages(self._js, prefix=self._prefix).parked()

    def counters(self) -> dict[str, dict[str, int]]:
        """The consumers' counters summed per ``<stream>/<durable>``."""
        totals: dict[str, dict[str, int]] = {}
        for consumer in self.consumers:
            total = totals.setdefault(f"{consumer.stream}/{consumer.durable}", {})
            for name, value in consumer.counters().items():
                total[name] = total.get(name, 0) + value
        for listener in self.exhausted:
            total = totals[f"{listener.stream}/{listener.durable}"]
            total["parked"] += listener.parked
        return totals
