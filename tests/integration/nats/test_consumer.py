"""Durable JetStream event consumers, against the real NATS server.

Each test sets the event streams and the parking stream up under a prefix of its own
and deletes them at the end (after its consumers stopped). Handlers dedupe with a
``MemoryDatabase`` unit of work as the saga does: the events a handler committed
(``committed_events``) are its side effect, which must happen once per event.
Conditions are waited for with a deadline; nothing asserts after a fixed sleep.

nats-server 2.9 may deliver a message once more after a ``nak`` (nats-server #5305):
counts of handler calls are therefore asserted as lower bounds where a test naks,
while side effects, parked copies and consumer state are asserted exactly.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

import nats
import pytest
import structlog
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, DeliverPolicy, RawStreamMsg
from nats.js.errors import NotFoundError

from openticket.adapters.memory import MemoryDatabase
from openticket.adapters.nats.consumer import (
    PARKED_DELIVERIES,
    PARKED_DURABLE,
    PARKED_ERROR,
    PARKED_MSG_ID,
    PARKED_REASON,
    PARKED_SEQUENCE,
    PARKED_STREAM,
    PARKED_SUBJECT,
    EventConsumer,
    Handle,
    Parking,
    ParkReason,
    ensure_parking,
    matches,
    parked_stream,
    parked_subject,
    server_filter,
)
from openticket.adapters.nats.envelope import MSG_ID_HEADER, decode, encode
from openticket.adapters.nats.exhausted import ExhaustedDeliveries
from openticket.adapters.nats.publisher import NatsEventPublisher
from openticket.adapters.nats.streams import (
    ORDERS,
    STREAMS,
    ensure_streams,
    stream_name,
    subject_name,
)
from openticket.application.correlation import correlated, correlation_id
from openticket.application.messagebus import SettledHere
from openticket.application.ports.errors import AdapterUnavailable, ConcurrencyError
from openticket.domain.ordering import OrderCancelled, OrderEvent, OrderExpired, OrderFailed
from openticket.domain.shared import DomainEvent, OrderId, SessionId, UserId
from openticket.testing.contracts._builders import T0

pytestmark = pytest.mark.nats

HANDLER = "test-handler"
"""The name the test handler dedupes under (``uow.processed_events``)."""

FAST = {
    "ack_wait": timedelta(seconds=1),
    "backoff": (timedelta(milliseconds=100),),
    "fetch_timeout": timedelta(milliseconds=300),
    "unknown_type_delay": timedelta(milliseconds=100),
}
"""Short timings for tests."""


# --- waiting ----------------------------------------------------------------------------------


async def eventually(
    condition: Callable[[], bool | Awaitable[bool]], *, within: float = 10.0, what: str = ""
) -> None:
    """Wait until ``condition`` holds; fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        result = condition()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what or condition}")
        await asyncio.sleep(0.02)


# --- events and handlers ----------------------------------------------------------------------


def order_event(
    cls: type[OrderEvent] = OrderCancelled, order_id: UUID | None = None, **fields: Any
) -> OrderEvent:
    """An order event with fresh ids (``order_id`` is the subject's key)."""
    return cls(
        event_id=uuid4(),
        occurred_at=T0,
        order_id=OrderId(order_id or uuid4()),
        user_id=UserId(uuid4()),
        session_id=SessionId(uuid4()),
        **fields,
    )


class Recorder:
    """A handler as the saga writes them: dedupe by event id, commit, then return.

    ``calls`` is every invocation (with the correlation id it ran under); the side
    effect is ``effects``, what its commits stored.
    """

    def __init__(self, database: MemoryDatabase | None = None) -> None:
        self.database = database or MemoryDatabase()
        self.calls: list[tuple[DomainEvent, str | None]] = []
        self.fail: Callable[[DomainEvent, int], BaseException | None] = lambda e, n: None
        """Which error to raise on the ``n``-th call for an event (1-based), if any."""
        self.times: dict[UUID, list[float]] = {}

    def calls_for(self, event: DomainEvent) -> int:
        return sum(1 for called, _ in self.calls if called.event_id == event.event_id)

    @property
    def effects(self) -> list[DomainEvent]:
        return self.database.committed_events

    async def __call__(self, event: DomainEvent) -> None:
        self.calls.append((event, correlation_id.get()))
        self.times.setdefault(event.event_id, []).append(time.monotonic())
        error = self.fail(event, self.calls_for(event))
        if error is not None:
            raise error
        async with self.database.unit_of_work() as uow:
            if not await uow.processed_events.add(HANDLER, event.event_id):
                return
            uow.publish_on_commit(event)
            await uow.commit()


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture
async def js(nats_client: Client, unique: str) -> AsyncIterator[JetStreamContext]:
    """JetStream with the test's own event and parking streams, deleted at the end."""
    context = nats_client.jetstream()
    await ensure_streams(context, prefix=unique)
    await ensure_parking(context, unique)
    try:
        yield context
    finally:
        for name in [stream_name(s.name, unique) for s in STREAMS] + [parked_stream(unique)]:
            with contextlib.suppress(NotFoundError):
                await context.delete_stream(name)


