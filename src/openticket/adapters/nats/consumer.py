"""Durable JetStream pull consumers that run one event handler each, at least once.

An :class:`EventConsumer` reads the events of one stream through a durable **pull**
consumer and hands each to ``handle`` (an ``async def handler(event) -> None``, e.g. a
saga step). The durable is what survives the process: its acknowledgements are the
consumer's progress, so a restarted process (or another one sharing the durable)
continues where the last one stopped.

The durable
    :meth:`EventConsumer.start` creates it, or updates it when it exists with other
    settings (safe at every start, and when several processes start at once):
    ``AckPolicy.EXPLICIT``, ``DeliverPolicy.ALL`` (a new durable reads the stream from
    its first message), ``max_deliver``, ``ack_wait`` and the subject filter. NATS 2.9
    takes an update of those (not of the deliver policy). Give every handler a durable
    of its own (its name, say): a durable's position is one handler's progress, and a
    failure of one handler must not replay the event into the others.

Subjects
    NATS 2.9 takes one ``filter_subject`` per consumer. One subject is the filter as it
    is. For several, the filter is their longest common prefix of literal tokens plus
    ``>`` (``x.order.created.*`` and ``x.order.failed.*`` → ``x.order.>``; none in
    common: the whole stream), and the consumer acknowledges without handling what
    matches none of them (counted in :attr:`EventConsumer.skipped`). One consumer per
    subject would be cheaper on the wire but would lose the order *between* the
    subjects (a session's ``seat.locked`` before its ``seat.released``), which is what
    the seat cache and the saga need.

One message after the other
    A fetch asks for up to ``batch`` messages; they are handled one at a time, in the
    order JetStream delivered them, so events of one key are seen in stream order.
    Concurrency comes from running several consumers (roles, or processes sharing a
    durable: JetStream gives each message to one of them). While a batch is being
    worked on, its messages (the one being handled and those waiting their turn) are
    kept in progress (``+WPI`` every third of ``ack_wait``), so that a slow handler does
    not let JetStream hand the rest of the batch to another process out of order. A
    handler that never returns therefore holds its message until ``stop`` gives up.

For each message
    0. With ``settled_by`` (a role's name) among the names in ``Openticket-Settled-By``:
       the process that committed the event ran this role's step on it already, so it
       is acknowledged unhandled (counted in :attr:`EventConsumer.settled_elsewhere`).
    1. A subject none of ``subjects`` matches: acknowledged, skipped.

    Messages of 0 and 1 are acknowledged without waiting for the server to confirm it
    (a plain ``ack``): nothing was done for them, so an acknowledgement lost on the way
    only brings the message back, to be acknowledged unread again. That saves a round
    trip per purchase in the workers (``docs/performance.md``).
    2. The envelope is decoded (:func:`~openticket.adapters.nats.envelope.decode`). A body
       that is no envelope (``MalformedEnvelope``) can never succeed: it is **parked** at
       once. An event type this release does not know (``UnknownEventType``) is most
       likely a newer release's, during a rolling upgrade: a consumer of that release
       sharing the durable can handle it, so it is ``nak``-ed with the long
       ``unknown_type_delay`` (counted in :attr:`EventConsumer.deferred`) and parked
       only once it has been delivered ``max_deliver`` times.
    3. ``handle(event)`` runs with :data:`~openticket.application.correlation.correlation_id`
       set to the envelope's correlation id.
    4. It returned: the message is **acknowledged** (and the acknowledgement confirmed by
       the server). Handlers commit their unit of work before they return, so a crash
       between the commit and the ack redelivers an event that was handled: handlers
       must skip it by its event id (``uow.processed_events``), which makes the
       redelivery a no-op.
    5. It raised a transient error (``AdapterUnavailable``, ``ConcurrencyError``,
       ``TimeoutError``; see :data:`TRANSIENT`): ``nak(delay)`` with
       ``backoff[deliveries - 1]`` (the last entry once past the end), so it comes back
       later; on its ``max_deliver``-th delivery it is parked instead.
    6. It raised anything else: a bug or an event the handler refuses, which a retry
       would not change. It is **terminated and parked at once** (no retries).

    A retried message comes back after the ones delivered behind it: per-key order
    holds for messages handled the first time, not across retries (a consumer that
    needs strict order can set ``max_ack_pending=1``, at the cost of throughput).

Parking
    A parked message is terminated (``term``, never redelivered) after a copy went to
    the ``PARKED`` stream of the deployment (``<PREFIX>_PARKED``, subjects
    ``<prefix>.parked.>``, :func:`ensure_parking`) under ``<prefix>.parked.<durable>``,
    with the original body and the headers of :data:`PARKED_HEADERS` (durable, subject,
    stream and sequence, reason, error, deliveries), and ``event_parked`` is logged as an
    error. That stream is where an operator finds poison messages and replays them (the
    original also stays in its stream until its ``max_age``). When the copy cannot be
    stored the message is not terminated: it is ``nak``-ed for another try (or, on its
    last delivery, left to JetStream and logged as ``event_park_failed`` with its
    stream sequence).

Stopping
    :meth:`EventConsumer.stop` lets the handler that is running finish and settle its
    message; the rest of the batch is ``nak``-ed without delay, unhandled, for the next
    consumer to take at once. A fetch under way is waited for (at most
    ``fetch_timeout``): messages it brings are released the same way, not lost until
    ``ack_wait``. With ``stop_grace`` set, a handler still running after it is
    cancelled; its message is not acknowledged and comes back after ``ack_wait``.

Settled messages that come back
    nats-server before 2.10.14 may deliver a message again, with a delivery count of 1,
    after it was acknowledged: when a redelivery (a ``nak`` whose delay ran out, an
    expired ``ack_wait``) meets a pull request that has just expired, the server
    rewinds its position by one (nats-server #5305, #5338; seen here on 2.9.10, where
    the due redelivery then waits for ``ack_wait``). A consumer therefore remembers
    the last 10,000 messages it acknowledged (confirmed by the server) or parked, by
    stream sequence and ``Nats-Msg-Id``, and settles such a repeat the same way
    again without running the handler (counted in :attr:`EventConsumer.duplicates`).
    Repeats that reach another process are skipped by the handler's dedupe.

Failures of the server are logged: a failed fetch is tried again with a short backoff
until ``stop``; when an ack, nak or term cannot be sent the rest of the batch is left
unhandled (the connection is gone; it all comes back after ``ack_wait``), and a message
whose ack did not reach the server is redelivered and skipped by the handler's dedupe.
A durable deleted while the consumer runs is not created again behind the operator's
back (it would replay the stream from its start).

One module, over 500 lines: fetching, judging, settling and parking are the steps of
one at-least-once delivery loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import timedelta
from enum import StrEnum
from typing import Final, NamedTuple, cast

import nats.errors
import structlog
from nats.aio.msg import Msg
from nats.js import JetStreamContext, JetStreamManager
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    ConsumerInfo,
    DeliverPolicy,
    RawStreamMsg,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)

from openticket.adapters import tracing
from openticket.adapters.nats.envelope import (
    MSG_ID_HEADER,
    SETTLED_BY_HEADER,
    MalformedEnvelope,
    decode,
)
from openticket.adapters.nats.errors import UNREACHABLE
from openticket.adapters.nats.streams import (
    DEFAULT_DUPLICATE_WINDOW,
    existing_or_created,
    stream_name,
    subject_name,
)
from openticket.adapters.serialization import EventCodec, UnknownEventType
from openticket.application.correlation import correlation_id
from openticket.application.ports.errors import AdapterUnavailable, ConcurrencyError
from openticket.application.ports.lifecycle import stop_task
from openticket.domain.shared import DomainEvent

_log = structlog.get_logger("openticket.nats.consumer")

Handle = Callable[[DomainEvent], Awaitable[None]]
"""What a consumer runs for each event; it commits its unit of work before returning."""

TRANSIENT: Final[tuple[type[BaseException], ...]] = (
    AdapterUnavailable,
    ConcurrencyError,
    TimeoutError,  # asyncio.TimeoutError, and nats.errors.TimeoutError
)
"""Handler errors that a later try may not meet: ``nak`` with backoff, park at the end."""

PARKED: Final = "PARKED"
"""The parking stream's name without prefix."""

