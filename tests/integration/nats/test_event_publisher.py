"""The JetStream event publisher and its streams, against the real NATS server.

Each test sets the three streams up under a prefix of its own and deletes them at the
end; what reached the bus is read back from the streams message by message.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import attrs
import nats
import nats.errors
import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import RawStreamMsg, RetentionPolicy, StorageType
from nats.js.errors import NotFoundError

from openticket.adapters.nats.envelope import (
    MSG_ID_HEADER,
    Envelope,
    MalformedEnvelope,
    decode,
    encode,
)
from openticket.adapters.nats.publisher import NatsEventPublisher
from openticket.adapters.nats.streams import (
    ORDERS,
    PAYMENTS,
    ROUTES,
    SEATS,
    STREAMS,
    UnroutableEvent,
    ensure_streams,
    route_of,
    stream_name,
)
from openticket.adapters.serialization import EventCodec, UnknownEventType
from openticket.application.correlation import correlated
from openticket.application.ports.errors import AdapterUnavailable
from openticket.application.ports.messaging import EventPublisher
from openticket.domain.ordering import OrderEvent
from openticket.domain.payment import PaymentEvent
from openticket.domain.seating import SeatEvent, SeatsHeld
from openticket.domain.shared import DomainEvent, Money
from openticket.domain.ticketing import TicketEvent
from openticket.testing.contracts import EventPublisherContract
from openticket.testing.contracts._builders import T0, new_id, new_order, new_payment, seat

pytestmark = pytest.mark.nats

BASES = frozenset({SeatEvent, OrderEvent, PaymentEvent, TicketEvent})
"""Event classes that only share fields; no event is of exactly these types."""

MAX_AGES = {SEATS: timedelta(days=7), ORDERS: timedelta(days=30), PAYMENTS: timedelta(days=90)}


# --- reading the bus back ---------------------------------------------------------------------


async def stored_messages(js: JetStreamContext, prefix: str) -> list[RawStreamMsg]:
    """Every message of the streams of ``prefix`` (those that exist), in storing order.

    The publisher waits for each acknowledgement before it sends the next message, so
    the server's store times order messages across streams too.
    """
    found: list[RawStreamMsg] = []
    for layout in STREAMS:
        name = stream_name(layout.name, prefix)
        try:
            state = (await js.stream_info(name)).state
        except NotFoundError:
            continue
        if not state.messages:
            continue
        for seq in range(state.first_seq, state.last_seq + 1):
            message = await js.get_msg(name, seq)
            message.stream = name
            found.append(message)
    return sorted(found, key=lambda m: (m.time or T0, m.seq or 0))


def body(message: RawStreamMsg) -> bytes:
    assert message.data is not None
    return message.data


async def stored_events(js: JetStreamContext, prefix: str) -> list[DomainEvent]:
    return [decode(body(m))[0] for m in await stored_messages(js, prefix)]


class ReadablePublisher(NatsEventPublisher):
    """The publisher under test, with the JetStream context to read its streams back."""

    def __init__(self, js: JetStreamContext, prefix: str) -> None:
        super().__init__(js, prefix=prefix)
        self.js = js


@pytest.fixture
def js(event_streams: JetStreamContext) -> JetStreamContext:
    """JetStream with the test's own event streams."""
    return event_streams


@pytest.fixture
def publisher(js: JetStreamContext, unique: str) -> ReadablePublisher:
    return ReadablePublisher(js, unique)


def some_events() -> list[DomainEvent]:
    """An order paid through: order and payment events, in the order they happened."""
    order = new_order()
    payment = new_payment(order)
    order.start_payment(payment.payment_id, now=T0 + timedelta(seconds=1), ids=new_id)
    payment.mark_pending("tx-1")
    payment.succeed(now=T0 + timedelta(seconds=2), ids=new_id)
    order.complete(payment.payment_id, now=T0 + timedelta(seconds=3), ids=new_id)
    events = [*order.collect_events(), *payment.collect_events()]
    return sorted(events, key=lambda e: e.occurred_at)


# --- an example of every event type -----------------------------------------------------------