@pytest.fixture
def publisher(js: JetStreamContext, unique: str) -> NatsEventPublisher:
    return NatsEventPublisher(js, prefix=unique)


@pytest.fixture
def parking(js: JetStreamContext, unique: str) -> Parking:
    return Parking(js, prefix=unique)


ConsumerFactory = Callable[..., EventConsumer]


@pytest.fixture
async def consumer_of(
    js: JetStreamContext, unique: str, parking: Parking
) -> AsyncIterator[ConsumerFactory]:
    """Builds consumers of the test's ORDERS stream (fast timings); stops them at the end."""
    made: list[EventConsumer] = []

    def build(handle: Handle, **options: Any) -> EventConsumer:
        context = options.pop("js", js)
        settings: dict[str, Any] = {
            "stream": stream_name(ORDERS, unique),
            "durable": f"test-{unique}",
            "subjects": [subject_name("order.>", unique)],
            "park": parking,
            **FAST,
            **options,
        }
        consumer = EventConsumer(context, handle=handle, **settings)
        made.append(consumer)
        return consumer

    try:
        yield build
    finally:
        for consumer in made:
            await consumer.stop()


async def parked_messages(js: JetStreamContext, prefix: str) -> list[RawStreamMsg]:
    """Every message of the parking stream, in order."""
    name = parked_stream(prefix)
    state = (await js.stream_info(name)).state
    if not state.messages:
        return []
    return [await js.get_msg(name, seq) for seq in range(state.first_seq, state.last_seq + 1)]


async def settled(js: JetStreamContext, consumer: EventConsumer) -> bool:
    """Nothing left to deliver or to acknowledge."""
    info = await js.consumer_info(consumer.stream, consumer.durable)
    return bool(info.num_pending == 0 and info.num_ack_pending == 0)


# --- the happy path ---------------------------------------------------------------------------


async def test_each_event_is_handled_once_in_order_with_its_correlation_then_acknowledged(
    consumer_of: ConsumerFactory, publisher: NatsEventPublisher, js: JetStreamContext
) -> None:
    orders = [uuid4() for _ in range(3)]
    events = [order_event(OrderFailed, orders[i % 3], reason=f"r{i}") for i in range(12)]
    with correlated("req-7"):
        await publisher.publish(events)
    recorder = Recorder()
    consumer = consumer_of(recorder, batch=5)

    await consumer.start()
    await eventually(lambda: len(recorder.effects) == len(events), what="every event handled")

    assert recorder.effects == events
    assert [called for called, _ in recorder.calls] == events
    assert {correlation for _, correlation in recorder.calls} == {"req-7"}
    assert correlation_id.get() is None
    await eventually(lambda: settled(js, consumer), what="every event acknowledged")
    info = await js.consumer_info(consumer.stream, consumer.durable)
    assert info.ack_floor.stream_seq == len(events)
    assert info.delivered.consumer_seq == len(events)  # no redelivery
    assert info.num_redelivered == 0
    assert consumer.counters() == {
        "handled": 12,
        "retried": 0,
        "deferred": 0,
        "parked": 0,
        "skipped": 0,
        "settled_elsewhere": 0,
        "duplicates": 0,
    }
    assert await parked_messages(js, publisher.prefix) == []