PARKED_LEAF: Final = "parked"
"""The parking subjects' first token without prefix: ``parked.<durable>``."""

PARKED_DURABLE: Final = "Parked-Durable"
"""Header: the durable consumer that parked the message."""
PARKED_SUBJECT: Final = "Parked-Subject"
"""Header: the subject the message was published to."""
PARKED_STREAM: Final = "Parked-Stream"
"""Header: the stream the original message is stored in."""
PARKED_SEQUENCE: Final = "Parked-Sequence"
"""Header: the original message's sequence in that stream."""
PARKED_REASON: Final = "Parked-Reason"
"""Header: why it was parked, a :class:`ParkReason` value."""
PARKED_ERROR: Final = "Parked-Error"
"""Header: the error, ``<exception type>: <message>`` (one line, at most 1,000 characters)."""
PARKED_DELIVERIES: Final = "Parked-Deliveries"
"""Header: how many times JetStream had delivered it to the durable."""
PARKED_MSG_ID: Final = "Parked-Msg-Id"
"""Header: the original ``Nats-Msg-Id`` (the event id), when it had one."""

PARKED_HEADERS: Final = (
    PARKED_DURABLE,
    PARKED_SUBJECT,
    PARKED_STREAM,
    PARKED_SEQUENCE,
    PARKED_REASON,
    PARKED_ERROR,
    PARKED_DELIVERIES,
    PARKED_MSG_ID,
)
"""Every header a parked copy may carry besides the original's own."""

