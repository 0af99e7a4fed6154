"""Seat commands over NATS request/reply: to whichever process owns the partition.

A partition's actor runs in one process (a worker); every process — API or worker —
sends the seat commands of that partition to it by NATS core request/reply on
``seat.lock.request.<partition>``, the seat-lock subject of the original design, under
the deployment's prefix, the same prefix as the event streams
(:func:`~openticket.adapters.nats.streams.subject_name`: prefix ``T1A2`` gives
``t1a2.seat.lock.request.3``). :class:`RemoteSeating` is the sending side, the
``Seating`` port's ``ask``; :class:`PartitionHost` answers on a worker from its local
``SeatingService``.

One message per partition per tick
    The commands a process asks of one partition within one turn of its event loop go
    as **one** request, and come back as one reply, as the actor decides what piled up
    in its mailbox as one batch anyway. Under a flash sale's load that is one NATS
    round trip for tens of holds; alone, a command still goes at once (the next turn).

Wire format: compact JSON (msgspec)
    The commands are the application's own seat commands
    (:mod:`openticket.application.seating.commands`), encoded as they are: objects
    tagged by ``op`` (``hold``, ``release``, ``extend``, ``sell``, ``return``,
    ``statuses``). A request is::

        {"commands": [{"op": "hold", "session_id": "5c0e…", "area_id": "A",
                       "hold_id": "9b1d…", "holder_id": "…", "order_id": "…",
                       "seat_ids": ["A-1-1"], "max_seats": 4}, …],
         "correlation_ids": ["req-42", …]}

    with ``correlation_ids`` (the request ids, :data:`~openticket.application.
    correlation.correlation_id`, one per command) left out when there are none, and
    likewise ``traceparents`` (each command's W3C trace context, when this process
    traces: :mod:`openticket.adapters.tracing`). The reply is a list with one entry
    per command, in order: ``{"ok": <result>}`` — the command's ``reply_type``: a
    ``SeatHold``, a ``SaleRecorded``, the returned seat ids, the seats of each status —
    or an error::

        {"error": "seat_unavailable", "message": "seats not available: A-1-1",
         "seat_ids": ["A-1-1"], "kind": "domain"}

    A reply that is one error object instead of a list (a malformed request, a
    partition with too much undecided work) is the answer to every command of it.
    JSON rather than msgpack: msgspec encodes either in about a microsecond a command,
    and JSON can be read with ``nats req`` / ``nats sub`` and by a service in any
    language — as the event envelopes already are.

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

    A message nobody received (NATS's "no responders": the partition is moving from one
    worker to another, or no worker runs) is sent again every
    ``NO_OWNER_RETRY_SECONDS`` within its timeout, so a partition's move costs the
    buyers a moment, not an error. No answer within ``timeout``, a connection that is
    closed or reconnecting, or a reply that cannot be read raise ``SeatingUnavailable``
    (HTTP 503) for every command of the message, as a stopped local actor does.

At most once
    A message is sent once and never retried here. A command that timed out may still
    have been decided; the application's commands are safe to repeat (a sale replayed is
    ``replayed``, a release of a released hold is ``NotHolder``) except a hold, whose
    seats would stay held by nobody's order until the hold's TTL. So when a message
    times out, :class:`RemoteSeating` owes the partition a release of each hold in it.
    An owed release goes first in every message this process sends the partition until
    it is answered, and on its own every ``RELEASE_RETRY_SECONDS`` while nobody serves
    the partition (its owner was killed and the next one is not there yet), for
    ``COMPENSATION_PATIENCE`` timeouts at most. A hold's caller gets its
    ``SeatingUnavailable`` once the release was answered, or one timeout later at the
    most. So a buyer who tries again through the same process is never refused by their
    own lost hold: their retry travels behind its release (seen while a killed worker's
    partitions moved: the retries met holds the killed worker had granted and answered
    409 until the holds' TTL).

One module, over 500 lines: the sending and the answering side speak one wire format
and batching rule; a reader checks one against the other here.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
from collections.abc import Mapping
from typing import Any, ClassVar, Final, Generic, TypeVar

import msgspec
import nats.errors
import structlog
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from openticket.adapters import tracing
from openticket.adapters.nats.streams import SEAT_LOCK_REQUEST, subject_name
from openticket.application.correlation import correlation_id
from openticket.application.errors import ApplicationError, NotFound, SeatingUnavailable
from openticket.application.ports.errors import AdapterUnavailable, PortError
from openticket.application.ports.lifecycle import stop_task
from openticket.application.seating.actor import PartitionActor
from openticket.application.seating.commands import (
    AnySeatCommand,
    HoldSeats,
    R,
    ReleaseSeats,
    SeatCommand,
)
from openticket.application.seating.router import PartitionRouter
from openticket.application.seating.service import SeatingService
from openticket.domain.seating import (
    HoldExpired,
    NotHolder,
    SeatsSpanAreas,
    SeatsUnavailable,
    StaleFencingToken,
    TooManySeats,
)
from openticket.domain.shared import DomainError, SeatId, ValidationError
from openticket.domain.venue import UnknownSeats

_log = structlog.get_logger("openticket.nats.command_path")

DEFAULT_TIMEOUT: Final = 2.0
"""Seconds a caller waits for the owner's answer before ``SeatingUnavailable``."""

