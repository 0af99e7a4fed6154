"""Seat commands over NATS request/reply: to whichever process owns the partition.

A partition's actor runs in one process (a worker); every process — API or worker —
sends the seat commands of that partition to it by NATS core request/reply on
``seat.lock.request.<partition>`` (seed §2.2) under the deployment's prefix, the same
prefix as the event streams (:func:`~openticket.adapters.nats.streams.subject_name`:
prefix ``T1A2`` gives ``t1a2.seat.lock.request.3``). :class:`RemoteSeating` is the
sending side, with the command methods of the local ``SeatingService``;
:class:`PartitionHost` answers them on a worker from its local ``SeatingService``.

Wire format: compact JSON (msgspec)
    One message per command, one per reply. JSON rather than msgpack because the
    messages are small (≈300 bytes), msgspec encodes either in about a microsecond
    against a NATS round trip of a hundred, and JSON can be read with ``nats req`` /
    ``nats sub`` and by a service in any language — as the event envelopes already are.

    A request is an object tagged by ``op``, with the command's fields and the
    correlation id (the request id, :data:`~openticket.application.correlation.
    correlation_id`) when there is one::

        {"op": "hold", "session_id": "5c0e…", "area_id": "A", "hold_id": "9b1d…",
         "holder_id": "…", "order_id": "…", "seat_ids": ["A-1-1"], "max_seats": 4,
         "correlation_id": "req-42"}

    ``op`` is one of ``hold``, ``release``, ``extend``, ``sell`` (``fencing_token``…),
    ``return`` and ``statuses`` (the seat statuses of one area). A reply is
    ``{"ok": <result>}`` — a ``SeatHold``, a ``SaleRecorded``, the returned seat ids, or
    the seats of each status — or an error::

        {"error": "seat_unavailable", "message": "seats not available: A-1-1",
         "seat_ids": ["A-1-1"], "kind": "domain"}

Errors
    Every error the local ``SeatingService`` raises is raised again on the caller's side
    as the same class with the same fields: ``error`` names the class (see
    :data:`ERROR_CLASSES`; mostly its ``code``, except ``seating_unavailable`` for
    ``SeatingUnavailable`` and ``service_unavailable`` for ``AdapterUnavailable``,
    whose codes clash). An error of a class the caller does not know becomes a
    :class:`RemoteSeatingError` that keeps the ``code`` and, by ``kind``
    (``validation``, ``domain``, ``application``, ``port`` or ``internal``), the base
    class the HTTP layer maps to a status; ``internal`` (a bug, not one of our errors)
    stays a plain exception, a 500.

    Nobody answering (no worker serves the partition), no answer within ``timeout``, a
    connection that is closed or reconnecting, or a reply that cannot be read raise
    ``SeatingUnavailable`` (HTTP 503), as a stopped local actor does.

At most once
    A command is sent once and never retried here. A command that timed out may still
    have been decided; the application's commands are safe to repeat (a sale replayed is
    ``replayed``, a release of a released hold is ``NotHolder``) except a hold, whose
    seats would stay held by nobody's order until the hold's TTL. So when a hold times
    out, :class:`RemoteSeating` asks the partition to release it (on the same connection,
    so after the hold; best effort) before raising.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, Final, Generic, TypeVar

import msgspec
import nats.errors
import structlog
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from openticket.adapters.nats.streams import SEAT_LOCK_REQUEST, subject_name
from openticket.application.correlation import correlation_id
from openticket.application.errors import ApplicationError, NotFound, SeatingUnavailable
from openticket.application.ports.errors import AdapterUnavailable, PortError
from openticket.application.seating.actor import PartitionActor, SaleRecorded
from openticket.application.seating.router import PartitionRouter
from openticket.application.seating.service import SeatingService
from openticket.domain.seating import (
    HoldExpired,
    NotHolder,
    SeatHold,
    SeatsSpanAreas,
    SeatStatus,
    SeatsUnavailable,
    StaleFencingToken,
    TooManySeats,
)
from openticket.domain.shared import (
    AreaId,
    DomainError,
    HoldId,
    OrderId,
    SeatId,
    SessionId,
    UserId,
    ValidationError,
)
from openticket.domain.venue import UnknownSeats

_log = structlog.get_logger("openticket.nats.command_path")

DEFAULT_TIMEOUT: Final = 2.0
"""Seconds a caller waits for the owner's answer before ``SeatingUnavailable``."""