_MAX_ERROR: Final = 1000
_REMEMBERED: Final = 10_000
"""How many settled messages a consumer remembers (see "Settled messages that come back")."""
_NAME = re.compile(r"[A-Za-z0-9_-]+")


_SERVER_ERRORS: Final = (nats.errors.Error, OSError)
"""Anything the client raises for a request, a publish or an acknowledgement."""


class ParkReason(StrEnum):
    """Why a message was parked (the :data:`PARKED_REASON` header)."""

    MALFORMED = "malformed"
    """The body is not an event envelope."""
    FAILED = "handler_failed"
    """The handler raised an error that is not transient."""
    EXHAUSTED = "max_deliver"
    """Its last delivery failed with a transient error."""
    UNKNOWN_TYPE = "unknown_type"
    """No consumer sharing the durable knew its event type in ``max_deliver`` deliveries."""


# --- parking ------------------------------------------------------------------------------------


def parked_stream(prefix: str = "") -> str:
    """The name of the parking stream of the deployment ``prefix``."""
    return stream_name(PARKED, prefix)


def parked_subject(durable: str, prefix: str = "") -> str:
    """The subject under which ``durable`` parks its messages."""
    return subject_name(f"{PARKED_LEAF}.{durable}", prefix)


async def ensure_parking(
    js: JetStreamManager,
    prefix: str = "",
    *,
    max_age: timedelta = timedelta(days=30),
    replicas: int = 1,
) -> None:
    """Create the parking stream of ``prefix`` if it is missing; safe to call often.

    A stream that exists keeps its settings (an operator may have changed its limits);
    only the subject ``<prefix>.parked.>`` is added if it lacks it. Raises
    ``AdapterUnavailable`` when the server or its JetStream cannot be reached.
    """
    name = parked_stream(prefix)
    subject = subject_name(f"{PARKED_LEAF}.>", prefix)
    wanted = StreamConfig(
        name=name,
        description="OpenTicket poison messages, parked by the consumers that gave up on them",
        subjects=[subject],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        num_replicas=replicas,
        max_age=max_age.total_seconds(),
        duplicate_window=DEFAULT_DUPLICATE_WINDOW.total_seconds(),
    )
    try:
        current = await existing_or_created(js, wanted)
        if current is not None and subject not in (current.subjects or ()):
            await js.update_stream(current.evolve(subjects=[*(current.subjects or ()), subject]))
    except UNREACHABLE as e:
        raise AdapterUnavailable(f"cannot set up the JetStream stream {name}: {e!r}") from e


def _one_line(text: str) -> str:
    """A header value: one line, bounded."""
    flat = " ".join(text.split())
    return flat if len(flat) <= _MAX_ERROR else flat[: _MAX_ERROR - 1] + "…"


def describe(error: BaseException) -> str:
    """``<exception type>: <message>``, as the :data:`PARKED_ERROR` header carries it."""
    return _one_line(f"{type(error).__name__}: {error}")