COMPENSATION_PATIENCE: Final = 10
"""The release of a timed-out hold is tried for this many timeouts."""

RELEASE_RETRY_SECONDS: Final = 0.2
"""How often an owed release is sent on its own while nobody serves its partition."""

NO_OWNER_RETRY_SECONDS: Final = 0.1
"""How soon a message nobody received ("no responders") is sent again, within its timeout."""

DEFAULT_MAX_PENDING: Final = 10_000
"""Undecided commands per partition beyond which a host refuses more (load shedding)."""

MAX_COMMANDS_PER_MESSAGE: Final = 512
"""Commands of one tick for one partition beyond this go in further messages (each
stays far below NATS's default 1 MB payload: a command is about 300 bytes)."""

QUEUE_GROUP: Final = "partition-owners"
"""Queue group of the hosts (under the prefix): one owner answers each request."""

T = TypeVar("T")


# --- the wire ---------------------------------------------------------------------------------


class CommandBatch(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One request: the commands for one partition, and their request ids if any."""

    commands: list[AnySeatCommand]
    correlation_ids: list[str | None] | None = None
    traceparents: list[str | None] | None = None


class Reply(msgspec.Struct, Generic[T], frozen=True, kw_only=True, omit_defaults=True):
    """``{"ok": result}`` or ``{"error": code, "message": …, "seat_ids": […], "kind": …}``."""

    ok: T | None = None
    error: str | None = None
    message: str = ""
    seat_ids: tuple[str, ...] | None = None
    kind: str | None = None


class RawReply(msgspec.Struct, frozen=True, kw_only=True):
    """A ``Reply`` as read off the wire: its result still undecoded (empty: none)."""

    ok: msgspec.Raw = msgspec.Raw()
    error: str | None = None
    message: str = ""
    seat_ids: tuple[str, ...] | None = None
    kind: str | None = None


NO_RESPONDERS_STATUS: Final = "503"
"""The status of the server's answer when nobody subscribes to a request's subject."""

_encoder: Final = msgspec.json.Encoder()
_batch_decoder: Final = msgspec.json.Decoder(CommandBatch)
_replies_decoder: Final = msgspec.json.Decoder(list[RawReply] | RawReply)


@functools.cache
def _result_decoder(reply_type: Any) -> msgspec.json.Decoder[Any]:
    """A decoder of one command's result (one per reply type)."""
    return msgspec.json.Decoder(reply_type)


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


def error_reply(error: BaseException) -> Reply[Any]:
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
    return Reply(
        error=code,
        message=message,
        seat_ids=tuple(seat_ids) if isinstance(seat_ids, tuple | list) else None,
        kind=_kind(error),
    )


def encode_error(error: BaseException) -> bytes:
    """The body of an error reply to a whole message: every command in it gets ``error``."""
    return _encoder.encode(error_reply(error))


def rebuild_error(reply: Reply[Any] | RawReply) -> Exception:
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
    return rebuild_error(msgspec.json.decode(data, type=RawReply))


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

_Asked = tuple[SeatCommand[Any], "asyncio.Future[Any]", str | None, str | None]
"""A command, its caller's answer, its request id and its ``traceparent`` (if traced)."""
"""A command waiting for its partition's message: the command, its reply, its request id."""


class RemoteSeating:
    """The ``Seating`` port over NATS: each command goes to its partition's owner.

    ``client`` is a NATS client (connected by its owner before the first command);
    ``router`` must have the same number of partitions as every worker's; ``prefix`` is
    the deployment's (as for the event streams). Each message waits at most
    ``timeout`` seconds for its answer.

    The commands asked within one turn of the event loop are sent at the end of it, one
    message per partition (see the module docstring). The hosts expire their own holds
    in their sweep, so :meth:`expire_due` does nothing here, and events are published by
    the owners, so :meth:`flush_events` has nothing to wait for. :attr:`actors` is
    empty: no actor runs in this process.
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
        self.messages = 0
        """Requests sent (each carries the commands of one partition and tick)."""
        self._client = client
        self._subjects = tuple(
            subject_name(f"{SEAT_LOCK_REQUEST}.{n}", prefix) for n in range(router.partitions)
        )
        self._asked: dict[int, list[_Asked]] = {}
        self._wake = asyncio.Event()
        self._sender: asyncio.Task[None] | None = None
        self._inbox = ""
        self._tokens = itertools.count()
        self._awaited: dict[str, _Sent] = {}
        """Messages sent and not answered yet, by the token of their reply subject."""
        self._compensations: set[asyncio.Task[None]] = set()
        self._owed: dict[int, list[_Asked]] = {}
        """Releases of timed-out holds, by partition: sent first in its next message."""
        self._stopping = False
        self._resending: set[asyncio.Task[None]] = set()
        self.resent = 0
        """Messages sent again because nobody served their partition at that moment."""

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Nothing to start: the client is connected by its owner, the sender starts itself."""

    async def stop(self) -> None:
        """Wait for the answers and the releases of timed-out holds still under way."""
        answers = [f for w in self._asked.values() for _, f, *_ in w]
        answers += [f for sent in self._awaited.values() for _, f, *_ in sent.waiting]
        if answers:  # each is answered within the timeout, if only by its expiry
            await asyncio.wait(answers, timeout=self.timeout * 2)
        pending = set(self._compensations)
        if pending:  # a stopping process does not wait out a partition nobody serves
            _, late = await asyncio.wait(pending, timeout=self.timeout * 2)
            for task in late:
                task.cancel()
        self._stopping = True
        sender, self._sender = self._sender, None
        await stop_task(sender)
        for token in list(self._awaited):
            self._no_answer(token, self.timeout)

    def ready(self) -> bool:
        """Whether commands can be sent now (the client is connected)."""
        return bool(self._client.is_connected)

    async def flush_events(self) -> None:
        """Nothing to flush: the partitions' owners publish their events."""

    async def expire_due(self) -> None:
        """Nothing to do: each owner expires the holds of its partitions in its own sweep."""

    # --- commands -------------------------------------------------------------------------

    def ask(self, command: SeatCommand[R]) -> asyncio.Future[R]:
        """Send ``command`` to its partition's owner with the others of this tick.

        The future resolves to the owner's reply or raises its error again; it raises
        ``SeatingUnavailable`` when no owner answers in time.
        """
        reply: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        partition = self.router.partition_of(command.session_id, command.area_id)
        traced = self._trace(command, partition, reply) if tracing.enabled() else None
        self._queue(partition).append((command, reply, correlation_id.get(), traced))
        return reply

    def _trace(
        self, command: SeatCommand[Any], partition: int, reply: asyncio.Future[Any]
    ) -> str | None:
        """A client span of ``command`` until ``reply`` settles; its ``traceparent``."""
        span = tracing.start(
            f"seat {command.__struct_config__.tag}",
            tracing.SpanKind.CLIENT,
            attributes={
                "messaging.system": "nats",
                "messaging.destination.name": self._subjects[partition],
                "openticket.partition": partition,
                "openticket.session_id": str(command.session_id),
            },
        )
        reply.add_done_callback(functools.partial(_end_span, span))
        return tracing.traceparent_of(span)

    def _queue(self, partition: int) -> list[_Asked]:
        """What goes to ``partition`` at the end of this tick (the sender woken for it)."""
        asked = self._asked
        if not asked:
            self._wake.set()
            if self._sender is None:
                self._sender = asyncio.get_running_loop().create_task(
                    self._send_asked(), name="seat-command-sender"
                )
        waiting = asked.get(partition)
        if waiting is None:
            waiting = asked[partition] = []
        return waiting

    async def _send_asked(self) -> None:
        """The sender: after each tick, one message per partition of what was asked."""
        client = self._client
        inbox = client.new_inbox()
        try:
            await client.subscribe(f"{inbox}.*", cb=self._on_reply)
        except (nats.errors.Error, OSError) as e:  # asked again later, it tries again
            self._sender = None
            asked, self._asked = self._asked, {}
            error = SeatingUnavailable(f"cannot take answers: {e!r}")
            for waiting in asked.values():
                self._answer(waiting, error)
            return
        self._inbox = inbox
        while True:
            await self._wake.wait()
            self._wake.clear()
            asked, self._asked = self._asked, {}
            for partition, queued in asked.items():
                owed = self._owed.pop(partition, None)
                # releases of lost holds first: a retry of the hold comes after them
                waiting = owed + queued if owed else queued
                if not waiting:
                    continue
                subject = self._subjects[partition]
                for start in range(0, len(waiting), MAX_COMMANDS_PER_MESSAGE):
                    chunk = waiting[start : start + MAX_COMMANDS_PER_MESSAGE]
                    await self._send(subject, chunk, self.timeout)

    async def _send(self, subject: str, waiting: list[_Asked], patience: float) -> None:
        """One message of ``waiting``'s commands; they are answered within ``patience`` s."""
        token = str(next(self._tokens))
        loop = asyncio.get_running_loop()
        timer = loop.call_later(patience, self._no_answer, token, patience)
        self._awaited[token] = _Sent(subject, waiting, timer, loop.time() + patience)
        self.messages += 1
        try:
            await self._client.publish(
                subject, _encoder.encode(_batch(waiting)), reply=f"{self._inbox}.{token}"
            )
        except (nats.errors.Error, OSError) as e:
            self._fail(token, SeatingUnavailable(f"cannot send to {subject}: {e!r}"))

    async def _on_reply(self, msg: Msg) -> None:
        token = msg.subject[len(self._inbox) + 1 :]
        sent = self._awaited.pop(token, None)
        if sent is None:
            return  # answered after its timeout: its commands were answered already
        sent.timer.cancel()
        if msg.headers and msg.headers.get("Status") == NO_RESPONDERS_STATUS:
            self._nobody_received(sent)
            return
        try:
            results = self._results(sent.subject, msg.data, len(sent.waiting))
        except SeatingUnavailable as e:
            self._answer(sent.waiting, e)
            return
        for (command, future, *_), result in zip(sent.waiting, results, strict=True):
            if future.done():
                continue
            if isinstance(result, Exception):
                future.set_exception(result)
                continue
            try:
                future.set_result(self._result(command, sent.subject, result))
            except Exception as e:  # an error reply, or an unreadable result
                future.set_exception(e)

    def _nobody_received(self, sent: _Sent) -> None:
        """Nobody serves the partition now: send the message again soon, while time is left.

        Nobody received it, so sending it again decides nothing twice. A partition has no
        subscriber only while it moves (a worker stopped, or started and took back its
        preferred partitions; the next owner subscribes within a heartbeat), so a buyer
        waits out the move instead of getting a 503; with no worker at all, the command
        fails at its timeout.
        """
        loop = asyncio.get_running_loop()
        if self._stopping or sent.deadline - loop.time() <= NO_OWNER_RETRY_SECONDS:
            self._answer(sent.waiting, SeatingUnavailable(f"no worker serves {sent.subject}"))
            return
        loop.call_later(NO_OWNER_RETRY_SECONDS, self._send_again, sent)

    def _send_again(self, sent: _Sent) -> None:
        waiting = [asked for asked in sent.waiting if not asked[1].done()]
        if not waiting:
            return
        self.resent += 1
        patience = sent.deadline - asyncio.get_running_loop().time()
        task = asyncio.get_running_loop().create_task(self._send(sent.subject, waiting, patience))
        self._resending.add(task)
        task.add_done_callback(self._resending.discard)

    def _no_answer(self, token: str, timeout: float) -> None:
        """A message's answer did not come in time: its commands may still be decided.

        Its holds are released first; each hold's caller hears of the failure after.
        """
        sent = self._awaited.pop(token, None)
        if sent is None:
            return
        sent.timer.cancel()
        error = f"no answer on {sent.subject} within {timeout:g} s"
        for command, future, correlation, _ in sent.waiting:
            if future.done():
                continue
            if isinstance(command, HoldSeats):
                self._release_later(command, correlation, future, error)
            else:
                future.set_exception(SeatingUnavailable(error))

    def _fail(self, token: str, error: SeatingUnavailable) -> None:
        sent = self._awaited.pop(token, None)
        if sent is not None:
            sent.timer.cancel()
            self._answer(sent.waiting, error)

    @staticmethod
    def _answer(waiting: list[_Asked], error: SeatingUnavailable) -> None:
        """Every command of ``waiting`` raises ``error`` (each its own copy)."""
        for _, future, *_ in waiting:
            if not future.done():
                future.set_exception(SeatingUnavailable(str(error)))

    @staticmethod
    def _results(subject: str, data: bytes, count: int) -> list[RawReply | Exception]:
        """One reply per command, or the error every one of them gets."""
        try:
            replies = _replies_decoder.decode(data)
        except msgspec.DecodeError as e:
            raise SeatingUnavailable(f"unreadable reply on {subject}: {e}") from e
        if isinstance(replies, RawReply):  # one answer for the whole message
            if replies.error is None:
                raise SeatingUnavailable(f"reply on {subject} answers no command")
            return [rebuild_error(replies) for _ in range(count)]
        if len(replies) != count:
            raise SeatingUnavailable(
                f"reply on {subject} answers {len(replies)} commands, not {count}"
            )
        return list(replies)

    @staticmethod
    def _result(command: SeatCommand[Any], subject: str, reply: RawReply) -> Any:
        if reply.error is not None:
            raise rebuild_error(reply)
        if not reply.ok:
            raise SeatingUnavailable(f"reply on {subject} has neither a result nor an error")
        try:
            return _result_decoder(command.reply_type).decode(reply.ok)
        except (msgspec.DecodeError, msgspec.ValidationError) as e:
            raise SeatingUnavailable(f"unreadable result on {subject}: {e}") from e

    # --- a hold whose answer never came ----------------------------------------------------

    def _release_later(
        self,
        hold: HoldSeats,
        correlation: str | None,
        answer: asyncio.Future[Any],
        error: str,
    ) -> None:
        """Release ``hold``, then fail ``answer`` (its caller's) with ``error``."""
        release = ReleaseSeats(
            session_id=hold.session_id, area_id=hold.area_id, hold_id=hold.hold_id
        )
        task = asyncio.get_running_loop().create_task(
            self._release_timed_out(release, correlation, answer, error)
        )
        self._compensations.add(task)
        task.add_done_callback(self._compensations.discard)

    async def _release_timed_out(
        self,
        release: ReleaseSeats,
        correlation: str | None,
        answer: asyncio.Future[Any],
        error: str,
    ) -> None:
        """Owe the release until its partition answers it; its hold's caller waits a while.

        The caller waits one timeout at the most: a partition that nobody serves must not
        keep buyers waiting the release's whole patience.
        """
        loop = asyncio.get_running_loop()
        partition = self.router.partition_of(release.session_id, release.area_id)
        give_up = loop.call_later(self.timeout, _fail_once, answer, error)
        deadline = loop.time() + self.timeout * COMPENSATION_PATIENCE
        kick_after = 0.0
        try:
            while True:
                released: asyncio.Future[Any] = loop.create_future()
                self._owe(partition, (release, released, correlation, None), kick_after)
                try:
                    await released
                except SeatingUnavailable:
                    if loop.time() >= deadline:
                        raise
                    kick_after = RELEASE_RETRY_SECONDS  # owed at once, sent alone later
                    continue
                break
        except (NotHolder, HoldExpired):
            pass  # the hold was refused (or is gone): nothing held
        except Exception as e:  # best effort: the hold ends at its TTL anyway
            _log.warning("timed_out_hold_not_released", hold_id=str(release.hold_id), error=str(e))
        else:
            _log.info("timed_out_hold_released", hold_id=str(release.hold_id))
        finally:
            give_up.cancel()
            _fail_once(answer, error)

    def _owe(self, partition: int, asked: _Asked, kick_after: float) -> None:
        """``asked`` goes first in ``partition``'s next message; alone after ``kick_after``."""
        self._owed.setdefault(partition, []).append(asked)
        if kick_after > 0:
            asyncio.get_running_loop().call_later(kick_after, self._kick, partition)
        else:
            self._kick(partition)

    def _kick(self, partition: int) -> None:
        """Send what is owed to ``partition`` at the end of this tick, if anything still is."""
        if self._owed.get(partition) and not self._stopping:
            self._queue(partition)


def _fail_once(answer: asyncio.Future[Any], error: str) -> None:
    """``answer`` raises ``SeatingUnavailable(error)``, unless it is settled already."""
    if not answer.done():
        answer.set_exception(SeatingUnavailable(error))


class _Sent:
    """A message sent and not answered yet (by the event loop's clock, ``deadline``)."""

    __slots__ = ("deadline", "subject", "timer", "waiting")

    def __init__(
        self, subject: str, waiting: list[_Asked], timer: asyncio.TimerHandle, deadline: float
    ) -> None:
        self.subject = subject
        self.waiting = waiting
        self.timer = timer
        self.deadline = deadline


def _batch(waiting: list[_Asked]) -> CommandBatch:
    correlations = [correlation for _, _, correlation, _ in waiting]
    traced = [traceparent for *_, traceparent in waiting]
    return CommandBatch(
        commands=[command for command, *_ in waiting],  # type: ignore[misc]  # the union
        correlation_ids=correlations if any(correlations) else None,
        traceparents=traced if any(traced) else None,
    )


def _end_span(span: tracing.Span, settled: asyncio.Future[Any]) -> None:
    """End a command's span as its answer settles (an error recorded as its status)."""
    error = (
        SeatingUnavailable("the command was cancelled")
        if settled.cancelled()
        else settled.exception()
    )
    tracing.end_with(span, error)


# --- the answering side -----------------------------------------------------------------------


def _failed(error: Exception) -> asyncio.Future[Any]:
    """A reply future that already raises ``error``."""
    failed: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    failed.set_exception(error)
    return failed


class _Answer:
    """The reply to one message, sent when the last of its commands is decided."""

    __slots__ = ("futures", "inflight", "left", "reply_to")

    def __init__(
        self, reply_to: str, futures: list[asyncio.Future[Any]], inflight: set[asyncio.Future[Any]]
    ) -> None:
        self.reply_to = reply_to
        self.futures = futures
        self.inflight = inflight
        self.left = len(futures)


class PartitionHost:
    """Answers the seat commands of some partitions from a local ``SeatingService``.

    :meth:`serve` subscribes a partition's subject in the queue group of the owners
    (``<prefix>.partition-owners``), so that while two owners overlap (a handover) each
    request is still answered once; :meth:`release` drains the subscription and waits
    until the commands it took are decided.

    The subscription callback only decodes a message and puts its commands into the
    actor's mailbox; the reply is sent when the last of them is decided, by one task
    that sends every reply due. So a slow command never holds up the messages behind
    it, and the actor decides in batches what arrives meanwhile.

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
        """Replies sent (one per message: results and errors), for metrics and tests."""
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
            batch = _batch_decoder.decode(msg.data)
        except (msgspec.DecodeError, msgspec.ValidationError) as e:
            self._send(reply_to, encode_error(ValueError(f"malformed seat command: {e}")))
            return
        commands = batch.commands
        correlations = batch.correlation_ids
        traced = batch.traceparents
        if (correlations is not None and len(correlations) != len(commands)) or (
            traced is not None and len(traced) != len(commands)
        ):
            self._send(
                reply_to, encode_error(ValueError("malformed seat command: one id per command"))
            )
            return
        inflight = self._inflight.setdefault(partition, set())
        room = self.max_pending - len(inflight)
        busy = f"partition {partition} has {len(inflight)} commands undecided; try again"
        if room <= 0:
            self._send(reply_to, encode_error(SeatingUnavailable(busy)))
            return
        futures = [
            self._submit(
                partition,
                command,
                None if correlations is None else correlations[n],
                None if traced is None else traced[n],
            )
            if n < room
            else _failed(SeatingUnavailable(busy))  # the first ones fit; the rest: later
            for n, command in enumerate(commands)
        ]
        answer = _Answer(reply_to, futures, inflight)
        decided = functools.partial(self._on_decided, answer)
        for future in futures:
            inflight.add(future)
            future.add_done_callback(decided)

    def _submit(
        self,
        partition: int,
        command: SeatCommand[Any],
        correlation: str | None,
        traceparent: str | None,
    ) -> asyncio.Future[Any]:
        """Put the command into its actor's mailbox; its reply future.

        A traced command (``traceparent``) gets a server span, child of its caller's,
        from now until its actor decided it.
        """
        seating = self.seating
        owner = seating.router.partition_of(command.session_id, command.area_id)
        if owner != partition or owner not in seating.actors:
            return _failed(
                SeatingUnavailable(
                    f"this worker routes {command.session_id}:{command.area_id} to "
                    f"partition {owner}, not {partition} (or does not own it)"
                )
            )
        token = correlation_id.set(correlation)
        try:
            decided = seating.ask(command)
        finally:
            correlation_id.reset(token)
        if traceparent is not None and tracing.enabled():
            span = tracing.start(
                f"seat {command.__struct_config__.tag} decide",
                tracing.SpanKind.SERVER,
                parent=tracing.parent_of(traceparent),
                attributes={
                    "messaging.system": "nats",
                    "openticket.partition": partition,
                    "openticket.session_id": str(command.session_id),
                },
            )
            decided.add_done_callback(functools.partial(_end_span, span))
        return decided

    def _on_decided(self, answer: _Answer, future: asyncio.Future[Any]) -> None:
        answer.inflight.discard(future)
        answer.left -= 1
        if answer.left:
            return
        replies: list[Reply[Any]] = []
        for decided in answer.futures:
            if decided.cancelled():
                replies.append(error_reply(SeatingUnavailable("the command was cancelled")))
            elif (error := decided.exception()) is not None:
                replies.append(error_reply(error))
            else:
                replies.append(Reply(ok=decided.result()))
        data = _encoder.encode(replies)
        if len(data) > self._client.max_payload:
            data = encode_error(
                SeatingUnavailable(f"the answer ({len(data)} bytes) exceeds the NATS payload")
            )
        self._send(answer.reply_to, data)

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