COMPENSATION_PATIENCE: Final = 10
"""The release of a timed-out hold waits this many timeouts for its answer."""

DEFAULT_MAX_PENDING: Final = 10_000
"""Undecided commands per partition beyond which a host refuses more (load shedding)."""

QUEUE_GROUP: Final = "partition-owners"
"""Queue group of the hosts (under the prefix): one owner answers each request."""

T = TypeVar("T")


# --- the wire: requests ---------------------------------------------------------------


class SeatRequest(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, tag_field="op"):
    """A command to the actor owning ``(session_id, area_id)``; ``op`` tells which."""

    session_id: SessionId
    area_id: AreaId
    correlation_id: str | None = None


class HoldRequest(SeatRequest, frozen=True, kw_only=True, tag="hold"):
    """``SeatingService.hold``."""

    hold_id: HoldId
    holder_id: UserId
    order_id: OrderId
    seat_ids: tuple[SeatId, ...]
    max_seats: int | None = None


class ReleaseRequest(SeatRequest, frozen=True, kw_only=True, tag="release"):
    """``SeatingService.release``."""

    hold_id: HoldId


class ExtendRequest(SeatRequest, frozen=True, kw_only=True, tag="extend"):
    """``SeatingService.extend``."""

    hold_id: HoldId


class SellRequest(SeatRequest, frozen=True, kw_only=True, tag="sell"):
    """``SeatingService.sell``."""

    hold_id: HoldId
    fencing_token: int
    order_id: OrderId
    seat_ids: tuple[SeatId, ...]


class ReturnRequest(SeatRequest, frozen=True, kw_only=True, tag="return"):
    """``SeatingService.return_seats``."""

    hold_id: HoldId
    order_id: OrderId
    seat_ids: tuple[SeatId, ...]


class StatusesRequest(SeatRequest, frozen=True, kw_only=True, tag="statuses"):
    """``SeatingService.seat_statuses`` of one area."""


AnyRequest = (
    HoldRequest | ReleaseRequest | ExtendRequest | SellRequest | ReturnRequest | StatusesRequest
)


# --- the wire: replies ------------------------------------------------------------------


class Reply(msgspec.Struct, Generic[T], frozen=True, kw_only=True, omit_defaults=True):
    """``{"ok": result}`` or ``{"error": code, "message": …, "seat_ids": […], "kind": …}``."""

    ok: T | None = None
    error: str | None = None
    message: str = ""
    seat_ids: tuple[str, ...] | None = None
    kind: str | None = None


StatusesByKind = dict[SeatStatus, tuple[SeatId, ...]]
"""The ``statuses`` result: the seats of each status (smaller than a map of every seat)."""

_encoder: Final = msgspec.json.Encoder()
_request_decoder: Final = msgspec.json.Decoder(AnyRequest)
_hold_reply: Final = msgspec.json.Decoder(Reply[SeatHold])
_sale_reply: Final = msgspec.json.Decoder(Reply[SaleRecorded])
_seats_reply: Final = msgspec.json.Decoder(Reply[tuple[SeatId, ...]])
_statuses_reply: Final = msgspec.json.Decoder(Reply[StatusesByKind])
_error_reply: Final = msgspec.json.Decoder(Reply[msgspec.Raw])


# --- errors -----------------------------------------------------------------------------------


class RemoteSeatingError(Exception):
    """An error from a partition's owner of a class this process cannot rebuild.

    Its class keeps the remote ``code`` and, for our errors, the base class of the
    remote one (``ValidationError``, ``DomainError``, ``ApplicationError``,
    ``PortError``), so the HTTP layer maps it to the same status.
    """

    code: ClassVar[str] = "remote_error"
    seat_ids: tuple[str, ...] | None = None


