"""Live fan-out across API processes: a ``Notifier`` over Redis pub/sub.

Every API process publishes the status changes it handles to Redis and hears, over
one pub/sub connection of its own, the changes of the sessions and users its
WebSocket clients watch, wherever they were handled.

Channels and payloads
    ``{prefix}seats:{<session_id>}`` carries ``SeatStatusChanged``,
    ``{prefix}orders:{<user_id>}`` carries ``OrderStatusChanged``; one message per
    change, compact JSON with every field of the notification, for example
    ``{"session_id":"…","seat_id":"A-1-7","status":"held","at":"2030-01-01T12:00:00Z"}``.
    Times are RFC 3339 with an offset; unknown fields are ignored when decoding.

Publishing
    The notifications of one ``publish`` call go out in one pipelined round trip (not a
    transaction), in order. Redis delivers the messages of one connection in order, so
    every watcher gets a channel's changes in publish order.

    One round trip is under way at a time: calls made while it travels wait together,
    and their notifications leave as the next pipeline, in the order of the calls. A
    busy API process thus sends its requests' order changes in a few pipelines instead
    of one round trip each (on a small machine a round trip costs its sender more CPU
    than what it carries), and a quiet one waits no longer than before. A call returns
    once Redis took its notifications; a pipeline that fails raises
    ``AdapterUnavailable`` in every call whose notifications it carried.

The seat-status cache
    A notifier made with ``seat_cache`` (:class:`~.seat_cache.RedisSeatStatusCache`)
    records the seat changes it publishes in that cache, in the same pipeline and
    before their messages, so that a reader who got the news finds it there: a seat
    change costs one round trip instead of two (``LiveNotifications(cache_with_news=
    True)`` then leaves the cache to it). On a cluster the cache is written in a round
    trip of its own first, since a cluster pipeline sends each node its part at once.
    A pipeline that fails fails the calls it carried, whichever part failed.

Watching
    The notifier owns one pub/sub connection, taken from the client's pool, and one
    reader task that dispatches what arrives to the local watchers' queues. A
    channel is subscribed when its first local watcher arrives and unsubscribed when
    its last one leaves, however many watchers share it. ``watch_*`` yields only
    once Redis confirmed the subscription, so everything published after that is
    received; it raises ``AdapterUnavailable`` if no confirmation comes within
    ``subscribe_timeout``. A watcher hears nothing published before it joined: a
    channel left and joined again at once may still carry messages its old
    subscription heard while the UNSUBSCRIBE was in flight, and those are dropped
    until the new SUBSCRIBE is confirmed (on a cluster, see below, a change published
    on another node just before may still come). Only the reader task reads the
    connection; SUBSCRIBE, UNSUBSCRIBE and PING are written under a lock, and every
    SUBSCRIBE is counted so that a confirmation is matched to the command it answers
    (a channel left and joined again quickly sees the latest SUBSCRIBE confirmed, not
    an older one).

Slow watchers
    Each watcher has a bounded queue (``max_queue``). A watcher whose queue is full
    is dropped from the feed rather than made to skip changes silently (a seat map
    that missed a change stays wrong): its queue is emptied and its iterator raises
    ``WatcherOverflow``, a kind of ``AdapterUnavailable``. Its consumer should end
    the feed (close the WebSocket) so that the client reconnects and starts over from
    a fresh snapshot. The other watchers of the channel are not affected.

On a Redis Cluster
    Classic ``PUBLISH`` reaches every node of a cluster, replicas included, so the
    subscriptions go to any one node, and after a failure to the next node in turn.
    A publish goes to the master of its channel's slot, so one channel's changes from
    one process still leave through one connection, in order. (Sharded pub/sub would
    spare the cluster bus the fan-out, at the price of one subscribing connection per
    master; a session's feed is small enough for the classic kind.)

Lost connections
    Best effort, as pub/sub is: when the connection breaks (read error, or no answer
    to a PING sent after ``health_check_interval`` idle seconds) the reader logs it,
    reconnects with exponential backoff (``reconnect_delay`` .. ``max_reconnect_delay``)
    and subscribes again to every channel that still has watchers. Watchers stay
    open; what was published while the connection was down is not delivered.

Lifecycle
    ``start()`` takes the connection and starts the reader (``watch_*`` calls it when
    needed); ``stop()`` ends every feed (their iterators stop), cancels the reader
    and gives the connection back. Both are idempotent; publishing needs neither.

One module, over 500 lines: the publishing side and the one pub/sub reader share the
connection's life (reconnect, resubscribe, cluster nodes).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar
from uuid import UUID

import msgspec
import structlog
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from openticket.adapters.redis.connection import (
    REDIS_FAILURES,
    RedisClient,
    relearn_slots,
    unavailable,
)
from openticket.adapters.redis.seat_cache import RedisSeatStatusCache
from openticket.application.ports.errors import AdapterUnavailable
from openticket.application.ports.lifecycle import stop_task
from openticket.application.ports.messaging import (
    Notification,
    OrderStatusChanged,
    SeatStatusChanged,
)
from openticket.domain.ordering import OrderStatus
from openticket.domain.seating import SeatStatus
from openticket.domain.shared import OrderId, SeatId, SessionId, UserId

_log = structlog.get_logger("openticket.redis.notifier")

N = TypeVar("N", SeatStatusChanged, OrderStatusChanged)
T = TypeVar("T")

DEFAULT_MAX_QUEUE = 1000
"""Changes a watcher may have waiting before it is dropped as too slow."""


class WatcherOverflow(AdapterUnavailable):
    """A watcher fell ``max_queue`` changes behind and was dropped from its feed.

    Nothing more arrives on that feed. Start a new watch (and take a new snapshot).
    """

    code = "feed_overflow"


# --- wire format ------------------------------------------------------------------

_AwareDatetime = Annotated[datetime, msgspec.Meta(tz=True)]


class _SeatWire(msgspec.Struct, frozen=True):
    session_id: UUID
    seat_id: str
    status: SeatStatus
    at: _AwareDatetime


class _OrderWire(msgspec.Struct, frozen=True):
    user_id: UUID
    order_id: UUID
    status: OrderStatus
    at: _AwareDatetime


_encoder = msgspec.json.Encoder()
_seat_decoder = msgspec.json.Decoder(_SeatWire)
_order_decoder = msgspec.json.Decoder(_OrderWire)


def encode(notification: Notification) -> bytes:
    """The JSON payload of ``notification`` (what goes on its channel)."""
    if isinstance(notification, SeatStatusChanged):
        return _encoder.encode(
            _SeatWire(
                session_id=notification.session_id,
                seat_id=notification.seat_id,
                status=notification.status,
                at=notification.at,
            )
        )
    return _encoder.encode(
        _OrderWire(
            user_id=notification.user_id,
            order_id=notification.order_id,
            status=notification.status,
            at=notification.at,
        )
    )


def decode_seat_change(payload: bytes | str) -> SeatStatusChanged:
    """A seat channel's payload decoded (``msgspec.DecodeError`` if it is not one)."""
    wire = _seat_decoder.decode(payload)
    return SeatStatusChanged(
        session_id=SessionId(wire.session_id),
        seat_id=SeatId(wire.seat_id),
        status=wire.status,
        at=wire.at,
    )


