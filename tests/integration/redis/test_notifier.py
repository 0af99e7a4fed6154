"""The notifier contract against Redis pub/sub, and what only the Redis notifier promises:
fan-out between processes, one shared subscription per channel, reconnection."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any
from uuid import uuid4

import pytest
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from openticket.adapters.redis.notifier import RedisNotifier, WatcherOverflow
from openticket.adapters.redis.seat_cache import RedisSeatStatusCache
from openticket.application.ports.errors import AdapterUnavailable
from openticket.application.ports.messaging import (
    Notifier,
    OrderStatusChanged,
    SeatStatusChanged,
)
from openticket.domain.ordering import OrderStatus
from openticket.domain.seating import SeatStatus
from openticket.domain.shared import OrderId, SessionId, UserId
from openticket.testing.contracts import NotifierContract
from openticket.testing.contracts._builders import T0, seat

pytestmark = pytest.mark.redis

WITHIN = 5.0
"""Seconds a test waits for something that should happen."""


# --- helpers ----------------------------------------------------------------------


async def eventually(
    check: Callable[[], Awaitable[bool]], what: str, within: float = WITHIN
) -> None:
    """Wait until ``check()`` holds; fail naming ``what`` after ``within`` seconds."""
    deadline = asyncio.get_running_loop().time() + within
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"not within {within} s: {what}")
        await asyncio.sleep(0.01)


async def numsub(client: aioredis.Redis, channel: str) -> int:
    """How many connections subscribe to ``channel`` (PUBSUB NUMSUB)."""
    [(_, count)] = await client.pubsub_numsub(channel)
    return int(count)


async def subscriber_connections(client: aioredis.Redis, name: str) -> list[dict[str, Any]]:
    """The connections named ``name`` that subscribe to something (CLIENT LIST)."""
    return [c for c in await client.client_list() if c["name"] == name and int(c["sub"]) > 0]


async def next_of(feed: AsyncIterator[Any], within: float = WITHIN) -> Any:
    return await asyncio.wait_for(anext(feed), within)


def seat_changes(session_id: SessionId, count: int, *, offset: int = 0) -> list[SeatStatusChanged]:
    statuses = (SeatStatus.HELD, SeatStatus.SOLD, SeatStatus.AVAILABLE)
    return [
        SeatStatusChanged(
            session_id=session_id,
            seat_id=seat("A", 1, offset + n + 1),
            status=statuses[n % 3],
            at=T0 + timedelta(seconds=offset + n, microseconds=n),
        )
        for n in range(count)
    ]


def order_changes(user_id: UserId, count: int) -> list[OrderStatusChanged]:
    order_id = OrderId(uuid4())
    statuses = (OrderStatus.CREATED, OrderStatus.PAYMENT_PENDING, OrderStatus.COMPLETED)
    return [
        OrderStatusChanged(
            user_id=user_id, order_id=order_id, status=statuses[n % 3], at=T0 + timedelta(seconds=n)
        )
        for n in range(count)
    ]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class TcpProxy:
    """A TCP forwarder to Redis that a test can take down and bring back (an outage)."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.port = free_port()
        self._target = (target_host, target_port)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def up(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def down(self) -> None:
        """Refuse new connections and cut the open ones."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self._target)
        self._writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


@contextlib.asynccontextmanager
async def started(notifier: RedisNotifier) -> AsyncIterator[RedisNotifier]:
    await notifier.start()
    try:
        yield notifier
    finally:
        await notifier.stop()


@contextlib.asynccontextmanager
async def client_of(url: str, **options: Any) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(url, **options)
    try:
        yield client
    finally:
        await client.aclose()


# --- the contract -----------------------------------------------------------------


class TestRedisNotifier(NotifierContract):
    receive_timeout = WITHIN

    @pytest.fixture
    async def notifier(
        self, redis_client: aioredis.Redis, key_prefix: str
    ) -> AsyncIterator[Notifier]:
        async with started(RedisNotifier(redis_client, prefix=key_prefix)) as notifier:
            yield notifier


class TestRedisNotifierOnResp3WithDecodedResponses(NotifierContract):
    """A client speaking RESP3 (push messages) and handing back ``str`` works the same."""

    receive_timeout = WITHIN

    @pytest.fixture
    async def notifier(self, redis_url: str, key_prefix: str) -> AsyncIterator[Notifier]:
        async with (
            client_of(redis_url, protocol=3, decode_responses=True) as client,
            started(RedisNotifier(client, prefix=key_prefix)) as notifier,
        ):
            yield notifier


# --- several processes ------------------------------------------------------------


async def test_a_watcher_on_another_process_gets_what_one_publishes_in_order(
    redis_url: str, key_prefix: str
) -> None:
    """Two notifiers on two clients, as in two API processes behind a load balancer."""
    session_id, user_id = SessionId(uuid4()), UserId(uuid4())
    seats_changed = seat_changes(session_id, 30)
    orders_changed = order_changes(user_id, 3)
    async with (
        client_of(redis_url) as client_a,
        client_of(redis_url) as client_b,
        started(RedisNotifier(client_a, prefix=key_prefix)) as process_a,
        started(RedisNotifier(client_b, prefix=key_prefix)) as process_b,
        process_b.watch_seats(session_id) as seats_on_b,
        process_b.watch_orders(user_id) as orders_on_b,
        process_a.watch_seats(session_id) as seats_on_a,
    ):
        await process_a.publish([*seats_changed[:10], orders_changed[0]])
        await process_a.publish([*orders_changed[1:], *seats_changed[10:]])
        assert [await next_of(seats_on_b) for _ in seats_changed] == seats_changed
        assert [await next_of(orders_on_b) for _ in orders_changed] == orders_changed
        assert [await next_of(seats_on_a) for _ in seats_changed] == seats_changed


async def test_another_prefix_hears_nothing(redis_url: str, key_prefix: str) -> None:
    session_id = SessionId(uuid4())
    async with (
        client_of(redis_url) as client,
        started(RedisNotifier(client, prefix=f"{key_prefix}one:")) as one,
        started(RedisNotifier(client, prefix=f"{key_prefix}two:")) as two,
        two.watch_seats(session_id) as feed,
    ):
        await one.publish(seat_changes(session_id, 1))
        mine = seat_changes(session_id, 1, offset=5)
        await two.publish(mine)
        assert await next_of(feed) == mine[0]


# --- subscriptions ----------------------------------------------------------------


async def test_the_last_watcher_leaving_unsubscribes_the_channel(
    redis_client: aioredis.Redis, key_prefix: str
) -> None:
    session_id = SessionId(uuid4())
    async with started(RedisNotifier(redis_client, prefix=key_prefix)) as notifier:
        channel = notifier.seat_channel(session_id)
        async with notifier.watch_seats(session_id) as staying:
            async with notifier.watch_seats(session_id):
                assert await numsub(redis_client, channel) == 1
            # one watcher is left: still subscribed, still delivered
            change = seat_changes(session_id, 1)
            await notifier.publish(change)
            assert await next_of(staying) == change[0]
            assert await numsub(redis_client, channel) == 1

        async def unsubscribed() -> bool:
            return await numsub(redis_client, channel) == 0

        await eventually(unsubscribed, f"{channel} unsubscribed")


async def test_many_watchers_share_one_subscription_on_one_connection(
    redis_url: str, key_prefix: str
) -> None:
    name = f"notifier-{uuid.uuid4().hex[:12]}"
    session_id = SessionId(uuid4())
    others = [SessionId(uuid4()) for _ in range(3)]
    users = [UserId(uuid4()) for _ in range(2)]
    async with (
        client_of(redis_url, client_name=name) as client,
        started(RedisNotifier(client, prefix=key_prefix)) as notifier,
        contextlib.AsyncExitStack() as stack,
    ):
        feeds = [
            await stack.enter_async_context(notifier.watch_seats(session_id)) for _ in range(20)
        ]
        for other in others:
            await stack.enter_async_context(notifier.watch_seats(other))
            await stack.enter_async_context(notifier.watch_seats(other))
        for user in users:
            await stack.enter_async_context(notifier.watch_orders(user))

        assert await numsub(client, notifier.seat_channel(session_id)) == 1
        [connection] = await subscriber_connections(client, name)
        assert int(connection["sub"]) == 1 + len(others) + len(users)

        changes = seat_changes(session_id, 3)
        await notifier.publish(changes)
        for feed in feeds:
            assert [await next_of(feed) for _ in changes] == changes


async def test_calls_made_together_leave_in_one_pipeline_in_call_order(
    redis_client: aioredis.Redis, key_prefix: str
) -> None:
    """Thirty requests publishing at once cost one round trip, not thirty, and a
    watcher still gets every change in the order of the calls; calls one after the
    other still go one by one."""
    session_id = SessionId(uuid4())
    changes = seat_changes(session_id, 30)
    async with (
        started(RedisNotifier(redis_client, prefix=key_prefix)) as notifier,
        notifier.watch_seats(session_id) as feed,
    ):
        await asyncio.gather(*(notifier.publish([change]) for change in changes))
        assert notifier.pipelines == 1
        assert [await next_of(feed) for _ in changes] == changes

        later = seat_changes(session_id, 2, offset=100)
        for change in later:
            await notifier.publish([change])
        assert notifier.pipelines == 3
        assert [await next_of(feed) for _ in later] == later


async def test_with_the_seat_cache_a_change_and_its_news_travel_in_one_round_trip(
    redis_client: aioredis.Redis, key_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker's seat change costs one round trip: the cache's write goes first in the
    pipeline that carries the news, so a watcher who hears it finds the seat's status
    in the cache, whichever status it is."""
    session_id = SessionId(uuid4())
    cache = RedisSeatStatusCache(redis_client, prefix=key_prefix)
    made: list[object] = []
    pipeline = redis_client.pipeline

    def counted(*args: Any, **kwargs: Any) -> Any:
        made.append(args)
        return pipeline(*args, **kwargs)

    monkeypatch.setattr(redis_client, "pipeline", counted)
    async with (
        started(RedisNotifier(redis_client, prefix=key_prefix, seat_cache=cache)) as notifier,
        notifier.watch_seats(session_id) as feed,
    ):
        seat_id = seat("A", 1, 1)
        for status in (SeatStatus.HELD, SeatStatus.SOLD, SeatStatus.AVAILABLE, SeatStatus.HELD):
            change = SeatStatusChanged(session_id=session_id, seat_id=seat_id, status=status, at=T0)
            await notifier.publish([change])
            assert await next_of(feed) == change
            cached = await cache.statuses(session_id)
            assert cached.get(seat_id, SeatStatus.AVAILABLE) is status
        assert len(made) == notifier.pipelines == 4


async def test_a_seat_cache_write_that_fails_fails_the_call(
    redis_client: aioredis.Redis, key_prefix: str
) -> None:
    session_id = SessionId(uuid4())
    cache = RedisSeatStatusCache(redis_client, prefix=key_prefix)
    await redis_client.set(cache.key(session_id), "not a hash")  # HSET answers WRONGTYPE
    try:
        notifier = RedisNotifier(redis_client, prefix=key_prefix, seat_cache=cache)
        with pytest.raises(AdapterUnavailable):
            await notifier.publish(seat_changes(session_id, 1))
        await notifier.publish(seat_changes(SessionId(uuid4()), 1))  # the next call goes on
    finally:
        await redis_client.delete(cache.key(session_id))


async def test_a_failed_pipeline_fails_every_call_it_carried() -> None:
    client = _unreachable_client()
    try:
        notifier = RedisNotifier(client)
        outcomes = await asyncio.gather(
            *(notifier.publish(seat_changes(SessionId(uuid4()), 1)) for _ in range(5)),
            return_exceptions=True,
        )
        assert [type(o) for o in outcomes] == [AdapterUnavailable] * 5
        assert notifier.pipelines == 1
    finally:
        await client.aclose()


async def test_watchers_coming_and_going_all_the_time_miss_nothing(
    redis_client: aioredis.Redis, key_prefix: str
) -> None:
    """Channels are left and joined again while confirmations are still on their way:
    every watch still receives what is published once it began, and nothing stays
    subscribed at the end."""
    sessions = [SessionId(uuid4()) for _ in range(3)]
    rounds, per_session = 8, 10

    async with started(RedisNotifier(redis_client, prefix=key_prefix)) as notifier:

        async def watcher(number: int) -> None:
            session_id = sessions[number % len(sessions)]
            for round_ in range(rounds):
                [mine] = seat_changes(session_id, 1, offset=1000 * number + round_)
                async with notifier.watch_seats(session_id) as feed:
                    await notifier.publish([mine])
                    while await next_of(feed) != mine:
                        pass
                await asyncio.sleep(0)

        await asyncio.gather(*(watcher(n) for n in range(per_session * len(sessions))))

        async def all_unsubscribed() -> bool:
            counts = [await numsub(redis_client, notifier.seat_channel(s)) for s in sessions]
            return counts == [0] * len(sessions)

        await eventually(all_unsubscribed, "every channel unsubscribed")


async def test_a_watch_given_up_while_subscribing_leaves_the_connection_alone(
    redis_url: str, key_prefix: str
) -> None:
    """Cancelling watches mid-subscription breaks nobody else's feed and leaks nothing."""
    name = f"notifier-{uuid.uuid4().hex[:12]}"
    session_id = SessionId(uuid4())
    async with (
        client_of(redis_url, client_name=name) as client,
        started(RedisNotifier(client, prefix=key_prefix)) as notifier,
        notifier.watch_seats(session_id) as feed,
    ):
        [before] = await subscriber_connections(client, name)
        abandoned = [SessionId(uuid4()) for _ in range(20)]

        async def watch_forever(other: SessionId) -> None:
            async with notifier.watch_seats(other):
                await asyncio.Event().wait()

        for n, other in enumerate(abandoned):
            task = asyncio.create_task(watch_forever(other))
            for _ in range(n % 5):
                await asyncio.sleep(0)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

        async def none_left() -> bool:
            counts = [await numsub(client, notifier.seat_channel(s)) for s in abandoned]
            return not any(counts)

        await eventually(none_left, "the abandoned channels unsubscribed")
        change = seat_changes(session_id, 1)
        await notifier.publish(change)
        assert await next_of(feed) == change[0]
        [after] = await subscriber_connections(client, name)
        assert after["id"] == before["id"]  # no reconnection was needed


# --- slow watchers ----------------------------------------------------------------


async def test_a_watcher_too_far_behind_is_dropped_and_the_others_go_on(
    redis_client: aioredis.Redis, key_prefix: str
) -> None:
    session_id = SessionId(uuid4())
    changes = seat_changes(session_id, 8)
    notifier = RedisNotifier(redis_client, prefix=key_prefix, max_queue=5)
    async with started(notifier), notifier.watch_seats(session_id) as keeping_up:
        async with notifier.watch_seats(session_id) as asleep:
            for change in changes[:6]:  # the sixth is one more than ``asleep`` may queue
                await notifier.publish([change])
                assert await next_of(keeping_up) == change
            with pytest.raises(WatcherOverflow) as overflow:
                await next_of(asleep)
            assert isinstance(overflow.value, AdapterUnavailable)
            with pytest.raises(WatcherOverflow):  # and so on every later read
                await next_of(asleep)
            await notifier.publish([changes[6]])
            assert await next_of(keeping_up) == changes[6]
        await notifier.publish([changes[7]])
        assert await next_of(keeping_up) == changes[7]
        assert await numsub(redis_client, notifier.seat_channel(session_id)) == 1


# --- wire format ------------------------------------------------------------------


async def test_payloads_are_compact_json_with_every_field(
    redis_client: aioredis.Redis, key_prefix: str
) -> None:
    session_id, user_id = SessionId(uuid4()), UserId(uuid4())
    notifier = RedisNotifier(redis_client, prefix=key_prefix)
    [seat_change] = seat_changes(session_id, 1)
    [order_change] = order_changes(user_id, 1)
    async with redis_client.pubsub() as raw:
        await raw.subscribe(notifier.seat_channel(session_id), notifier.order_channel(user_id))
        for _ in range(2):
            assert (await raw.get_message(timeout=WITHIN))["type"] == "subscribe"
        await notifier.publish([seat_change, order_change])
        seat_message = await raw.get_message(timeout=WITHIN)
        order_message = await raw.get_message(timeout=WITHIN)
    assert seat_message["channel"] == f"{key_prefix}seats:{session_id}".encode()
    assert json.loads(seat_message["data"]) == {
        "session_id": str(session_id),
        "seat_id": "A-1-1",
        "status": "held",
        "at": "2030-01-01T12:00:00Z",
    }
    assert b" " not in seat_message["data"]
    assert order_message["channel"] == f"{key_prefix}orders:{user_id}".encode()
    assert json.loads(order_message["data"]) == {
        "user_id": str(user_id),
        "order_id": str(order_change.order_id),
        "status": "created",
        "at": "2030-01-01T12:00:00Z",
    }


async def test_a_message_that_is_no_notification_is_skipped(
    redis_client: aioredis.Redis, key_prefix: str
) -> None:
    session_id = SessionId(uuid4())
    async with (
        started(RedisNotifier(redis_client, prefix=key_prefix)) as notifier,
        notifier.watch_seats(session_id) as feed,
    ):
        channel = notifier.seat_channel(session_id)
        await redis_client.publish(channel, b"not json")
        await redis_client.publish(channel, b'{"session_id": "nope"}')
        await redis_client.publish(channel, b'{"seat_id": "A-1-1", "status": "held"}')
        change = seat_changes(session_id, 1)
        await notifier.publish(change)
        assert await next_of(feed) == change[0]


# --- lifecycle and failures -------------------------------------------------------


async def test_stop_ends_every_feed_and_start_and_stop_are_idempotent(
    redis_client: aioredis.Redis, key_prefix: str
) -> None:
    session_id = SessionId(uuid4())
    notifier = RedisNotifier(redis_client, prefix=key_prefix)
    await notifier.start()
    await notifier.start()
    async with notifier.watch_seats(session_id) as feed:
        assert notifier.connected
        await notifier.stop()
        await notifier.stop()
        assert not notifier.connected
        with pytest.raises(StopAsyncIteration):
            await next_of(feed)

    async def unsubscribed() -> bool:
        return await numsub(redis_client, notifier.seat_channel(session_id)) == 0

    await eventually(unsubscribed, "the stopped notifier's channel unsubscribed")
    # a watch starts the notifier again
    async with notifier.watch_seats(session_id) as feed:
        change = seat_changes(session_id, 1)
        await notifier.publish(change)
        assert await next_of(feed) == change[0]
    await notifier.stop()


async def test_an_idle_connection_is_kept_alive_by_pings(redis_url: str, key_prefix: str) -> None:
    name = f"notifier-{uuid.uuid4().hex[:12]}"
    session_id = SessionId(uuid4())
    async with (
        client_of(redis_url, client_name=name) as client,
        started(RedisNotifier(client, prefix=key_prefix, health_check_interval=0.05)) as notifier,
        notifier.watch_seats(session_id) as feed,
    ):
        [before] = await subscriber_connections(client, name)
        await asyncio.sleep(0.5)  # ten idle intervals: pings go out and are answered
        change = seat_changes(session_id, 1)
        await notifier.publish(change)
        assert await next_of(feed) == change[0]
        [after] = await subscriber_connections(client, name)
        assert after["id"] == before["id"]


async def test_a_killed_connection_is_replaced_and_its_channels_subscribed_again(
    redis_url: str, key_prefix: str
) -> None:
    name = f"notifier-{uuid.uuid4().hex[:12]}"
    session_id, user_id = SessionId(uuid4()), UserId(uuid4())
    async with (
        client_of(redis_url, client_name=name) as client,
        started(RedisNotifier(client, prefix=key_prefix)) as notifier,
        notifier.watch_seats(session_id) as seat_feed,
        notifier.watch_orders(user_id) as order_feed,
    ):
        [connection] = await subscriber_connections(client, name)
        await client.client_kill_filter(_id=connection["id"])

        async def resubscribed() -> bool:
            connections = await subscriber_connections(client, name)
            return [int(c["sub"]) for c in connections] == [2]

        await eventually(resubscribed, "a new connection subscribed to both channels")
        [replacement] = await subscriber_connections(client, name)
        assert replacement["id"] != connection["id"]
        seats_changed, orders_changed = seat_changes(session_id, 2), order_changes(user_id, 2)
        await notifier.publish([*seats_changed, *orders_changed])
        assert [await next_of(seat_feed) for _ in seats_changed] == seats_changed
        assert [await next_of(order_feed) for _ in orders_changed] == orders_changed
        # and new watches work on the new connection
        other = SessionId(uuid4())
        async with notifier.watch_seats(other) as other_feed:
            change = seat_changes(other, 1)
            await notifier.publish(change)
            assert await next_of(other_feed) == change[0]


async def test_watchers_outlive_an_outage_of_redis(
    redis_client: aioredis.Redis, key_prefix: str
) -> None:
    """Redis unreachable for a while: the notifier keeps trying, then resubscribes."""
    address = redis_client.connection_pool.connection_kwargs
    proxy = TcpProxy(address.get("host", "127.0.0.1"), int(address.get("port", 6379)))
    await proxy.up()
    session_id = SessionId(uuid4())
    async with (
        client_of(f"redis://127.0.0.1:{proxy.port}/0", socket_connect_timeout=1) as client,
        started(
            RedisNotifier(client, prefix=key_prefix, reconnect_delay=0.02, max_reconnect_delay=0.1)
        ) as notifier,
        notifier.watch_seats(session_id) as feed,
    ):
        channel = notifier.seat_channel(session_id)
        await proxy.down()

        async def gone() -> bool:
            return await numsub(redis_client, channel) == 0 and not notifier.connected

        await eventually(gone, "the notifier notices the outage")
        with pytest.raises(AdapterUnavailable):  # nobody can publish through the proxy now
            await notifier.publish(seat_changes(session_id, 1))
        await asyncio.sleep(0.3)  # several failed attempts to reconnect
        await proxy.up()

        async def back() -> bool:
            return await numsub(redis_client, channel) == 1 and notifier.connected

        await eventually(back, "the notifier reconnects and subscribes again")
        change = seat_changes(session_id, 1, offset=7)
        await notifier.publish(change)
        assert await next_of(feed) == change[0]
    await proxy.down()


def _unreachable_client() -> aioredis.Redis:
    return aioredis.Redis(
        host="127.0.0.1", port=free_port(), socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0)
    )


async def test_publishing_to_an_unreachable_redis_is_adapter_unavailable() -> None:
    client = _unreachable_client()
    try:
        notifier = RedisNotifier(client)
        with pytest.raises(AdapterUnavailable):
            await notifier.publish(seat_changes(SessionId(uuid4()), 2))
        await notifier.publish([])  # nothing to send: no round trip, no error
    finally:
        await client.aclose()


async def test_watching_or_starting_without_redis_is_adapter_unavailable() -> None:
    client = _unreachable_client()
    try:
        notifier = RedisNotifier(client)
        with pytest.raises(AdapterUnavailable):
            await notifier.start()
        with pytest.raises(AdapterUnavailable):
            async with notifier.watch_seats(SessionId(uuid4())):
                pass
        await notifier.stop()  # never started: harmless
    finally:
        await client.aclose()


def test_a_queue_must_hold_something(redis_client: aioredis.Redis) -> None:
    with pytest.raises(ValueError, match="max_queue"):
        RedisNotifier(redis_client, max_queue=0)