ERROR_CLASSES: Final[Mapping[str, type[Exception]]] = {
    "seat_unavailable": SeatsUnavailable,
    "unknown_seats": UnknownSeats,
    "hold_expired": HoldExpired,
    "not_holder": NotHolder,
    "stale_fencing_token": StaleFencingToken,
    "too_many_seats": TooManySeats,
    "seats_span_areas": SeatsSpanAreas,
    "validation_error": ValidationError,
    "domain_error": DomainError,
    "not_found": NotFound,
    "seating_unavailable": SeatingUnavailable,
    "service_unavailable": AdapterUnavailable,
}
"""The error classes a seat command may raise, by the code that names them on the wire."""

_WIRE_CODES: Final[Mapping[type[BaseException], str]] = {
    cls: code for code, cls in ERROR_CLASSES.items()
}

_BASES: Final[Mapping[str, tuple[type[Exception], ...]]] = {
    "validation": (ValidationError,),
    "domain": (DomainError,),
    "application": (ApplicationError,),
    "port": (PortError,),
}


def _kind(error: BaseException) -> str:
    if isinstance(error, ValidationError):
        return "validation"
    if isinstance(error, DomainError):
        return "domain"
    if isinstance(error, ApplicationError):
        return "application"
    if isinstance(error, PortError):
        return "port"
    return "internal"


def encode_error(error: BaseException) -> bytes:
    """The error reply that makes the caller raise ``error`` again (see the module doc)."""
    code = _WIRE_CODES.get(type(error))
    if code is None:
        ours = isinstance(error, DomainError | ApplicationError | PortError)
        code = str(getattr(error, "code", "")) if ours else ""
        code = code or "internal_error"
    if isinstance(error, DomainError):
        message = error.message
    elif code == "internal_error":
        message = f"{type(error).__name__}: {error}"
    else:
        message = str(error)
    seat_ids = getattr(error, "seat_ids", None)
    reply: Reply[None] = Reply(
        error=code,
        message=message,
        seat_ids=tuple(seat_ids) if isinstance(seat_ids, tuple | list) else None,
        kind=_kind(error),
    )
    return _encoder.encode(reply)


def rebuild_error(reply: Reply[Any]) -> Exception:
    """The exception an error reply stands for (the same class and fields as raised)."""
    code = reply.error or "internal_error"
    seat_ids = reply.seat_ids or ()
    cls = ERROR_CLASSES.get(code)
    if cls is SeatsUnavailable:
        return SeatsUnavailable([SeatId(s) for s in seat_ids])
    if cls is UnknownSeats:
        return UnknownSeats(tuple(seat_ids))
    if cls is not None:
        return cls(reply.message)
    error = _remote_error_class(reply.kind or "internal", code)(reply.message)
    if reply.seat_ids is not None:
        error.seat_ids = reply.seat_ids
    return error


def decode_error(data: bytes) -> Exception:
    """The exception an error reply's body stands for (tests, tools)."""
    return rebuild_error(_error_reply.decode(data))


@functools.lru_cache(maxsize=256)
def _remote_error_class(kind: str, code: str) -> type[RemoteSeatingError]:
    """A ``RemoteSeatingError`` subclass of ``code`` with the base class ``kind`` names."""
    bases: tuple[type, ...] = (RemoteSeatingError, *_BASES.get(kind, ()))
    name = "Remote_" + "".join(c if c.isalnum() else "_" for c in code)
    made: type[RemoteSeatingError] = type(
        name, bases, {"code": code, "__module__": __name__, "__doc__": RemoteSeatingError.__doc__}
    )
    return made


# --- the sending side -------------------------------------------------------------------------