async def test_a_step_the_committer_took_already_is_acknowledged_without_running_it_again(
    consumer_of: ConsumerFactory, js: JetStreamContext, unique: str
) -> None:
    """The API paid an order and ran ``ticketing`` on it: the worker's ``ticketing``
    consumer acknowledges the event unread; another role's consumer still runs it, and
    so does ``ticketing`` for an event the API did not handle."""
    settled_here = SettledHere()
    publisher = NatsEventPublisher(js, prefix=unique, settled=settled_here)
    done, open_ = (order_event(OrderFailed, uuid4(), reason=r) for r in ("done", "open"))
    settled_here.record(done.event_id, "ticketing")
    await publisher.publish([done, open_])
    assert settled_here.take(done.event_id) == [], "the publisher took what it sent"

    ticketing, other = Recorder(), Recorder()
    ticketing_consumer = consumer_of(ticketing, settled_by="ticketing")
    other_consumer = consumer_of(other, settled_by="order-saga", durable=f"other-{unique}")
    await ticketing_consumer.start()
    await other_consumer.start()
    await eventually(lambda: len(other.effects) == 2, what="the other role ran both")
    await eventually(lambda: settled(js, ticketing_consumer), what="ticketing settled both")

    assert [event for event, _ in ticketing.calls] == [open_]
    assert ticketing_consumer.settled_elsewhere == 1
    assert ticketing_consumer.handled == 1
    assert other_consumer.settled_elsewhere == 0


async def test_the_durable_is_created_with_explicit_acks_and_updated_in_place(
    consumer_of: ConsumerFactory, publisher: NatsEventPublisher, js: JetStreamContext
) -> None:
    first = [order_event() for _ in range(3)]
    await publisher.publish(first)
    recorder = Recorder()
    consumer = consumer_of(recorder, max_deliver=5)
    await consumer.start()
    await consumer.start()  # idempotent
    await eventually(lambda: len(recorder.effects) == 3)
    await consumer.stop()
    await consumer.stop()  # idempotent

    config = (await js.consumer_info(consumer.stream, consumer.durable)).config
    assert config.durable_name == consumer.durable
    assert config.ack_policy == AckPolicy.EXPLICIT
    assert config.deliver_policy == DeliverPolicy.ALL
    assert config.max_deliver == 5
    assert config.ack_wait == 1
    assert config.filter_subject == subject_name("order.>", publisher.prefix)

    later = order_event()
    await publisher.publish([later])
    again = consumer_of(recorder, max_deliver=3, ack_wait=timedelta(seconds=2))
    await again.start()
    await eventually(lambda: len(recorder.effects) == 4)

    config = (await js.consumer_info(consumer.stream, consumer.durable)).config
    assert (config.max_deliver, config.ack_wait) == (3, 2)
    assert [called for called, _ in recorder.calls] == [*first, later]  # kept its position
    assert again.handled == 1


async def test_several_subjects_share_one_filter_and_the_others_are_skipped(
    consumer_of: ConsumerFactory, publisher: NatsEventPublisher, js: JetStreamContext
) -> None:
    prefix = publisher.prefix
    order = uuid4()
    cancelled = order_event(OrderCancelled, order)
    expired = order_event(OrderExpired, order)
    failed = order_event(OrderFailed, order, reason="card")
    await publisher.publish([cancelled, expired, failed])
    recorder = Recorder()
    consumer = consumer_of(
        recorder,
        subjects=[
            subject_name("order.cancelled.*", prefix),
            subject_name("order.failed.*", prefix),
        ],
    )

    await consumer.start()
    await eventually(lambda: consumer.handled + consumer.skipped == 3)

    assert recorder.effects == [cancelled, failed]
    assert consumer.skipped == 1
    assert consumer.filter_subject == subject_name("order.>", prefix)
    info = await js.consumer_info(consumer.stream, consumer.durable)
    assert info.config.filter_subject == subject_name("order.>", prefix)
    await eventually(lambda: settled(js, consumer))


# --- crashes and stops ------------------------------------------------------------------------