_BY_NAME: dict[str, Any] = {"seat_id": seat("A", 1, 1), "area_id": "A", "provider": "mock"}


def _example_value(name: str, hint: Any) -> Any:
    if name in _BY_NAME:
        return _BY_NAME[name]
    while hasattr(hint, "__supertype__"):  # NewType ids
        hint = hint.__supertype__
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return _example_value(name, next(a for a in args if a is not type(None)))
    if origin is tuple:
        return (seat("A", 1, 2),) if "seat" in name else ()
    samples: dict[Any, Any] = {
        UUID: uuid4(),
        datetime: T0,
        str: f"some {name}",
        int: 7,
        Decimal: Decimal("1.50"),
        Money: Money(Decimal("25.00"), "EUR"),
    }
    return samples[hint]


def example_of(cls: type[DomainEvent]) -> DomainEvent:
    """An event of type ``cls`` with a plausible value in every field."""
    hints = typing.get_type_hints(cls)
    values = {f.name: _example_value(f.name, hints[f.name]) for f in attrs.fields(cls)}
    return cls(**values)


def every_event_type() -> list[type[DomainEvent]]:
    """OpenTicket's own event types (other test modules loaded may define their own)."""
    return [
        cls
        for cls in EventCodec().event_types.values()
        if cls not in BASES and cls.__module__.startswith("openticket.")
    ]


# --- the port's contract ------------------------------------------------------------------------


class TestNatsEventPublisher(EventPublisherContract):
    """The ``EventPublisher`` contract, read back from the JetStream streams."""

    async def published_events(self, publisher: EventPublisher) -> Sequence[DomainEvent]:
        assert isinstance(publisher, ReadablePublisher)
        return await stored_events(publisher.js, publisher.prefix)


# --- what goes on the wire ----------------------------------------------------------------------


async def test_each_event_goes_to_its_subject_with_its_id_and_the_requests_correlation(
    publisher: ReadablePublisher, js: JetStreamContext, unique: str
) -> None:
    events = some_events()
    with correlated("req-42"):
        await publisher.publish(events)

    messages = await stored_messages(js, unique)
    assert len(messages) == len(events)
    for event, message in zip(events, messages, strict=True):
        route = route_of(event)
        stored, envelope = decode(body(message))
        assert stored == event
        assert message.stream == stream_name(route.stream, unique)
        assert message.subject == route.subject(event, unique)
        assert message.subject is not None
        assert message.subject.startswith(f"{unique.lower()}.")
        assert (message.headers or {}).get(MSG_ID_HEADER) == str(event.event_id)
        assert envelope.correlation_id == "req-42"
        assert envelope.key == message.subject.rsplit(".", 1)[1]
        assert envelope.type == event.event_type
    assert publisher.duplicates == 0


async def test_without_a_request_the_correlation_id_is_null(
    publisher: ReadablePublisher, js: JetStreamContext, unique: str
) -> None:
    with correlated(None):
        await publisher.publish(some_events()[:1])
    [message] = await stored_messages(js, unique)
    assert decode(body(message))[1].correlation_id is None


async def test_the_same_event_twice_is_stored_once_and_acknowledged_as_a_duplicate(
    publisher: ReadablePublisher, js: JetStreamContext, unique: str
) -> None:
    first, second, *_ = some_events()
    await publisher.publish([first])
    await publisher.publish([first])
    assert await stored_events(js, unique) == [first]
    assert publisher.duplicates == 1

    # what the publisher relies on: the server answers a repeat of a Nats-Msg-Id so
    subject, data, headers = encode(second, None, prefix=unique)
    ack = await js.publish(subject, data, headers=dict(headers))
    again = await js.publish(subject, data, headers=dict(headers))
    assert not ack.duplicate
    assert again.duplicate is True
    assert again.seq == ack.seq
    assert await stored_events(js, unique) == [first, second]