class Parking:
    """Where consumers put the messages they give up on: the parking stream of ``prefix``.

    The stream must exist (:func:`ensure_parking`, or :meth:`ensure`). ``timeout`` is the
    seconds to wait for the stream's acknowledgement of a parked copy.
    """

    def __init__(self, js: JetStreamContext, *, prefix: str = "", timeout: float = 5.0) -> None:
        if timeout <= 0:
            raise ValueError("the acknowledgement timeout must be positive")
        self._js = js
        self._prefix = prefix
        self._stream = parked_stream(prefix)  # refuses a bad prefix
        self._timeout = timeout

    @property
    def stream(self) -> str:
        """The name of the parking stream."""
        return self._stream

    @property
    def prefix(self) -> str:
        """The deployment prefix of the stream and its subjects."""
        return self._prefix

    async def ensure(self) -> None:
        """Create the parking stream if it is missing (:func:`ensure_parking`)."""
        await ensure_parking(self._js, self._prefix)

    async def park(
        self,
        msg: Msg,
        *,
        durable: str,
        reason: ParkReason,
        error: str,
        event: DomainEvent | None = None,
    ) -> None:
        """Store a copy of ``msg`` in the parking stream and log ``event_parked``.

        The copy's ``Nats-Msg-Id`` is ``<durable>:<stream>:<sequence>``, so parking the
        same delivery twice (the ``term`` after it was lost) stores it once. Raises
        ``AdapterUnavailable`` when the stream does not acknowledge the copy.
        """
        meta = msg.metadata
        await self._store(
            stream=meta.stream,
            sequence=meta.sequence.stream,
            subject=msg.subject,
            data=msg.data,
            original_headers=msg.headers,
            deliveries=meta.num_delivered,
            durable=durable,
            reason=reason,
            error=error,
            event=event,
        )

    async def park_stored(
        self,
        stored: RawStreamMsg,
        *,
        stream: str,
        durable: str,
        deliveries: int,
        reason: ParkReason,
        error: str,
    ) -> None:
        """Park a message read from its stream (``js.get_msg``) rather than delivered.

        For a message JetStream stopped delivering without an answer; the same copy,
        ``Nats-Msg-Id`` and log line as :meth:`park`.
        """
        if stored.seq is None or stored.subject is None:
            raise ValueError("a stored message has a sequence and a subject")
        await self._store(
            stream=stream,
            sequence=stored.seq,
            subject=stored.subject,
            data=stored.data or b"",
            original_headers=stored.headers,
            deliveries=deliveries,
            durable=durable,
            reason=reason,
            error=error,
            event=None,
        )

    async def _store(
        self,
        *,
        stream: str,
        sequence: int,
        subject: str,
        data: bytes,
        original_headers: Mapping[str, str] | None,
        deliveries: int,
        durable: str,
        reason: ParkReason,
        error: str,
        event: DomainEvent | None,
    ) -> None:
        headers = {
            key: value
            for key, value in (original_headers or {}).items()
            if not key.startswith("Nats-") and key not in PARKED_HEADERS
        }
        headers |= {
            MSG_ID_HEADER: f"{durable}:{stream}:{sequence}",
            PARKED_DURABLE: durable,
            PARKED_SUBJECT: subject,
            PARKED_STREAM: stream,
            PARKED_SEQUENCE: str(sequence),
            PARKED_REASON: reason.value,
            PARKED_ERROR: _one_line(error),
            PARKED_DELIVERIES: str(deliveries),
        }
        original_id = (original_headers or {}).get(MSG_ID_HEADER)
        if original_id:
            headers[PARKED_MSG_ID] = original_id
        parked_to = parked_subject(durable, self._prefix)
        try:
            await self._js.publish(
                parked_to, data, timeout=self._timeout, stream=self._stream, headers=headers
            )
        except _SERVER_ERRORS as e:
            raise AdapterUnavailable(
                f"the parking stream {self._stream} did not store message {sequence}"
                f" of {stream}: {e!r}"
            ) from e
        _log.error(
            "event_parked",
            durable=durable,
            stream=stream,
            stream_seq=sequence,
            subject=subject,
            reason=reason.value,
            error=headers[PARKED_ERROR],
            deliveries=deliveries,
            event_id=str(event.event_id) if event is not None else original_id,
            event_type=event.event_type if event is not None else None,
            parked_to=parked_to,
        )


# --- subjects -------------------------------------------------------------------------------------


def _check_subject(subject: str) -> str:
    tokens = subject.split(".")
    if (
        not subject
        or any(not token or token.strip() != token or " " in token for token in tokens)
        or ">" in tokens[:-1]
    ):
        raise ValueError(f"not a subject filter: {subject!r}")
    return subject