async def test_a_crash_after_the_commit_and_before_the_ack_makes_the_redelivery_a_no_op(
    consumer_of: ConsumerFactory,
    publisher: NatsEventPublisher,
    js: JetStreamContext,
    nats_url: str,
) -> None:
    event, later = order_event(), order_event()
    await publisher.publish([event])
    recorder = Recorder()
    doomed = await nats.connect(nats_url, connect_timeout=5, allow_reconnect=False)

    async def commit_then_crash(received: DomainEvent) -> None:
        await recorder(received)  # committed
        await doomed.close()  # the process dies before the ack leaves it

    crashing = consumer_of(commit_then_crash, js=doomed.jetstream(), batch=1)
    await crashing.start()
    await eventually(lambda: doomed.is_closed, what="the crash")
    await crashing.stop()
    assert recorder.effects == [event]
    info = await js.consumer_info(crashing.stream, crashing.durable)
    assert info.num_ack_pending == 1  # never acknowledged

    await publisher.publish([later])
    successor = consumer_of(recorder)  # another process, same durable
    await successor.start()
    await eventually(lambda: recorder.effects == [event, later], what="the next event")
    await eventually(lambda: settled(js, successor), what="the redelivery acknowledged")

    assert recorder.calls_for(event) == 2  # delivered again...
    assert recorder.effects == [event, later]  # ...but its side effect happened once
    assert successor.handled == 2
    assert successor.parked == 0


async def test_stop_lets_the_running_handler_finish_and_gives_the_rest_back_unhandled(
    consumer_of: ConsumerFactory, publisher: NatsEventPublisher, js: JetStreamContext
) -> None:
    events = [order_event() for _ in range(3)]
    await publisher.publish(events)
    recorder = Recorder()
    started, go_on = asyncio.Event(), asyncio.Event()

    async def slow(event: DomainEvent) -> None:
        started.set()
        await go_on.wait()
        await recorder(event)

    # long ack_wait: what the stopped consumer gives back must come back at once
    consumer = consumer_of(slow, batch=10, ack_wait=timedelta(seconds=30))
    await consumer.start()
    await asyncio.wait_for(started.wait(), 10)
    stopping = asyncio.create_task(consumer.stop())
    await asyncio.sleep(0)
    assert not stopping.done()
    go_on.set()
    await asyncio.wait_for(stopping, 10)

    assert recorder.effects == events[:1]
    assert consumer.handled == 1
    assert not consumer.running

    successor = consumer_of(recorder, ack_wait=timedelta(seconds=30))
    await successor.start()
    await eventually(lambda: recorder.effects == events, within=5, what="the rest, in order")
    await eventually(lambda: settled(js, successor))
    assert successor.handled == 2


# --- failures ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [AdapterUnavailable("db down"), ConcurrencyError("saved meanwhile"), TimeoutError()],
    ids=["unavailable", "concurrency", "timeout"],
)
async def test_a_transient_error_is_retried_after_the_backoff_then_succeeds(
    consumer_of: ConsumerFactory,
    publisher: NatsEventPublisher,
    js: JetStreamContext,
    error: Exception,
) -> None:
    event, other = order_event(), order_event()
    recorder = Recorder()
    recorder.fail = lambda e, n: error if e == event and n == 1 else None
    consumer = consumer_of(recorder, backoff=(timedelta(milliseconds=300),))
    await consumer.start()

    await publisher.publish([event, other])
    await eventually(lambda: len(recorder.effects) == 2, what="both handled")

    # at least: a 2.9 server may deliver once more (nats-server #5305); the effect is once
    assert recorder.calls_for(event) >= 2
    first, second = recorder.times[event.event_id][:2]
    assert second - first >= 0.25  # nak'ed with the backoff's delay
    assert set(recorder.effects) == {event, other}
    assert len(recorder.effects) == 2
    assert consumer.retried >= 1
    assert (consumer.handled, consumer.parked) == (2, 0)
    await eventually(lambda: settled(js, consumer))
    assert await parked_messages(js, publisher.prefix) == []


async def test_a_handler_error_that_is_not_transient_parks_the_message_at_once(
    consumer_of: ConsumerFactory, publisher: NatsEventPublisher, js: JetStreamContext
) -> None:
    poison, after = order_event(), order_event()
    recorder = Recorder()
    recorder.fail = lambda e, n: ValueError("no such seat") if e == poison else None
    consumer = consumer_of(recorder, max_deliver=5)
    await consumer.start()

    with structlog.testing.capture_logs() as logs:
        await publisher.publish([poison, after])
        await eventually(lambda: consumer.parked == 1 and consumer.handled == 1)

    assert recorder.calls_for(poison) == 1  # not retried: it would fail again
    assert recorder.effects == [after]  # and the consumer went on
    await eventually(lambda: settled(js, consumer), what="nothing left to redeliver")
    [parked] = await parked_messages(js, publisher.prefix)
    headers = parked.headers or {}
    assert parked.subject == parked_subject(consumer.durable, publisher.prefix)
    assert headers[PARKED_DURABLE] == consumer.durable
    assert (
        headers[PARKED_SUBJECT] == f"{publisher.prefix.lower()}.order.cancelled.{poison.order_id}"
    )
    assert headers[PARKED_STREAM] == consumer.stream
    assert headers[PARKED_SEQUENCE] == "1"
    assert headers[PARKED_REASON] == ParkReason.FAILED
    assert headers[PARKED_ERROR] == "ValueError: no such seat"
    assert headers[PARKED_DELIVERIES] == "1"
    assert headers[PARKED_MSG_ID] == str(poison.event_id)
    assert parked.data == encode(poison, None, prefix=publisher.prefix)[1]
    [logged] = [entry for entry in logs if entry["event"] == "event_parked"]
    assert logged["log_level"] == "error"
    assert logged["durable"] == consumer.durable
    assert logged["event_id"] == str(poison.event_id)
    assert logged["reason"] == "handler_failed"