def decode_order_change(payload: bytes | str) -> OrderStatusChanged:
    """An order channel's payload decoded (``msgspec.DecodeError`` if it is not one)."""
    wire = _order_decoder.decode(payload)
    return OrderStatusChanged(
        user_id=UserId(wire.user_id),
        order_id=OrderId(wire.order_id),
        status=wire.status,
        at=wire.at,
    )


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


# --- publishing ------------------------------------------------------------------


class _Outgoing:
    """Notifications of the calls waiting for one pipeline, and its outcome."""

    __slots__ = ("changes", "messages", "sent")

    def __init__(self, sent: asyncio.Future[None]) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self.changes: list[SeatStatusChanged] = []
        """Seat changes for the seat-status cache, written before the messages."""
        self.sent = sent
        # its failure is read by the callers; none left (all gave up) is not an error
        sent.add_done_callback(_read_outcome)

    def done(self) -> None:
        if not self.sent.done():
            self.sent.set_result(None)

    def fail(self, error: AdapterUnavailable) -> None:
        if not self.sent.done():
            self.sent.set_exception(error)


def _read_outcome(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()


# --- local watchers ---------------------------------------------------------------


class _Signal(enum.Enum):
    END = enum.auto()
    OVERFLOW = enum.auto()


class _Feed(Generic[N]):
    """One watcher's queue, and the async iterator its consumer reads."""

    __slots__ = ("_capacity", "_channel", "_queue", "open")

    def __init__(self, channel: str, capacity: int) -> None:
        self._channel = channel
        self._capacity = capacity
        self._queue: asyncio.Queue[N | _Signal] = asyncio.Queue()
        self.open = True
        """Whether changes are still queued (not ended, not overflowed)."""

    def offer(self, change: N) -> bool:
        """Queue ``change``; ``False`` if the queue was full and the feed is now dropped."""
        if not self.open:
            return True
        if self._queue.qsize() >= self._capacity:
            self.open = False
            while not self._queue.empty():
                self._queue.get_nowait()
            self._queue.put_nowait(_Signal.OVERFLOW)
            return False
        self._queue.put_nowait(change)
        return True

    def end(self) -> None:
        """No more changes: the iterator stops once it has read what is queued."""
        if self.open:
            self.open = False
            self._queue.put_nowait(_Signal.END)

    def __aiter__(self) -> _Feed[N]:
        return self

    async def __anext__(self) -> N:
        item = await self._queue.get()
        if isinstance(item, _Signal):
            self._queue.put_nowait(item)  # every later read ends the same way
            if item is _Signal.OVERFLOW:
                raise WatcherOverflow(
                    f"watcher of {self._channel} fell {self._capacity} changes behind"
                )
            raise StopAsyncIteration
        return item


class _Channel:
    """What this process knows of one channel: its watchers and its subscription."""

    __slots__ = ("acked", "decode", "feeds", "ready", "sent", "subscribed")

    def __init__(self, decode: Callable[[bytes | str], Any]) -> None:
        self.decode = decode
        self.feeds: set[_Feed[Any]] = set()
        self.subscribed = False
        """A SUBSCRIBE was sent on the current connection and no UNSUBSCRIBE since."""
        self.sent = 0
        """SUBSCRIBEs sent on the current connection."""
        self.acked = 0
        """Confirmations of those read back (they come in the order sent)."""
        self.ready = asyncio.Event()
        """Subscribed, and the latest SUBSCRIBE is confirmed."""

    def reset(self) -> None:
        """The connection is gone, and every subscription with it."""
        self.subscribed = False
        self.sent = self.acked = 0
        self.ready.clear()

    @property
    def idle(self) -> bool:
        """No watcher, no subscription, and no confirmation still to come."""
        return not self.feeds and not self.subscribed and self.acked >= self.sent


# --- the notifier -----------------------------------------------------------------


class RedisNotifier:
    """A ``Notifier`` whose watchers hear what any process with the same prefix publishes.

    ``client`` is the process's Redis client: publishing uses its pool, and the
    notifier keeps one connection of that pool for its subscriptions while started.
    See the module documentation for channels, the slow-watcher policy and
    reconnection. Redis errors while publishing raise ``AdapterUnavailable``.
    """

    def __init__(
        self,
        client: RedisClient,
        *,
        prefix: str = "openticket:",
        max_queue: int = DEFAULT_MAX_QUEUE,
        subscribe_timeout: float = 5.0,
        health_check_interval: float = 10.0,
        reconnect_delay: float = 0.1,
        max_reconnect_delay: float = 5.0,
        seat_cache: RedisSeatStatusCache | None = None,
    ) -> None:
        if max_queue < 1:
            raise ValueError("max_queue must be at least 1")
        self._client = client
        self._seat_cache = seat_cache
        """Written with the news of seat changes (see "The seat-status cache")."""
        self._prefix = prefix
        self._max_queue = max_queue
        self._subscribe_timeout = subscribe_timeout
        self._health_check_interval = health_check_interval
        self._reconnect_delay = reconnect_delay
        self._max_reconnect_delay = max_reconnect_delay
        self._channels: dict[str, _Channel] = {}
        self._lock = asyncio.Lock()
        """Held to write on the pub/sub connection and to change its subscriptions."""
        self._lifecycle = asyncio.Lock()
        self._conn: AbstractConnection | None = None
        self._live = False
        """The connection is up: commands may be written on it."""
        self._reader: asyncio.Task[None] | None = None
        self._chores: set[asyncio.Task[Any]] = set()
        self._turn = -1
        """On a cluster, the node the subscriptions went to last (an index, in turn)."""
        self._next: _Outgoing | None = None
        """Notifications waiting for the round trip under way to end."""
        self._sender: asyncio.Task[None] | None = None
        self.pipelines = 0
        """Pipelines of notifications sent (fewer than ``publish`` calls when busy)."""

    # --- names ----------------------------------------------------------------------

    def seat_channel(self, session_id: SessionId) -> str:
        """The channel of a session's seat changes."""
        return f"{self._prefix}seats:{session_id}"

    def order_channel(self, user_id: UserId) -> str:
        """The channel of a user's order changes."""
        return f"{self._prefix}orders:{user_id}"

    def _channel_of(self, notification: Notification) -> str:
        if isinstance(notification, SeatStatusChanged):
            return self.seat_channel(notification.session_id)
        return self.order_channel(notification.user_id)

    @property
    def connected(self) -> bool:
        """Whether the pub/sub connection is up now (started and not reconnecting)."""
        return self._live

    # --- publishing -----------------------------------------------------------------

    async def publish(self, notifications: Sequence[Notification]) -> None:
        """Publish every notification on its channel, in order (see "Publishing")."""
        if not notifications:
            return
        outgoing = self._next
        if outgoing is None:
            outgoing = self._next = _Outgoing(asyncio.get_running_loop().create_future())
        outgoing.messages.extend(
            (self._channel_of(notification), encode(notification)) for notification in notifications
        )
        if self._seat_cache is not None:
            outgoing.changes.extend(n for n in notifications if isinstance(n, SeatStatusChanged))
        if self._sender is None:
            self._sender = asyncio.create_task(self._send_waiting(), name="redis-notifier-send")
        # shielded: a caller that gives up must not cancel the others' wait
        await asyncio.shield(outgoing.sent)

    async def _send_waiting(self) -> None:
        """Send what waits, one pipeline at a time, until nothing does."""
        try:
            while (outgoing := self._next) is not None:
                self._next = None
                pipe = self._client.pipeline(transaction=False)
                cache = self._seat_cache
                if (
                    cache
                    and outgoing.changes
                    and not await self._cache_first(cache, pipe, outgoing)
                ):
                    continue
                for channel, payload in outgoing.messages:
                    # as a plain command: the cluster pipeline refuses ``publish`` but
                    # routes a PUBLISH by its channel
                    pipe.execute_command("PUBLISH", channel, payload)
                self.pipelines += 1
                try:
                    await pipe.execute()
                except REDIS_FAILURES as e:
                    await relearn_slots(self._client, e)
                    outgoing.fail(unavailable("cannot publish status changes to Redis", e))
                else:
                    outgoing.done()
        finally:
            self._sender = None
            if self._next is not None:  # cancelled with calls still waiting
                self._next.fail(AdapterUnavailable("the notifier stopped publishing"))
                self._next = None

    async def _cache_first(
        self, cache: RedisSeatStatusCache, pipe: Any, outgoing: _Outgoing
    ) -> bool:
        """Put the seat-status cache's writes ahead of the news; False if they failed.

        On one server they go first in the same pipeline: Redis runs one connection's
        commands in order. A cluster's pipeline sends each node its part at once, so
        there the cache is written in a round trip of its own before the news leave.
        """
        if not isinstance(self._client, RedisCluster):
            cache.write(pipe, outgoing.changes)
            return True
        try:
            await cache.apply(outgoing.changes)
        except AdapterUnavailable as e:
            outgoing.fail(e)
            return False
        return True

    # --- watching -------------------------------------------------------------------

    def watch_seats(
        self, session_id: SessionId
    ) -> AbstractAsyncContextManager[AsyncIterator[SeatStatusChanged]]:
        """Subscribe to seat changes of one session (confirmed by Redis on entering)."""
        return self._watch(self.seat_channel(session_id), decode_seat_change)

    def watch_orders(
        self, user_id: UserId
    ) -> AbstractAsyncContextManager[AsyncIterator[OrderStatusChanged]]:
        """Subscribe to order changes of one user (confirmed by Redis on entering)."""
        return self._watch(self.order_channel(user_id), decode_order_change)

    @asynccontextmanager
    async def _watch(
        self, name: str, decode: Callable[[bytes | str], N]
    ) -> AsyncIterator[AsyncIterator[N]]:
        await self.start()
        feed: _Feed[N] = _Feed(name, self._max_queue)
        try:
            async with asyncio.timeout(self._subscribe_timeout):
                entry = await self._shielded(self._join(name, decode, feed))
                await entry.ready.wait()
            if not feed.open:
                raise AdapterUnavailable(f"the notifier stopped while subscribing to {name}")
        except BaseException as e:
            feed.end()
            await self._shielded(self._leave(name, feed))
            if isinstance(e, TimeoutError):
                raise AdapterUnavailable(
                    f"Redis did not confirm the subscription to {name} "
                    f"within {self._subscribe_timeout} s"
                ) from e
            raise
        try:
            yield feed
        finally:
            feed.end()
            await self._shielded(self._leave(name, feed))

    async def _shielded(self, work: Coroutine[Any, Any, T]) -> T:
        """Run ``work`` to the end even if the caller is cancelled meanwhile.

        A write cut short by cancellation would break the connection every watcher
        shares, and a half-done join or leave would leave a subscription behind.
        """
        task = asyncio.create_task(work)
        self._chores.add(task)
        task.add_done_callback(self._chores.discard)
        return await asyncio.shield(task)

    async def _join(
        self, name: str, decode: Callable[[bytes | str], Any], feed: _Feed[Any]
    ) -> _Channel:
        async with self._lock:
            entry = self._channels.get(name)
            if entry is None:
                entry = self._channels[name] = _Channel(decode)
            if feed.open:  # a watch given up before it got here does not join
                entry.feeds.add(feed)
            await self._reconcile(name, entry)
            return entry

    async def _leave(self, name: str, feed: _Feed[Any]) -> None:
        async with self._lock:
            entry = self._channels.get(name)
            if entry is not None and feed in entry.feeds:
                entry.feeds.discard(feed)
                await self._reconcile(name, entry)

    async def _reconcile(self, name: str, entry: _Channel) -> None:
        """Subscribe a watched channel, unsubscribe an unwatched one. Hold ``_lock``."""
        conn = self._conn
        if self._live and conn is not None:
            command = None
            if entry.feeds and not entry.subscribed:
                entry.subscribed = True
                entry.sent += 1
                command = "SUBSCRIBE"
            elif not entry.feeds and entry.subscribed:
                entry.subscribed = False
                command = "UNSUBSCRIBE"
            if command is not None:
                entry.ready.clear()
                try:
                    await conn.send_command(command, name, check_health=False)
                except REDIS_FAILURES as e:
                    # the connection is broken: the reader notices, reconnects and
                    # subscribes again to every watched channel
                    self._live = False
                    _log.warning("notifier.write_failed", channel=name, error=str(e))
        if entry.idle and self._channels.get(name) is entry:
            del self._channels[name]

    # --- lifecycle ------------------------------------------------------------------

    async def start(self) -> None:
        """Take the pub/sub connection and start the reader; idempotent.

        Raises ``AdapterUnavailable`` if Redis cannot be reached.
        """
        async with self._lifecycle:
            if self._reader is not None:
                return
            try:
                conn = await self._open()
            except REDIS_FAILURES as e:
                raise unavailable("cannot open the Redis pub/sub connection", e) from e
            self._conn = conn
            self._live = True
            self._reader = asyncio.create_task(self._run(conn), name="redis-notifier-reader")

    async def stop(self) -> None:
        """End every feed, stop the reader and give the connection back; idempotent."""
        async with self._lifecycle:
            reader, self._reader = self._reader, None
            if reader is None:
                return
            await stop_task(reader)
            async with self._lock:
                self._live = False
                conn, self._conn = self._conn, None
                for entry in self._channels.values():
                    for feed in entry.feeds:
                        feed.end()
                    entry.ready.set()  # wakes watches still subscribing: they see the end
                self._channels.clear()
            if conn is not None:
                with contextlib.suppress(*REDIS_FAILURES):
                    await conn.disconnect(nowait=True)
                if not isinstance(self._client, RedisCluster):
                    await self._client.connection_pool.release(conn)

    async def _open(self) -> AbstractConnection:
        """The subscriptions' connection: from the pool, or to a cluster node that answers."""
        client = self._client
        if not isinstance(client, RedisCluster):
            pooled: AbstractConnection = await client.connection_pool.get_connection()  # type: ignore[no-untyped-call]
            return pooled
        await client.initialize()
        failure: BaseException | None = None
        for _ in client.get_nodes():
            conn = await self._next_node(client)
            try:
                await conn.connect()  # type: ignore[no-untyped-call]
            except REDIS_FAILURES as e:
                failure = e
                continue
            return conn
        raise RedisConnectionError(f"no node of the cluster answered: {failure}")

    async def _next_node(self, client: RedisCluster) -> AbstractConnection:
        """A connection, not connected yet, to the next node of the cluster in turn."""
        nodes = client.get_nodes()
        if not nodes:  # the client dropped its map of the cluster (failover): learn it again
            await client.initialize()
            nodes = client.get_nodes()
        self._turn = (self._turn + 1) % len(nodes)
        node = nodes[self._turn]
        return node.connection_class(**node.connection_kwargs)

    # --- the reader -----------------------------------------------------------------

    async def _run(self, conn: AbstractConnection) -> None:
        while True:
            try:
                await self._read(conn)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # whatever broke: reconnect
                _log.warning(
                    "notifier.connection_lost",
                    error=str(e) or type(e).__name__,
                    channels=sum(1 for entry in self._channels.values() if entry.feeds),
                )
            conn = await self._reconnect(conn)

    async def _read(self, conn: AbstractConnection) -> None:
        """Dispatch what arrives until the connection breaks (then raise)."""
        ping_pending = False
        while True:
            try:
                response = await conn.read_response(
                    timeout=self._health_check_interval,
                    disconnect_on_error=False,
                    push_request=True,
                )
            except ResponseError as e:
                _log.warning("notifier.error_reply", error=str(e))
                continue
            if response is None:  # idle: is the connection still there?
                if ping_pending:
                    raise RedisConnectionError("no answer to PING")
                async with self._lock:
                    if not self._live:
                        raise RedisConnectionError("a write on the connection failed")
                    await conn.send_command("PING", check_health=False)
                ping_pending = True
                continue
            ping_pending = False
            self._dispatch(response)

    def _dispatch(self, response: object) -> None:
        if not isinstance(response, list) or len(response) < 3:
            return  # a PONG, or something this notifier did not ask for
        kind, name = _text(response[0]), _text(response[1])
        entry = self._channels.get(name)
        if entry is None:
            return
        if kind == "message":
            if not entry.feeds or entry.acked < entry.sent:
                # before the latest SUBSCRIBE is confirmed, a message is one the old
                # subscription still heard (its UNSUBSCRIBE was in flight): published
                # before any of today's watchers joined, so none of theirs
                return
            try:
                change = entry.decode(response[2])
            except msgspec.DecodeError as e:
                _log.warning("notifier.bad_message", channel=name, error=str(e))
                return
            for feed in entry.feeds:
                if not feed.offer(change):
                    _log.warning("notifier.watcher_dropped", channel=name, behind=self._max_queue)
        elif kind == "subscribe":
            entry.acked = min(entry.acked + 1, entry.sent)
            if entry.subscribed and entry.acked == entry.sent:
                entry.ready.set()
            if entry.idle:
                del self._channels[name]

    async def _reconnect(self, conn: AbstractConnection) -> AbstractConnection:
        """Connect again (backing off) and subscribe again to every watched channel.

        On a cluster every attempt after a failed one goes to the next node. Answers
        the connection now in use.
        """
        delay = self._reconnect_delay
        attempts = 0
        while True:
            async with self._lock:
                self._live = False
                for name, entry in list(self._channels.items()):
                    entry.reset()
                    if entry.idle:
                        del self._channels[name]
            with contextlib.suppress(*REDIS_FAILURES):
                await conn.disconnect(nowait=True)
            attempts += 1
            try:
                if attempts > 1 and isinstance(self._client, RedisCluster):
                    conn = await self._next_node(self._client)
                    async with self._lock:
                        self._conn = conn
                await conn.connect()  # type: ignore[no-untyped-call]
                async with self._lock:
                    watched = [name for name, entry in self._channels.items() if entry.feeds]
                    for name in watched:
                        entry = self._channels[name]
                        entry.subscribed = True
                        entry.sent += 1
                    self._live = True
                    if watched:
                        await conn.send_command("SUBSCRIBE", *watched, check_health=False)
            except REDIS_FAILURES as e:
                _log.warning(
                    "notifier.reconnect_failed",
                    attempt=attempts,
                    error=str(e) or type(e).__name__,
                    retry_in=delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._max_reconnect_delay)
                continue
            _log.info("notifier.reconnected", attempts=attempts, channels=len(watched))
            return conn