def matches(pattern: str, subject: str) -> bool:
    """Whether ``subject`` matches the NATS subject filter ``pattern`` (``*``, ``>``)."""
    wanted = pattern.split(".")
    tokens = subject.split(".")
    for i, part in enumerate(wanted):
        if part == ">":
            return len(tokens) > i
        if i >= len(tokens) or part not in ("*", tokens[i]):
            return False
    return len(tokens) == len(wanted)


def server_filter(subjects: Sequence[str]) -> str | None:
    """The one ``filter_subject`` that covers ``subjects`` (``None``: the whole stream).

    One subject is its own filter; several share their longest common prefix of
    literal tokens, followed by ``>``.
    """
    if len(subjects) == 1:
        return subjects[0]
    split = [subject.split(".") for subject in subjects]
    common: list[str] = []
    for column in zip(*split, strict=False):
        first = column[0]
        if first in ("*", ">") or any(token != first for token in column):
            break
        common.append(first)
    common = common[: min(len(tokens) for tokens in split) - 1]
    return ".".join([*common, ">"]) if common else None


# --- the consumer ---------------------------------------------------------------------------------


class _Verdict(NamedTuple):
    """What to do with a message once its handling is over."""

    action: str
    """``ack``, ``ack_unread`` (not confirmed), ``nak``, ``term`` (no copy) or ``park``."""
    delay: float = 0.0
    reason: ParkReason | None = None
    error: str = ""
    event: DomainEvent | None = None


_ACK: Final = _Verdict("ack")
_ACK_UNREAD: Final = _Verdict("ack_unread")
"""For a message left unhandled: a lost acknowledgement just brings it back unread."""


def _check_names(stream: str, durable: str) -> None:
    if not _NAME.fullmatch(durable):
        raise ValueError(f"a durable takes letters, digits, '_' and '-' only, not {durable!r}")
    if not _NAME.fullmatch(stream):
        raise ValueError(f"not a stream name: {stream!r}")


def _check_counts(*, max_deliver: int, batch: int, max_ack_pending: int | None) -> None:
    if max_deliver < 1:
        raise ValueError("max_deliver must be at least 1")
    if batch < 1:
        raise ValueError("a batch takes at least one message")
    if max_ack_pending is not None and max_ack_pending < 1:
        raise ValueError("max_ack_pending must be at least 1")


def _seconds(span: timedelta, what: str) -> float:
    seconds = span.total_seconds()
    if seconds <= 0:
        raise ValueError(f"{what} must be positive")
    return seconds