async def test_a_transient_error_that_never_ends_is_parked_after_max_deliver(
    consumer_of: ConsumerFactory, publisher: NatsEventPublisher, js: JetStreamContext
) -> None:
    poison, after = order_event(), order_event()
    recorder = Recorder()
    recorder.fail = lambda e, n: AdapterUnavailable("down for good") if e == poison else None
    consumer = consumer_of(recorder, max_deliver=3, backoff=(timedelta(milliseconds=50),))
    await consumer.start()

    await publisher.publish([poison, after])
    await eventually(lambda: consumer.parked == 1, what="parked")
    await eventually(lambda: settled(js, consumer), what="nothing left to redeliver")

    # three deliveries; nats-server < 2.10.14 may deliver once more (see the consumer's docs)
    assert recorder.calls_for(poison) >= 3
    assert consumer.retried == recorder.calls_for(poison) - 1
    assert recorder.effects == [after]
    assert (consumer.parked, consumer.handled) == (1, 1)
    [parked] = await parked_messages(js, publisher.prefix)
    headers = parked.headers or {}
    assert headers[PARKED_REASON] == ParkReason.EXHAUSTED
    assert headers[PARKED_DELIVERIES] == "3"
    assert headers[PARKED_ERROR] == "AdapterUnavailable: down for good"
    assert headers[PARKED_DURABLE] == consumer.durable


async def test_a_malformed_message_is_parked_and_never_reaches_the_handler(
    consumer_of: ConsumerFactory, publisher: NatsEventPublisher, js: JetStreamContext
) -> None:
    prefix = publisher.prefix
    subject = subject_name("order.cancelled.garbage", prefix)
    await js.publish(subject, b"\xff not an envelope", headers={MSG_ID_HEADER: "junk-1"})
    after = order_event()
    await publisher.publish([after])
    recorder = Recorder()
    consumer = consumer_of(recorder)

    await consumer.start()
    await eventually(lambda: consumer.parked == 1 and consumer.handled == 1)

    assert [called for called, _ in recorder.calls] == [after]
    await eventually(lambda: settled(js, consumer))
    [parked] = await parked_messages(js, prefix)
    headers = parked.headers or {}
    assert parked.data == b"\xff not an envelope"
    assert headers[PARKED_REASON] == ParkReason.MALFORMED
    assert headers[PARKED_SUBJECT] == subject
    assert headers[PARKED_ERROR].startswith("MalformedEnvelope: ")
    assert headers[PARKED_DELIVERIES] == "1"
    assert headers[PARKED_MSG_ID] == "junk-1"


async def test_an_unknown_event_type_waits_for_another_release_then_is_parked(
    consumer_of: ConsumerFactory, publisher: NatsEventPublisher, js: JetStreamContext
) -> None:
    prefix = publisher.prefix
    newer = order_event()
    subject, data, headers = encode(newer, None, prefix=prefix)
    await js.publish(
        subject,
        data.replace(b'"type":"OrderCancelled"', b'"type":"OrderTeleported"'),
        headers=headers,
    )
    after = order_event()
    await publisher.publish([after])
    recorder = Recorder()
    consumer = consumer_of(recorder, max_deliver=3)

    await consumer.start()
    await eventually(lambda: consumer.parked == 1, what="parked at last")

    assert consumer.deferred >= 2  # nak'ed for a consumer that knows the type
    assert [called for called, _ in recorder.calls] == [after]
    await eventually(lambda: settled(js, consumer))
    [parked] = await parked_messages(js, prefix)
    assert (parked.headers or {})[PARKED_REASON] == ParkReason.UNKNOWN_TYPE
    assert (parked.headers or {})[PARKED_DELIVERIES] == "3"
    assert "OrderTeleported" in (parked.headers or {})[PARKED_ERROR]