class RemoteSeating:
    """The seat commands of ``SeatingService``, sent to each partition's owner over NATS.

    ``client`` is a NATS client (connected by its owner before the first command);
    ``router`` must have the same number of partitions as every worker's; ``prefix`` is
    the deployment's (as for the event streams). Each command waits at most
    ``timeout`` seconds for its answer.

    The hosts expire their own holds in their sweep, so :meth:`expire_due` does nothing
    here, and events are published by the owners, so :meth:`flush_events` has nothing
    to wait for. :attr:`actors` is empty: no actor runs in this process.
    """

    def __init__(
        self,
        client: Client,
        router: PartitionRouter,
        *,
        prefix: str = "",
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        if timeout <= 0:
            raise ValueError("the timeout must be positive")
        self.router = router
        self.actors: dict[int, PartitionActor] = {}
        self.timeout = timeout
        self._client = client
        self._subjects = tuple(
            subject_name(f"{SEAT_LOCK_REQUEST}.{n}", prefix) for n in range(router.partitions)
        )
        self._compensations: set[asyncio.Task[None]] = set()

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Nothing to start: the client is connected by its owner."""

    async def stop(self) -> None:
        """Wait for the releases of timed-out holds still under way (give up after theirs)."""
        pending = set(self._compensations)
        if pending:
            _, late = await asyncio.wait(pending, timeout=self.timeout * COMPENSATION_PATIENCE)
            for task in late:
                task.cancel()

    def ready(self) -> bool:
        """Whether commands can be sent now (the client is connected)."""
        return bool(self._client.is_connected)

    async def flush_events(self) -> None:
        """Nothing to flush: the partitions' owners publish their events."""

    async def expire_due(self) -> None:
        """Nothing to do: each owner expires the holds of its partitions in its own sweep."""

    # --- commands -------------------------------------------------------------------------

    async def _ask(
        self,
        subject: str,
        request: SeatRequest,
        *,
        hold: HoldRequest | None = None,
        patience: float | None = None,
    ) -> bytes:
        """Send ``request``, return the reply's body; ``SeatingUnavailable`` for no answer.

        ``hold``: the hold to release if the answer does not come in time; ``patience``:
        the seconds to wait instead of ``timeout``.
        """
        wait = self.timeout if patience is None else patience
        try:
            reply = await self._client.request(subject, _encoder.encode(request), wait)
        except nats.errors.NoRespondersError:
            raise SeatingUnavailable(f"no worker serves {subject}") from None
        except nats.errors.TimeoutError:
            if hold is not None:
                self._release_later(subject, hold)
            raise SeatingUnavailable(f"no answer on {subject} within {wait:g} s") from None
        except (nats.errors.Error, OSError) as e:
            raise SeatingUnavailable(f"cannot send to {subject}: {e!r}") from e
        return reply.data

    @staticmethod
    def _result(decoder: msgspec.json.Decoder[Reply[T]], subject: str, data: bytes) -> T:
        try:
            reply = decoder.decode(data)
        except msgspec.DecodeError as e:
            raise SeatingUnavailable(f"unreadable reply on {subject}: {e}") from e
        if reply.error is not None:
            raise rebuild_error(reply)
        if reply.ok is None:
            raise SeatingUnavailable(f"reply on {subject} has neither a result nor an error")
        return reply.ok

    async def hold(
        self,
        *,
        session_id: SessionId,
        area_id: AreaId,
        hold_id: HoldId,
        holder_id: UserId,
        order_id: OrderId,
        seat_ids: Sequence[SeatId],
        max_seats: int | None = None,
    ) -> SeatHold:
        """Hold all of ``seat_ids`` for one TTL, or raise ``SeatsUnavailable``."""
        subject = self._subjects[self.router.partition_of(session_id, area_id)]
        request = HoldRequest(
            session_id=session_id,
            area_id=area_id,
            correlation_id=correlation_id.get(),
            hold_id=hold_id,
            holder_id=holder_id,
            order_id=order_id,
            seat_ids=tuple(seat_ids),
            max_seats=max_seats,
        )
        return self._result(_hold_reply, subject, await self._ask(subject, request, hold=request))

    async def release(self, session_id: SessionId, area_id: AreaId, hold_id: HoldId) -> SeatHold:
        """Give a live hold's seats back (``NotHolder`` / ``HoldExpired`` if it is gone)."""
        subject = self._subjects[self.router.partition_of(session_id, area_id)]
        request = ReleaseRequest(
            session_id=session_id,
            area_id=area_id,
            correlation_id=correlation_id.get(),
            hold_id=hold_id,
        )
        return self._result(_hold_reply, subject, await self._ask(subject, request))

    async def extend(self, session_id: SessionId, area_id: AreaId, hold_id: HoldId) -> SeatHold:
        """Keep a live hold for another TTL from now."""
        subject = self._subjects[self.router.partition_of(session_id, area_id)]
        request = ExtendRequest(
            session_id=session_id,
            area_id=area_id,
            correlation_id=correlation_id.get(),
            hold_id=hold_id,
        )
        return self._result(_hold_reply, subject, await self._ask(subject, request))

    async def sell(
        self,
        *,
        session_id: SessionId,
        area_id: AreaId,
        hold_id: HoldId,
        fencing_token: int,
        order_id: OrderId,
        seat_ids: Sequence[SeatId],
    ) -> SaleRecorded:
        """Sell a hold's seats to its order; a replay of a made sale answers ``replayed``."""
        subject = self._subjects[self.router.partition_of(session_id, area_id)]
        request = SellRequest(
            session_id=session_id,
            area_id=area_id,
            correlation_id=correlation_id.get(),
            hold_id=hold_id,
            fencing_token=fencing_token,
            order_id=order_id,
            seat_ids=tuple(seat_ids),
        )
        return self._result(_sale_reply, subject, await self._ask(subject, request))

    async def return_seats(
        self,
        *,
        session_id: SessionId,
        area_id: AreaId,
        hold_id: HoldId,
        order_id: OrderId,
        seat_ids: Sequence[SeatId],
    ) -> tuple[SeatId, ...]:
        """Make an order's sold seats available again; answers the seats it freed."""
        subject = self._subjects[self.router.partition_of(session_id, area_id)]
        request = ReturnRequest(
            session_id=session_id,
            area_id=area_id,
            correlation_id=correlation_id.get(),
            hold_id=hold_id,
            order_id=order_id,
            seat_ids=tuple(seat_ids),
        )
        return self._result(_seats_reply, subject, await self._ask(subject, request))

    # --- queries --------------------------------------------------------------------------

    async def seat_statuses(
        self, session_id: SessionId, area_ids: Sequence[AreaId]
    ) -> dict[SeatId, SeatStatus]:
        """Every seat of the given areas with its status now (asked of each area's owner)."""
        answers = await asyncio.gather(*(self._statuses(session_id, a) for a in area_ids))
        statuses: dict[SeatId, SeatStatus] = {}
        for by_kind in answers:
            for status, seats in by_kind.items():
                statuses.update(dict.fromkeys(seats, status))
        return statuses

    async def _statuses(self, session_id: SessionId, area_id: AreaId) -> StatusesByKind:
        subject = self._subjects[self.router.partition_of(session_id, area_id)]
        request = StatusesRequest(
            session_id=session_id, area_id=area_id, correlation_id=correlation_id.get()
        )
        return self._result(_statuses_reply, subject, await self._ask(subject, request))

    # --- a hold whose answer never came ----------------------------------------------------

    def _release_later(self, subject: str, hold: HoldRequest) -> None:
        request = ReleaseRequest(
            session_id=hold.session_id,
            area_id=hold.area_id,
            correlation_id=hold.correlation_id,
            hold_id=hold.hold_id,
        )
        task = asyncio.get_running_loop().create_task(self._release_timed_out(subject, request))
        self._compensations.add(task)
        task.add_done_callback(self._compensations.discard)

    async def _release_timed_out(self, subject: str, request: ReleaseRequest) -> None:
        # the hold is still queued behind a slow batch: give the release more time
        patience = self.timeout * COMPENSATION_PATIENCE
        try:
            self._result(_hold_reply, subject, await self._ask(subject, request, patience=patience))
        except (NotHolder, HoldExpired):
            return  # the hold was refused (or is gone): nothing held
        except Exception as e:  # best effort: the hold ends at its TTL anyway
            _log.warning("timed_out_hold_not_released", hold_id=str(request.hold_id), error=str(e))
            return
        _log.info("timed_out_hold_released", hold_id=str(request.hold_id))


# --- the answering side -----------------------------------------------------------------------


def _grouped(statuses: Mapping[SeatId, SeatStatus]) -> StatusesByKind:
    by_kind: dict[SeatStatus, list[SeatId]] = {}
    for seat, status in statuses.items():
        by_kind.setdefault(status, []).append(seat)
    return {status: tuple(seats) for status, seats in by_kind.items()}


class PartitionHost:
    """Answers the seat commands of some partitions from a local ``SeatingService``.

    :meth:`serve` subscribes a partition's subject in the queue group of the owners
    (``<prefix>.partition-owners``), so that while two owners overlap (a handover) each
    request is still answered once; :meth:`release` drains the subscription and waits
    until the commands it took are decided.

    The subscription callback only decodes a request and puts it into the actor's
    mailbox; the reply is sent when the actor's future resolves, by one task that sends
    every reply due. So a slow command never holds up the requests behind it, and the
    actor decides in batches what arrives meanwhile.

    A partition with ``max_pending`` commands undecided (its store is slow, or down)
    answers more at once with ``SeatingUnavailable`` rather than queue work whose
    callers will have given up by the time it is decided.
    """

    def __init__(
        self,
        client: Client,
        seating: SeatingService,
        *,
        prefix: str = "",
        max_pending: int = DEFAULT_MAX_PENDING,
    ) -> None:
        if max_pending < 1:
            raise ValueError("max_pending must be at least 1")
        self.seating = seating
        self.max_pending = max_pending
        self.answered = 0
        """Replies sent (results and errors), for metrics and tests."""
        self._client = client
        self._prefix = prefix
        self._queue = subject_name(QUEUE_GROUP, prefix)
        self._subscriptions: dict[int, Subscription] = {}
        self._inflight: dict[int, set[asyncio.Future[Any]]] = {}
        self._outbox: list[tuple[str, bytes]] = []
        self._outbox_ready = asyncio.Event()
        self._sender: asyncio.Task[None] | None = None
        self._stopping = False

    def subject(self, partition: int) -> str:
        """The subject of ``partition``'s commands."""
        return subject_name(f"{SEAT_LOCK_REQUEST}.{partition}", self._prefix)

    @property
    def partitions(self) -> frozenset[int]:
        """The partitions served now."""
        return frozenset(self._subscriptions)

    # --- lifecycle ------------------------------------------------------------------------

    async def serve(self, partition: int) -> None:
        """Answer ``partition``'s commands from now on (nothing if served already).

        Raises ``ValueError`` for a partition without a local actor: serving it would
        take requests from its real owner in the queue group and answer them with errors.
        """
        if partition in self._subscriptions:
            return
        if partition not in self.seating.actors:
            raise ValueError(f"partition {partition} has no actor in this process")
        if self._sender is None:
            self._sender = asyncio.create_task(self._send_replies(), name="partition-host-replies")
        self._subscriptions[partition] = await self._client.subscribe(
            self.subject(partition),
            queue=self._queue,
            cb=functools.partial(self._on_request, partition),
        )
        # the server knows the subscription once this returns: requests reach us now
        await self._client.flush()

    async def release(self, partition: int) -> None:
        """Stop answering ``partition``: drain its subscription, wait for its commands.

        When it returns, every command this host took for the partition has been decided
        (and its reply queued), so the next owner rebuilds from a lock store that has them.
        """
        subscription = self._subscriptions.pop(partition, None)
        if subscription is not None:
            with contextlib.suppress(nats.errors.Error):
                await subscription.drain()  # type: ignore[no-untyped-call]  # nats-py
        pending = self._inflight.get(partition)
        if pending:
            await asyncio.wait(set(pending))

    async def stop(self) -> None:
        """Release every partition, send the last replies and stop."""
        for partition in list(self._subscriptions):
            await self.release(partition)
        sender, self._sender = self._sender, None
        if sender is not None:
            self._stopping = True
            self._outbox_ready.set()
            await sender  # it sends what is queued, then ends
            await self._flush_outbox()
            self._stopping = False

    # --- requests -------------------------------------------------------------------------

    async def _on_request(self, partition: int, msg: Msg) -> None:
        reply_to = msg.reply
        if not reply_to:
            return  # not a request: there is nobody to answer
        try:
            request = _request_decoder.decode(msg.data)
        except (msgspec.DecodeError, msgspec.ValidationError) as e:
            self._send(reply_to, encode_error(ValueError(f"malformed seat command: {e}")))
            return
        inflight = self._inflight.setdefault(partition, set())
        if len(inflight) >= self.max_pending:
            busy = f"partition {partition} has {len(inflight)} commands undecided; try again"
            self._send(reply_to, encode_error(SeatingUnavailable(busy)))
            return
        seating = self.seating
        owner = seating.router.partition_of(request.session_id, request.area_id)
        if owner != partition or owner not in seating.actors:
            self._send(
                reply_to,
                encode_error(
                    SeatingUnavailable(
                        f"this worker routes {request.session_id}:{request.area_id} to "
                        f"partition {owner}, not {partition} (or does not own it)"
                    )
                ),
            )
            return
        token = correlation_id.set(request.correlation_id)
        try:
            future, shape = self._submit(request)
        except Exception as e:  # a command that cannot even be queued is answered too
            self._send(reply_to, encode_error(e))
            return
        finally:
            correlation_id.reset(token)
        inflight.add(future)
        future.add_done_callback(functools.partial(self._on_decided, reply_to, shape, inflight))

    def _submit(
        self, request: AnyRequest
    ) -> tuple[asyncio.Future[Any], Callable[[Any], Any] | None]:
        """Put the command into its actor's mailbox; the reply future and its wire shape."""
        seating = self.seating
        if isinstance(request, HoldRequest):
            return seating.hold(
                session_id=request.session_id,
                area_id=request.area_id,
                hold_id=request.hold_id,
                holder_id=request.holder_id,
                order_id=request.order_id,
                seat_ids=request.seat_ids,
                max_seats=request.max_seats,
            ), None
        if isinstance(request, ReleaseRequest):
            return seating.release(request.session_id, request.area_id, request.hold_id), None
        if isinstance(request, ExtendRequest):
            return seating.extend(request.session_id, request.area_id, request.hold_id), None
        if isinstance(request, SellRequest):
            return seating.sell(
                session_id=request.session_id,
                area_id=request.area_id,
                hold_id=request.hold_id,
                fencing_token=request.fencing_token,
                order_id=request.order_id,
                seat_ids=request.seat_ids,
            ), None
        if isinstance(request, ReturnRequest):
            return seating.return_seats(
                session_id=request.session_id,
                area_id=request.area_id,
                hold_id=request.hold_id,
                order_id=request.order_id,
                seat_ids=request.seat_ids,
            ), None
        statuses = seating.seat_statuses(request.session_id, [request.area_id])
        return asyncio.ensure_future(statuses), _grouped

    def _on_decided(
        self,
        reply_to: str,
        shape: Callable[[Any], Any] | None,
        inflight: set[asyncio.Future[Any]],
        future: asyncio.Future[Any],
    ) -> None:
        inflight.discard(future)
        if future.cancelled():
            data = encode_error(SeatingUnavailable("the command was cancelled"))
        elif (error := future.exception()) is not None:
            data = encode_error(error)
        else:
            result = future.result()
            ok: Reply[Any] = Reply(ok=result if shape is None else shape(result))
            data = _encoder.encode(ok)
            if len(data) > self._client.max_payload:
                data = encode_error(
                    SeatingUnavailable(f"the answer ({len(data)} bytes) exceeds the NATS payload")
                )
        self._send(reply_to, data)

    # --- replies --------------------------------------------------------------------------

    def _send(self, reply_to: str, data: bytes) -> None:
        self._outbox.append((reply_to, data))
        self._outbox_ready.set()

    async def _send_replies(self) -> None:
        while not self._stopping:
            await self._outbox_ready.wait()
            self._outbox_ready.clear()
            await self._flush_outbox()

    async def _flush_outbox(self) -> None:
        batch, self._outbox = self._outbox, []
        publish = self._client.publish
        for reply_to, data in batch:
            try:
                await publish(reply_to, data)
            except (nats.errors.Error, OSError) as e:  # the caller times out: 503
                _log.warning("seat_reply_not_sent", error=repr(e))
        self.answered += len(batch)