class EventConsumer:
    """A durable pull consumer of ``stream`` that runs ``handle`` for each event.

    See the module docstring for what happens to a message. ``subjects`` are full
    subjects or filters (prefix included, e.g. ``subject_name("order.created.*", p)``);
    ``park`` is where poison messages go. ``backoff`` is the delay of the n-th retry of
    a transient failure; ``unknown_type_delay`` that of an event type this release
    lacks. ``fetch_timeout`` bounds a fetch (and so how long ``stop`` waits for one);
    ``ack_timeout`` how long to wait for the server to confirm an ack. The counters
    :attr:`handled`, :attr:`retried`, :attr:`deferred`, :attr:`parked`,
    :attr:`skipped` and :attr:`duplicates` only grow (:meth:`counters`).
    """

    def __init__(
        self,
        js: JetStreamContext,
        *,
        stream: str,
        durable: str,
        subjects: Sequence[str],
        handle: Handle,
        park: Parking,
        max_deliver: int = 5,
        ack_wait: timedelta = timedelta(seconds=30),
        backoff: Sequence[timedelta] = (
            timedelta(seconds=1),
            timedelta(seconds=5),
            timedelta(seconds=30),
        ),
        batch: int = 10,
        fetch_timeout: timedelta = timedelta(seconds=2),
        unknown_type_delay: timedelta = timedelta(minutes=5),
        max_ack_pending: int | None = None,
        transient: tuple[type[BaseException], ...] = TRANSIENT,
        ack_timeout: float = 5.0,
        stop_grace: timedelta | None = None,
        codec: EventCodec | None = None,
        settled_by: str | None = None,
    ) -> None:
        _check_names(stream, durable)
        _check_counts(max_deliver=max_deliver, batch=batch, max_ack_pending=max_ack_pending)
        wanted = tuple(dict.fromkeys(_check_subject(s) for s in subjects))
        if not wanted:
            raise ValueError("a consumer needs at least one subject")
        if not backoff:
            raise ValueError("backoff needs at least one delay")
        if ack_timeout <= 0:
            raise ValueError("the ack timeout must be positive")
        self._js = js
        self._stream = stream
        self._durable = durable
        self._subjects = wanted
        self._filter = server_filter(wanted)
        self._check_subjects = len(wanted) > 1
        self._handle = handle
        self._parking = park
        self._max_deliver = max_deliver
        self._ack_wait = _seconds(ack_wait, "ack_wait")
        self._backoff = tuple(_seconds(d, "a backoff delay") for d in backoff)
        self._batch = batch
        self._fetch_timeout = _seconds(fetch_timeout, "fetch_timeout")
        self._unknown_delay = _seconds(unknown_type_delay, "unknown_type_delay")
        self._max_ack_pending = max_ack_pending
        self._transient = transient
        self._ack_timeout = ack_timeout
        self._stop_grace = None if stop_grace is None else stop_grace.total_seconds()
        self._codec, self._settled_by = codec or EventCodec(), settled_by
        self._lifecycle = asyncio.Lock()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._sub: JetStreamContext.PullSubscription | None = None
        self._held: list[Msg] = []
        """Messages of the current batch not settled yet: kept in progress."""
        self.handled = 0
        """Events whose handler returned (acknowledged, or the ack was lost)."""
        self.retried = 0
        """Deliveries ``nak``-ed with backoff after a transient handler error."""
        self.deferred = 0
        """Deliveries ``nak``-ed because this release does not know their event type."""
        self.parked = 0
        """Messages terminated and copied to the parking stream."""
        self.skipped = 0
        """Messages acknowledged unhandled: their subject is none of ``subjects``."""
        self.settled_elsewhere = 0
        """Messages acknowledged unhandled: their committer ran this role's step already."""
        self.duplicates = 0
        """Deliveries of a message this consumer had acked or parked: settled again."""
        self._settled: OrderedDict[tuple[int, str | None], str] = OrderedDict()
        """The last messages acked (confirmed) or parked, by stream sequence and msg id."""

    # -- settings -------------------------------------------------------------------------------

    @property
    def durable(self) -> str:
        """The durable consumer's name."""
        return self._durable

    @property
    def stream(self) -> str:
        """The stream it reads."""
        return self._stream

    @property
    def filter_subject(self) -> str | None:
        """The durable's ``filter_subject`` (``None``: the whole stream)."""
        return self._filter

    @property
    def running(self) -> bool:
        """Whether the fetch loop runs (started and not stopped)."""
        return self._task is not None and not self._task.done()

    def counters(self) -> dict[str, int]:
        """The counters by name, for a metrics exporter."""
        return {
            "handled": self.handled,
            "retried": self.retried,
            "deferred": self.deferred,
            "parked": self.parked,
            "skipped": self.skipped,
            "settled_elsewhere": self.settled_elsewhere,
            "duplicates": self.duplicates,
        }

    def config(self) -> ConsumerConfig:
        """The durable's configuration as :meth:`start` creates or updates it."""
        return ConsumerConfig(
            name=self._durable,
            durable_name=self._durable,
            description=f"OpenTicket event consumer {self._durable}",
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=self._ack_wait,
            max_deliver=self._max_deliver,
            filter_subject=self._filter,
            max_ack_pending=self._max_ack_pending,
        )

    # -- lifecycle ------------------------------------------------------------------------------

    async def ensure_durable(self) -> ConsumerInfo:
        """Create the durable, or update it to :meth:`config`; safe to call often.

        Raises ``AdapterUnavailable`` when the server cannot be reached, and the
        server's ``APIError`` for a missing stream or a change it refuses (e.g. the
        deliver policy of an existing durable).
        """
        try:
            return await self._js.add_consumer(self._stream, self.config())
        except UNREACHABLE as e:
            raise AdapterUnavailable(
                f"cannot set up the durable {self._durable} on {self._stream}: {e!r}"
            ) from e

    async def start(self) -> None:
        """Create or update the durable and start fetching; does nothing when running."""
        async with self._lifecycle:
            if self.running:
                return
            await self.ensure_durable()
            try:
                self._sub = await self._js.pull_subscribe_bind(
                    durable=self._durable, stream=self._stream
                )
            except _SERVER_ERRORS as e:
                raise AdapterUnavailable(f"cannot subscribe to {self._durable}: {e!r}") from e
            self._stopping.clear()
            self._task = asyncio.create_task(self._run(self._sub), name=f"consumer {self._durable}")
            _log.info(
                "consumer_started",
                durable=self._durable,
                stream=self._stream,
                filter_subject=self._filter,
            )

    async def stop(self) -> None:
        """Finish the running handler, release the rest unhandled; idempotent."""
        async with self._lifecycle:
            task, self._task = self._task, None
            if task is None:
                return
            self._stopping.set()
            done, _ = await asyncio.wait({task}, timeout=self._stop_grace)
            if not done:
                task.cancel()  # the handler overran stop_grace: its message comes back
            with contextlib.suppress(asyncio.CancelledError, Exception):  # logged if it crashed
                await task
            sub, self._sub = self._sub, None
            if sub is not None:
                with contextlib.suppress(*_SERVER_ERRORS, ValueError):
                    await sub.unsubscribe()
            _log.info("consumer_stopped", durable=self._durable, **self.counters())

    # -- the loop ---------------------------------------------------------------------------------

    async def _run(self, sub: JetStreamContext.PullSubscription) -> None:
        try:
            await self._loop(sub)
        except Exception:
            _log.exception("consumer_crashed", durable=self._durable, **self.counters())
            raise

    async def _loop(self, sub: JetStreamContext.PullSubscription) -> None:
        failures = 0
        while not self._stopping.is_set():
            try:
                messages = await sub.fetch(self._batch, timeout=self._fetch_timeout)
            except TimeoutError:  # nothing new (nats' TimeoutError is one too)
                failures = 0
                continue
            except _SERVER_ERRORS as e:
                failures += 1
                pause = min(0.1 * 2 ** (failures - 1), 5.0)
                _log.warning(
                    "consumer_fetch_failed", durable=self._durable, error=repr(e), retry_in_s=pause
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), pause)
                continue
            failures = 0
            await self._work(messages)

    async def _work(self, messages: list[Msg]) -> None:
        """Handle a batch in order, keeping what waits its turn in progress."""
        self._held = list(messages)
        keeper = asyncio.create_task(self._keep_in_progress())
        try:
            for index, msg in enumerate(messages):
                if self._stopping.is_set():
                    await self._release(messages[index:])
                    return
                verdict = self._settled_before(msg) or await (
                    self._judge_traced(msg) if tracing.enabled() else self._judge(msg)
                )
                self._held.remove(msg)  # before settling: no +WPI after a nak's delay
                if not await self._settle(msg, verdict):
                    return  # the server is out of reach: leave the rest to redelivery
        finally:
            self._held = []
            await stop_task(keeper)

    async def _keep_in_progress(self) -> None:
        interval = self._ack_wait / 3
        while True:
            await asyncio.sleep(interval)
            for msg in list(self._held):
                with contextlib.suppress(*_SERVER_ERRORS):
                    await msg.in_progress()

    async def _release(self, messages: Sequence[Msg]) -> None:
        """Give unhandled messages back at once, in order, for another consumer."""
        for msg in messages:
            with contextlib.suppress(*_SERVER_ERRORS):
                await msg.nak()

    # -- one message -------------------------------------------------------------------------------

    async def _judge_traced(self, msg: Msg) -> _Verdict:
        """``_judge`` inside a consumer span, child of the publisher's (``traceparent``)."""
        headers = msg.headers or {}
        with tracing.span(
            f"process {self._stream}",
            tracing.SpanKind.CONSUMER,
            parent=tracing.parent_of(headers.get(tracing.TRACEPARENT)),
            attributes={
                "messaging.system": "nats",
                "messaging.destination.name": msg.subject,
                "messaging.consumer.group.name": self._durable,
                "messaging.message.id": headers.get(MSG_ID_HEADER, ""),
            },
        ) as span:
            verdict = await self._judge(msg)
            span.set_attribute("openticket.settled", verdict.action)
            if verdict.error:
                span.set_attribute("openticket.error", verdict.error)
            return verdict

    async def _judge(self, msg: Msg) -> _Verdict:
        """Run the handler on ``msg`` and say how to settle it."""
        if self._settled_by is not None and msg.headers:
            settled = msg.headers.get(SETTLED_BY_HEADER)
            if settled is not None and self._settled_by in settled.split(","):
                self.settled_elsewhere += 1
                return _ACK_UNREAD
        if self._check_subjects and not any(matches(s, msg.subject) for s in self._subjects):
            self.skipped += 1
            return _ACK_UNREAD
        deliveries = msg.metadata.num_delivered
        last = deliveries >= self._max_deliver
        try:
            event, envelope = decode(msg.data, codec=self._codec)
        except MalformedEnvelope as e:
            return _Verdict("park", reason=ParkReason.MALFORMED, error=describe(e))
        except UnknownEventType as e:
            if last:
                return _Verdict("park", reason=ParkReason.UNKNOWN_TYPE, error=describe(e))
            self.deferred += 1
            _log.warning(
                "event_type_unknown",
                durable=self._durable,
                subject=msg.subject,
                stream_seq=msg.metadata.sequence.stream,
                deliveries=deliveries,
                error=describe(e),
                retry_in_s=self._unknown_delay,
            )
            return _Verdict("nak", delay=self._unknown_delay)
        token = correlation_id.set(envelope.correlation_id)
        try:
            await self._handle(event)
        except self._transient as e:
            if last:
                return _Verdict("park", reason=ParkReason.EXHAUSTED, error=describe(e), event=event)
            delay = self._backoff[min(deliveries, len(self._backoff)) - 1]
            self.retried += 1
            _log.warning(
                "event_handler_retry",
                durable=self._durable,
                event_type=event.event_type,
                event_id=str(event.event_id),
                correlation_id=envelope.correlation_id,
                deliveries=deliveries,
                error=describe(e),
                retry_in_s=delay,
            )
            return _Verdict("nak", delay=delay)
        except Exception as e:  # not transient: a retry would fail the same way
            return _Verdict("park", reason=ParkReason.FAILED, error=describe(e), event=event)
        finally:
            correlation_id.reset(token)
        self.handled += 1
        return _ACK

    async def _settle(self, msg: Msg, verdict: _Verdict) -> bool:
        """Ack, nak, term or park ``msg``; False when the server could not be told."""
        try:
            if verdict.action == "ack":
                await msg.ack_sync(timeout=self._ack_timeout)
                self._remember(msg, "ack")
            elif verdict.action == "ack_unread":
                await msg.ack()
                self._remember(msg, "ack_unread")
            elif verdict.action == "nak":
                await msg.nak(delay=verdict.delay)
            elif verdict.action == "term":
                await msg.term()
            elif await self._park(msg, verdict):
                self._remember(msg, "term")
        except _SERVER_ERRORS as e:  # JetStream redelivers it after ack_wait
            _log.warning(
                "event_settle_failed",
                durable=self._durable,
                action=verdict.action,
                stream_seq=msg.metadata.sequence.stream,
                error=repr(e),
            )
            return False
        return True

    async def _park(self, msg: Msg, verdict: _Verdict) -> bool:
        """Park and terminate ``msg``; False when it could not be parked (nak'ed)."""
        reason = cast(ParkReason, verdict.reason)
        try:
            await self._parking.park(
                msg, durable=self._durable, reason=reason, error=verdict.error, event=verdict.event
            )
        except AdapterUnavailable as e:
            deliveries = msg.metadata.num_delivered
            _log.error(
                "event_park_failed",
                durable=self._durable,
                stream=msg.metadata.stream,
                stream_seq=msg.metadata.sequence.stream,
                subject=msg.subject,
                reason=reason.value,
                error=verdict.error,
                park_error=repr(e),
                deliveries=deliveries,
                redelivered=deliveries < self._max_deliver,
            )
            if deliveries < self._max_deliver:
                await msg.nak(delay=self._backoff[min(deliveries, len(self._backoff)) - 1])
            return False
        await msg.term()
        self.parked += 1
        return True

    # -- settled messages that come back ----------------------------------------------------------

    @staticmethod
    def _identity(msg: Msg) -> tuple[int, str | None]:
        return msg.metadata.sequence.stream, (msg.headers or {}).get(MSG_ID_HEADER)

    def _remember(self, msg: Msg, action: str) -> None:
        settled = self._settled
        settled[self._identity(msg)] = action
        if len(settled) > _REMEMBERED:
            settled.popitem(last=False)

    def _settled_before(self, msg: Msg) -> _Verdict | None:
        """How ``msg`` was settled, if this consumer acked or parked it before."""
        action = self._settled.get(self._identity(msg))
        if action is None:
            return None
        self.duplicates += 1
        _log.warning(
            "event_delivered_after_settle",
            durable=self._durable,
            stream_seq=msg.metadata.sequence.stream,
            deliveries=msg.metadata.num_delivered,
            settled=action,
        )
        return _Verdict(action)