async def test_a_message_is_not_terminated_while_the_parking_stream_cannot_take_it(
    consumer_of: ConsumerFactory,
    publisher: NatsEventPublisher,
    js: JetStreamContext,
    parking: Parking,
) -> None:
    await js.delete_stream(parking.stream)
    poison = order_event()
    recorder = Recorder()
    recorder.fail = lambda e, n: ValueError("bad")
    consumer = consumer_of(recorder, max_deliver=10)

    with structlog.testing.capture_logs() as logs:
        await consumer.start()
        await publisher.publish([poison])
        await eventually(lambda: recorder.calls_for(poison) >= 2, what="a redelivery")
    assert consumer.parked == 0
    assert any(entry["event"] == "event_park_failed" for entry in logs)

    await parking.ensure()
    await eventually(lambda: consumer.parked == 1, what="parked once the stream is back")
    [parked] = await parked_messages(js, publisher.prefix)
    assert (parked.headers or {})[PARKED_REASON] == ParkReason.FAILED
    assert recorder.effects == []


# --- duplicates and sharing -------------------------------------------------------------------


async def test_the_same_event_published_twice_is_delivered_once(
    consumer_of: ConsumerFactory, publisher: NatsEventPublisher, js: JetStreamContext
) -> None:
    event, marker = order_event(), order_event()
    await publisher.publish([event])
    await publisher.publish([event])  # an outbox retry within the duplicate window
    subject, data, headers = encode(event, None, prefix=publisher.prefix)
    await js.publish(subject, data, headers=headers)
    await publisher.publish([marker])
    recorder = Recorder()
    consumer = consumer_of(recorder)

    await consumer.start()
    await eventually(lambda: recorder.calls_for(marker) == 1, what="the marker after it")

    assert [called for called, _ in recorder.calls] == [event, marker]  # handled in order
    assert recorder.effects == [event, marker]
    await eventually(lambda: settled(js, consumer))


async def test_two_consumers_on_one_durable_share_the_work_and_handle_each_event_once(
    consumer_of: ConsumerFactory,
    publisher: NatsEventPublisher,
    js: JetStreamContext,
    nats_url: str,
) -> None:
    events = [order_event() for _ in range(60)]
    recorder = Recorder()
    seen: dict[str, list[DomainEvent]] = {"one": [], "two": []}

    def handler(name: str) -> Handle:
        async def handle(event: DomainEvent) -> None:
            seen[name].append(event)
            await asyncio.sleep(0.005)  # some work, so that both get a share
            await recorder(event)

        return handle

    other = await nats.connect(nats_url, connect_timeout=5, allow_reconnect=False)
    try:
        one = consumer_of(handler("one"), batch=3)
        two = consumer_of(handler("two"), batch=3, js=other.jetstream())
        await one.start()
        await two.start()
        await publisher.publish(events)
        await eventually(lambda: len(recorder.effects) == len(events), what="all handled")
        await eventually(lambda: settled(js, one))
        await two.stop()
    finally:
        await other.close()

    assert sorted(e.event_id for e in recorder.effects) == sorted(e.event_id for e in events)
    assert len(recorder.calls) == len(events)  # each delivered to one of them, once
    assert seen["one"], "the first consumer got a share"
    assert seen["two"], "the second consumer got a share"
    assert one.handled + two.handled == len(events)


async def test_a_slow_handler_keeps_its_batch_from_going_to_another_consumer(
    consumer_of: ConsumerFactory, publisher: NatsEventPublisher, js: JetStreamContext
) -> None:
    events = [order_event() for _ in range(3)]
    recorder = Recorder()
    first_started = asyncio.Event()

    async def slow(event: DomainEvent) -> None:
        first_started.set()
        await asyncio.sleep(1.5)  # longer than ack_wait: kept in progress meanwhile
        await recorder(event)

    await publisher.publish(events)
    busy = consumer_of(slow, batch=3, ack_wait=timedelta(seconds=1))
    await busy.start()
    await asyncio.wait_for(first_started.wait(), 10)
    idle = consumer_of(recorder, ack_wait=timedelta(seconds=1))  # same durable, waiting
    await idle.start()

    await eventually(lambda: len(recorder.calls) == 3, what="the batch handled")
    await eventually(lambda: settled(js, busy))

    assert recorder.effects == events
    assert [called for called, _ in recorder.calls] == events  # one delivery each, in order
    assert (busy.handled, idle.handled) == (3, 0)
    info = await js.consumer_info(busy.stream, busy.durable)
    assert info.delivered.consumer_seq == 3  # nothing was redelivered


