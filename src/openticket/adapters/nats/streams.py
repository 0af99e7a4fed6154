"""The JetStream streams OpenTicket publishes to, and which subject each event takes.

Three streams, as the seed (the project's original design) names them: ``SEATS`` (kept
7 days), ``ORDERS`` (30 days) and ``PAYMENTS`` (90 days); file storage, limits
retention, the replicas and the duplicate window (default 2 minutes, the span in which
a ``Nats-Msg-Id`` seen before is dropped) given by the deployment.
:func:`ensure_streams` creates them, or brings an existing stream's settings up to date.

Subjects
    Every domain event goes to ``<leaf>.<key>``: the leaf names the kind of event, the
    last token is the **key**, the id that orders what consumers must see in order (the
    id of the aggregate that emitted the event; for seats, the session, so that a
    partition's ``seat.partition.loaded`` and its later decisions stay in one order).
    Consumers filter on ``<leaf>.*`` for one kind of event, or e.g. ``order.>`` for a
    family. Leaves named by the seed keep its names; the others follow its style.

    ===========================  ========  ===============================  ==========
    event                        stream    subject                          key
    ===========================  ========  ===============================  ==========
    ``SeatsHeld``                SEATS     ``seat.locked.<key>``            session_id
    ``SeatHoldRejected``         SEATS     ``seat.lock.failed.<key>``       session_id
    ``SeatsReleased``            SEATS     ``seat.released.<key>``          session_id
    ``SeatsExpired``             SEATS     ``seat.expired.<key>``           session_id
    ``SeatsExtended``            SEATS     ``seat.extended.<key>``          session_id
    ``SeatsSold``                SEATS     ``seat.sold.<key>``              session_id
    ``SeatsReturned``            SEATS     ``seat.returned.<key>``          session_id
    ``PartitionLoaded``          SEATS     ``seat.partition.loaded.<key>``  session_id
    ``OrderCreated``             ORDERS    ``order.created.<key>``          order_id
    ``OrderPaymentStarted``      ORDERS    ``order.payment.started.<key>``  order_id
    ``OrderCompleted``           ORDERS    ``order.completed.<key>``        order_id
    ``OrderFailed``              ORDERS    ``order.failed.<key>``           order_id
    ``OrderExpired``             ORDERS    ``order.expired.<key>``          order_id
    ``OrderCancelled``           ORDERS    ``order.cancelled.<key>``        order_id
    ``OrderRefunded``            ORDERS    ``order.refunded.<key>``         order_id
    ``SaleRefusedAtFinalFence``  ORDERS    ``order.sale.refused.<key>``     order_id
    ``TicketIssued``             ORDERS    ``ticket.issued.<key>``          ticket_id
    ``TicketCheckedIn``          ORDERS    ``ticket.checked_in.<key>``      ticket_id
    ``TicketVoidedEvent``        ORDERS    ``ticket.voided.<key>``          ticket_id
    ``PaymentInitiated``         PAYMENTS  ``payment.initiated.<key>``      payment_id
    ``PaymentSucceeded``         PAYMENTS  ``payment.succeeded.<key>``      payment_id
    ``PaymentFailed``            PAYMENTS  ``payment.failed.<key>``         payment_id
    ``PaymentRefunded``          PAYMENTS  ``refund.succeeded.<key>``       payment_id
    ===========================  ========  ===============================  ==========

    Tickets have no stream of their own in the seed; their events live with the orders
    they belong to.

    The seed's command subject ``seat.lock.request.<partition>`` (:data:`SEAT_LOCK_REQUEST`)
    is in **no** stream: seat commands go to the partition's owner by core NATS
    request/reply (:mod:`.command_path`), and a stream capturing the subject would store
    every command and answer each request with its ``PubAck`` — a reply that races the
    owner's, and the only one when no owner is there (instead of "no responders").
    :func:`ensure_streams` takes it out of a ``SEATS`` stream made by an earlier release
    (:data:`RETIRED_LEAVES`).

Prefix
    A deployment (or a test) may set a ``prefix`` of letters, digits, ``_`` and ``-``:
    streams become ``<PREFIX>_SEATS``…, subjects ``<prefix>.seat.locked.<key>``… (the
    prefix upper-cased in stream names, lower-cased in subjects), so that several of
    them share one server without touching each other's streams.

Subject lists are explicit leaves (``seat.locked.*``…), not ``seat.>``, so a stream
never swallows subjects that are not its own (core pub/sub, KV, other services).
:func:`ensure_streams` adds the subjects it lacks and removes none but the retired ones,
so during a rolling upgrade an older release does not take away a subject a newer one
added. (An older release still puts the retired ``seat.lock.request.*`` back until it
is gone: the request/reply command path runs only once every process is upgraded.)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Final, cast

import attrs
from nats.js import JetStreamManager
from nats.js.api import RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import (
    BadRequestError,
    NotFoundError,
)

from openticket.adapters.nats.errors import STREAM_NAME_IN_USE, UNREACHABLE
from openticket.application.ports.errors import AdapterUnavailable
from openticket.application.saga import SaleRefusedAtFinalFence
from openticket.application.seating.actor import PartitionLoaded
from openticket.domain.ordering import (
    OrderCancelled,
    OrderCompleted,
    OrderCreated,
    OrderExpired,
    OrderFailed,
    OrderPaymentStarted,
    OrderRefunded,
)
from openticket.domain.payment import (
    PaymentFailed,
    PaymentInitiated,
    PaymentRefunded,
    PaymentSucceeded,
)
from openticket.domain.seating import (
    SeatHoldRejected,
    SeatsExpired,
    SeatsExtended,
    SeatsHeld,
    SeatsReleased,
    SeatsReturned,
    SeatsSold,
)
from openticket.domain.shared import DomainEvent
from openticket.domain.ticketing import TicketCheckedIn, TicketIssued, TicketVoidedEvent

SEATS: Final = "SEATS"
ORDERS: Final = "ORDERS"
PAYMENTS: Final = "PAYMENTS"

SEAT_LOCK_REQUEST: Final = "seat.lock.request"
"""Leaf of the seat commands to partition actors (``seat.lock.request.<partition>``).