async def test_every_event_type_goes_to_a_subject_of_its_stream_and_comes_back_equal(
    publisher: ReadablePublisher, js: JetStreamContext, unique: str
) -> None:
    kinds = every_event_type()
    assert set(ROUTES) == set(kinds), "every event type needs a route, and only those"
    events = [example_of(cls) for cls in kinds]

    await publisher.publish(events)

    messages = await stored_messages(js, unique)
    assert [decode(body(m))[0] for m in messages] == events
    for event, message in zip(events, messages, strict=True):
        route = route_of(event)
        assert message.stream == stream_name(route.stream, unique), event.event_type
        assert message.subject == route.subject(event, unique)
        assert decode(body(message))[1].key == str(getattr(event, route.key_field))


async def test_an_event_of_a_type_without_a_route_is_refused_before_anything_is_sent(
    publisher: ReadablePublisher, js: JetStreamContext, unique: str
) -> None:
    @attrs.frozen(kw_only=True)
    class Stray(DomainEvent):
        pass

    events = some_events()
    with pytest.raises(UnroutableEvent):
        await publisher.publish([Stray(event_id=uuid4(), occurred_at=T0), *events])
    assert await stored_events(js, unique) == []


# --- the envelope -------------------------------------------------------------------------------


def test_the_envelope_round_trip_keeps_the_event_its_correlation_id_and_key() -> None:
    event = example_of(SeatsHeld)
    assert isinstance(event, SeatsHeld)

    subject, data, headers = encode(event, "req-7", prefix="T1A2")
    decoded, envelope = decode(data)

    assert decoded == event
    assert envelope == Envelope(
        event_id=event.event_id,
        type="SeatsHeld",
        occurred_at=event.occurred_at,
        correlation_id="req-7",
        key=str(event.session_id),
        payload=EventCodec().encode(event)[1],
    )
    assert subject == f"t1a2.seat.locked.{event.session_id}"
    assert headers == {"Nats-Msg-Id": str(event.event_id)}


def test_a_body_that_is_not_an_envelope_is_malformed() -> None:
    event = some_events()[0]
    _, data, _ = encode(event, None)
    with pytest.raises(MalformedEnvelope):
        decode(b"not json")
    with pytest.raises(MalformedEnvelope):
        decode(b'{"type": "OrderCreated"}')
    other = some_events()[0]
    _, other_data, _ = encode(other, None)
    forged = data.replace(str(event.event_id).encode(), str(other.event_id).encode(), 1)
    with pytest.raises(MalformedEnvelope):
        decode(forged)
    assert decode(other_data)[0] == other


def test_an_envelope_of_an_unknown_event_type_is_left_for_a_newer_release() -> None:
    _, data, _ = encode(some_events()[0], None)
    with pytest.raises(UnknownEventType):
        decode(data.replace(b'"type":"OrderCreated"', b'"type":"OrderTeleported"'))


def test_a_prefix_that_cannot_name_a_stream_is_refused(js: JetStreamContext) -> None:
    with pytest.raises(ValueError, match="prefix"):
        NatsEventPublisher(js, prefix="a.b")


# --- the streams --------------------------------------------------------------------------------


async def test_the_streams_are_set_up_as_the_seed_says(js: JetStreamContext, unique: str) -> None:
    for layout in STREAMS:
        config = (await js.stream_info(stream_name(layout.name, unique))).config
        assert config.name == f"{unique}_{layout.name}"
        assert config.storage == StorageType.FILE
        assert config.retention == RetentionPolicy.LIMITS
        assert config.num_replicas == 1
        assert config.max_age == MAX_AGES[layout.name].total_seconds()
        assert config.duplicate_window == 120
        assert config.subjects == layout.subjects(unique)
        assert all(s.startswith(f"{unique.lower()}.") for s in config.subjects)
    seats_subjects = (await js.stream_info(stream_name(SEATS, unique))).config.subjects or []
    for leaf in ("seat.locked", "seat.lock.failed", "seat.released"):
        assert f"{unique.lower()}.{leaf}.*" in seats_subjects
    # seat commands are core request/reply: a stream must not capture (and answer) them
    assert f"{unique.lower()}.seat.lock.request.*" not in seats_subjects