# --- a last delivery nobody answered ----------------------------------------------------------


async def test_a_message_whose_last_delivery_died_unanswered_is_parked_all_the_same(
    *,
    consumer_of: ConsumerFactory,
    publisher: NatsEventPublisher,
    js: JetStreamContext,
    nats_client: Client,
    parking: Parking,
    unique: str,
) -> None:
    """The process holding the last delivery dies (kill -9): JetStream gives up silently,
    but for its MAX_DELIVERIES advisory; the listener parks the message from its stream."""
    consumer = consumer_of(Recorder(), max_deliver=2)
    await consumer.ensure_durable()  # the durable, but no fetch loop: "a process" that dies
    listener = ExhaustedDeliveries(
        nats_client, js, parking, stream=consumer.stream, durable=consumer.durable
    )
    await listener.start()
    try:
        event = order_event()
        await publisher.publish([event])
        dying = await js.pull_subscribe_bind(durable=consumer.durable, stream=consumer.stream)
        for delivery in (1, 2):  # taken, never answered: the process died each time
            [msg] = await dying.fetch(1, timeout=5)
            assert msg.metadata.num_delivered == delivery
        with contextlib.suppress(nats.errors.TimeoutError):  # ack_wait runs out: no third
            await dying.fetch(1, timeout=2)
        await eventually(lambda: listener.parked == 1, what="the exhausted message parked")
        [copy] = await parked_messages(js, unique)
        assert copy.data is not None
        assert decode(copy.data)[0] == event
        assert copy.headers is not None
        assert copy.headers[PARKED_REASON] == ParkReason.EXHAUSTED.value
        assert copy.headers[PARKED_DELIVERIES] == "2"
        assert copy.headers[PARKED_DURABLE] == consumer.durable
        assert copy.headers[PARKED_MSG_ID] == str(event.event_id)
        assert "no answer in 2 deliveries" in copy.headers[PARKED_ERROR]
        assert await settled(js, consumer)
    finally:
        await listener.stop()


# --- subjects ---------------------------------------------------------------------------------


def test_subject_filters_match_as_nats_does() -> None:
    assert matches("a.b.*", "a.b.c")
    assert not matches("a.b.*", "a.b.c.d")
    assert not matches("a.b.*", "a.b")
    assert matches("a.>", "a.b.c")
    assert not matches("a.>", "a")
    assert matches("a.*.c", "a.x.c")
    assert not matches("a.b", "a.c")


def test_several_subjects_get_their_common_prefix_as_filter() -> None:
    assert server_filter(["p.order.created.*"]) == "p.order.created.*"
    assert server_filter(["p.order.created.*", "p.order.failed.*"]) == "p.order.>"
    assert server_filter(["p.payment.failed.*", "p.refund.succeeded.*"]) == "p.>"
    assert server_filter(["payment.failed.*", "refund.succeeded.*"]) is None
    assert server_filter(["a.b", "a.b.c"]) == "a.>"
    assert server_filter(["a.*.c", "a.b.d"]) == "a.>"


def test_bad_settings_are_refused(js: JetStreamContext, parking: Parking) -> None:
    async def noop(event: DomainEvent) -> None:
        return None

    good: dict[str, Any] = {"stream": "S", "durable": "d", "subjects": ["s.*"], "park": parking}
    for bad, complaint in (
        ({"durable": "a.b"}, "durable"),
        ({"subjects": []}, "subject"),
        ({"subjects": ["a..b"]}, "subject"),
        ({"subjects": ["a.>.b"]}, "subject"),
        ({"max_deliver": 0}, "max_deliver"),
        ({"batch": 0}, "batch"),
        ({"backoff": ()}, "backoff"),
        ({"ack_wait": timedelta(0)}, "ack_wait"),
    ):
        with pytest.raises(ValueError, match=complaint):
            EventConsumer(js, handle=noop, **(good | bad))