A core request/reply subject, deliberately in no stream (see the module's doc)."""

RETIRED_LEAVES: Final[Mapping[str, tuple[str, ...]]] = {SEATS: (SEAT_LOCK_REQUEST,)}
"""Leaves an earlier release put into a stream that must leave it, by stream name."""

DEFAULT_DUPLICATE_WINDOW: Final = timedelta(minutes=2)

_PREFIX = re.compile(r"[A-Za-z0-9_-]*")


class UnroutableEvent(LookupError):
    """An event of a type that has no subject: add it to :data:`ROUTES`."""


def _checked(prefix: str) -> str:
    if not _PREFIX.fullmatch(prefix):
        raise ValueError(f"a prefix takes letters, digits, '_' and '-' only, not {prefix!r}")
    return prefix


def stream_name(stream: str, prefix: str = "") -> str:
    """The name of ``stream`` (``SEATS``…) in the deployment of ``prefix``."""
    return f"{_checked(prefix).upper()}_{stream}" if prefix else stream


def subject_name(leaf: str, prefix: str = "") -> str:
    """The subject ``leaf`` (``seat.locked.*``…) in the deployment of ``prefix``."""
    return f"{_checked(prefix).lower()}.{leaf}" if prefix else leaf


@attrs.frozen
class EventRoute:
    """Where one kind of event goes: its stream, its leaf subject and its key field."""

    stream: str
    """The stream's name without prefix (``SEATS``…)."""
    leaf: str
    """The subject without prefix and key (``seat.locked``…)."""
    key_field: str
    """The event attribute whose value is the subject's last token."""

    def key(self, event: DomainEvent) -> str:
        """The event's key: the id consumers keep its order by."""
        return str(getattr(event, self.key_field))

    def subject(self, event: DomainEvent, prefix: str = "") -> str:
        """The subject ``event`` is published to."""
        return subject_name(f"{self.leaf}.{self.key(event)}", prefix)


ROUTES: Final[Mapping[type[DomainEvent], EventRoute]] = {
    SeatsHeld: EventRoute(SEATS, "seat.locked", "session_id"),
    SeatHoldRejected: EventRoute(SEATS, "seat.lock.failed", "session_id"),
    SeatsReleased: EventRoute(SEATS, "seat.released", "session_id"),
    SeatsExpired: EventRoute(SEATS, "seat.expired", "session_id"),
    SeatsExtended: EventRoute(SEATS, "seat.extended", "session_id"),
    SeatsSold: EventRoute(SEATS, "seat.sold", "session_id"),
    SeatsReturned: EventRoute(SEATS, "seat.returned", "session_id"),
    PartitionLoaded: EventRoute(SEATS, "seat.partition.loaded", "session_id"),
    OrderCreated: EventRoute(ORDERS, "order.created", "order_id"),
    OrderPaymentStarted: EventRoute(ORDERS, "order.payment.started", "order_id"),
    OrderCompleted: EventRoute(ORDERS, "order.completed", "order_id"),
    OrderFailed: EventRoute(ORDERS, "order.failed", "order_id"),
    OrderExpired: EventRoute(ORDERS, "order.expired", "order_id"),
    OrderCancelled: EventRoute(ORDERS, "order.cancelled", "order_id"),
    OrderRefunded: EventRoute(ORDERS, "order.refunded", "order_id"),
    SaleRefusedAtFinalFence: EventRoute(ORDERS, "order.sale.refused", "order_id"),
    TicketIssued: EventRoute(ORDERS, "ticket.issued", "ticket_id"),
    TicketCheckedIn: EventRoute(ORDERS, "ticket.checked_in", "ticket_id"),
    TicketVoidedEvent: EventRoute(ORDERS, "ticket.voided", "ticket_id"),
    PaymentInitiated: EventRoute(PAYMENTS, "payment.initiated", "payment_id"),
    PaymentSucceeded: EventRoute(PAYMENTS, "payment.succeeded", "payment_id"),
    PaymentFailed: EventRoute(PAYMENTS, "payment.failed", "payment_id"),
    PaymentRefunded: EventRoute(PAYMENTS, "refund.succeeded", "payment_id"),
}
"""The route of every kind of domain event, by class."""


def route_of(event: DomainEvent) -> EventRoute:
    """The route of ``event``; ``UnroutableEvent`` for a type without one."""
    route = ROUTES.get(type(event))
    if route is None:
        raise UnroutableEvent(f"no subject for events of type {event.event_type}")
    return route


@attrs.frozen
class StreamLayout:
    """One stream: its name and subjects without prefix, and how long it keeps messages."""

    name: str
    max_age: timedelta
    leaves: tuple[str, ...]
    """Its subjects without prefix and key; each takes one more token, the key."""
    description: str

    def subjects(self, prefix: str = "") -> list[str]:
        """The stream's subject filters (``seat.locked.*``…) under ``prefix``."""
        return [subject_name(f"{leaf}.*", prefix) for leaf in self.leaves]

    def config(
        self,
        *,
        prefix: str = "",
        replicas: int = 1,
        duplicate_window: timedelta = DEFAULT_DUPLICATE_WINDOW,
    ) -> StreamConfig:
        """The stream's configuration in the deployment of ``prefix``."""
        return StreamConfig(
            name=stream_name(self.name, prefix),
            description=self.description,
            subjects=self.subjects(prefix),
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            num_replicas=replicas,
            max_age=self.max_age.total_seconds(),
            duplicate_window=duplicate_window.total_seconds(),
        )


def _leaves(stream: str) -> tuple[str, ...]:
    return tuple(route.leaf for route in ROUTES.values() if route.stream == stream)


STREAMS: Final[tuple[StreamLayout, ...]] = (
    StreamLayout(
        SEATS,
        timedelta(days=7),
        _leaves(SEATS),
        "OpenTicket seat holds: what the partition actors decided",
    ),
    StreamLayout(
        ORDERS,
        timedelta(days=30),
        _leaves(ORDERS),
        "OpenTicket orders and the tickets they issue",
    ),
    StreamLayout(
        PAYMENTS,
        timedelta(days=90),
        _leaves(PAYMENTS),
        "OpenTicket payments and refunds",
    ),
)
"""The streams, in the seed's order."""


async def ensure_streams(
    js: JetStreamManager,
    *,
    prefix: str = "",
    replicas: int = 1,
    duplicate_window: timedelta = DEFAULT_DUPLICATE_WINDOW,
) -> None:
    """Create the streams, or update those whose settings differ; safe to call often.

    Several processes may call it at once (each at start-up). Subjects an existing
    stream has beyond ours are kept, except the retired ones (:data:`RETIRED_LEAVES`),
    which are taken out. Raises ``AdapterUnavailable`` when the server or
    its JetStream cannot be reached, and the server's ``APIError`` for a setting it
    refuses to change (e.g. the storage type of an existing stream).
    """
    _checked(prefix)
    if replicas < 1:
        raise ValueError("a stream needs at least one replica")
    if duplicate_window <= timedelta(0):
        raise ValueError("the duplicate window must be positive")
    for layout in STREAMS:
        wanted = layout.config(prefix=prefix, replicas=replicas, duplicate_window=duplicate_window)
        retired = frozenset(
            subject_name(f"{leaf}.*", prefix) for leaf in RETIRED_LEAVES.get(layout.name, ())
        )
        try:
            await _ensure(js, wanted, retired)
        except UNREACHABLE as e:
            raise AdapterUnavailable(
                f"cannot set up the JetStream stream {wanted.name}: {e!r}"
            ) from e


async def _ensure(js: JetStreamManager, wanted: StreamConfig, retired: frozenset[str]) -> None:
    current = await existing_or_created(js, wanted)
    if current is not None and not _satisfies(current, wanted, retired):
        await js.update_stream(_merged(current, wanted, retired))


async def existing_or_created(js: JetStreamManager, wanted: StreamConfig) -> StreamConfig | None:
    """The configuration of the stream named in ``wanted``; ``None`` if it had to be created.

    A missing stream is created as ``wanted``. One that exists, or that another process
    created in between (:data:`~.errors.STREAM_NAME_IN_USE`), is left as it is: the caller
    brings it up to date as it sees fit. The server's errors are raised as they are.
    """
    name = cast(str, wanted.name)
    try:
        return (await js.stream_info(name)).config
    except NotFoundError:
        try:
            await js.add_stream(wanted)
        except BadRequestError as e:
            if e.err_code != STREAM_NAME_IN_USE:
                raise
            return (await js.stream_info(name)).config
    return None


def _nanos(seconds: float | None) -> int:
    return round((seconds or 0) * 1_000_000_000)


def _satisfies(current: StreamConfig, wanted: StreamConfig, retired: frozenset[str]) -> bool:
    return (
        set(wanted.subjects or ()) <= set(current.subjects or ())
        and retired.isdisjoint(current.subjects or ())
        and current.retention == wanted.retention
        and current.storage == wanted.storage
        and current.num_replicas == wanted.num_replicas
        and _nanos(current.max_age) == _nanos(wanted.max_age)
        and _nanos(current.duplicate_window) == _nanos(wanted.duplicate_window)
    )


def _merged(current: StreamConfig, wanted: StreamConfig, retired: frozenset[str]) -> StreamConfig:
    """``current`` with our settings, our subjects added to its own, the retired ones out."""
    subjects = [s for s in current.subjects or () if s not in retired]
    subjects += [s for s in wanted.subjects or () if s not in subjects]
    return current.evolve(
        subjects=subjects,
        retention=wanted.retention,
        storage=wanted.storage,
        num_replicas=wanted.num_replicas,
        max_age=wanted.max_age,
        duplicate_window=wanted.duplicate_window,
    )