async def test_ensure_streams_again_changes_nothing_and_keeps_the_messages(
    publisher: ReadablePublisher, js: JetStreamContext, unique: str
) -> None:
    events = some_events()
    await publisher.publish(events)
    before = [await js.stream_info(stream_name(s.name, unique)) for s in STREAMS]

    await ensure_streams(js, prefix=unique)

    after = [await js.stream_info(stream_name(s.name, unique)) for s in STREAMS]
    assert [i.config for i in after] == [i.config for i in before]
    assert [i.created for i in after] == [i.created for i in before]
    assert await stored_events(js, unique) == events


async def test_a_changed_duplicate_window_is_applied_to_the_existing_streams(
    publisher: ReadablePublisher, js: JetStreamContext, unique: str
) -> None:
    events = some_events()
    await publisher.publish(events)

    await ensure_streams(js, prefix=unique, duplicate_window=timedelta(seconds=30))

    for layout in STREAMS:
        config = (await js.stream_info(stream_name(layout.name, unique))).config
        assert config.duplicate_window == 30
        assert config.max_age == MAX_AGES[layout.name].total_seconds()
    assert await stored_events(js, unique) == events  # updated, not made afresh


async def test_subjects_a_newer_release_added_survive_an_older_ensure_streams(
    js: JetStreamContext, unique: str
) -> None:
    name = stream_name(SEATS, unique)
    config = (await js.stream_info(name)).config
    newer = f"{unique.lower()}.seat.reserved.*"
    await js.update_stream(config.evolve(subjects=[*(config.subjects or []), newer]))

    await ensure_streams(js, prefix=unique, duplicate_window=timedelta(seconds=45))

    updated = (await js.stream_info(name)).config
    assert newer in (updated.subjects or [])
    assert set(STREAMS[0].subjects(unique)) <= set(updated.subjects or [])
    assert updated.duplicate_window == 45


async def test_ensure_streams_creates_streams_that_were_deleted(
    js: JetStreamContext, unique: str
) -> None:
    await js.delete_stream(stream_name(PAYMENTS, unique))
    await ensure_streams(js, prefix=unique)
    info = await js.stream_info(stream_name(PAYMENTS, unique))
    assert info.config.max_age == MAX_AGES[PAYMENTS].total_seconds()


# --- failures -----------------------------------------------------------------------------------


async def test_a_closed_connection_makes_the_bus_unavailable(
    js: JetStreamContext, nats_url: str, unique: str
) -> None:
    client = await nats.connect(nats_url, connect_timeout=5, allow_reconnect=False)
    gone = NatsEventPublisher(client.jetstream(), prefix=unique)
    await client.close()

    with pytest.raises(AdapterUnavailable) as raised:
        await gone.publish(some_events())
    assert isinstance(raised.value.__cause__, nats.errors.Error)
    with pytest.raises(AdapterUnavailable):
        await ensure_streams(client.jetstream(), prefix=unique)
    assert await stored_events(js, unique) == []


async def test_a_missing_stream_stops_the_batch_and_a_retry_completes_it_in_order(
    publisher: ReadablePublisher, js: JetStreamContext, unique: str
) -> None:
    events = some_events()
    first_payment = next(i for i, e in enumerate(events) if isinstance(e, PaymentEvent))
    await js.delete_stream(stream_name(PAYMENTS, unique))

    with pytest.raises(AdapterUnavailable) as raised:
        await publisher.publish(events)
    assert isinstance(raised.value.__cause__, nats.errors.Error)
    # what came before the failure is stored; nothing after it was sent
    assert await stored_events(js, unique) == events[:first_payment]

    await ensure_streams(js, prefix=unique)
    await publisher.publish(events)  # the outbox's retry
    assert await stored_events(js, unique) == events
    assert publisher.duplicates == first_payment


async def test_streams_of_another_prefix_see_nothing(
    publisher: ReadablePublisher, nats_client: Client, unique: str
) -> None:
    other = f"{unique}X"
    js = nats_client.jetstream()
    await ensure_streams(js, prefix=other)
    try:
        await publisher.publish(some_events())
        assert await stored_events(js, other) == []
    finally:
        for layout in STREAMS:
            await js.delete_stream(stream_name(layout.name, other))
