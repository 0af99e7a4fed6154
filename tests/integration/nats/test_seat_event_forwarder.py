"""A worker's seat events on their way to the SEATS stream, against the real NATS server.

The forwarder queues each event the actors decide and sends what piled up as one
window. What it stored is read back from the stream by an ordered consumer, as the
API processes' live feeds read it. Each test has streams of its own (a unique
prefix), deleted at the end.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import DeliverPolicy

from openticket.adapters.nats.envelope import MSG_ID_HEADER, Envelope, decode
from openticket.adapters.nats.feeds import SeatEventForwarder
from openticket.adapters.nats.publisher import NatsEventPublisher
from openticket.adapters.nats.streams import (
    SEATS,
    stream_name,
    subject_name,
)
from openticket.application.correlation import correlated
from openticket.domain.seating import SeatsHeld
from openticket.domain.shared import AreaId, HoldId, OrderId, SessionId, UserId
from openticket.testing.contracts._builders import T0, new_id, seat

pytestmark = pytest.mark.nats

SESSION = SessionId(new_id())


@pytest.fixture
def js(event_streams: JetStreamContext) -> JetStreamContext:
    """JetStream with the test's own event streams."""
    return event_streams


@pytest.fixture
def publisher(js: JetStreamContext, nats_client: Client, unique: str) -> NatsEventPublisher:
    return NatsEventPublisher(js, prefix=unique, client=nats_client)


@pytest.fixture
async def forwarder(publisher: NatsEventPublisher) -> AsyncIterator[SeatEventForwarder]:
    """A forwarder that is stopped at the end even if the test fails half-way."""
    forward = SeatEventForwarder(publisher)
    try:
        yield forward
    finally:
        await forward.stop()


def seat_held(n: int) -> SeatsHeld:
    """The ``n``-th hold of one session: a seat of its own, a token growing with ``n``."""
    return SeatsHeld(
        event_id=new_id(),
        occurred_at=T0 + timedelta(milliseconds=n),
        session_id=SESSION,
        area_id=AreaId("A"),
        hold_id=HoldId(new_id()),
        order_id=OrderId(new_id()),
        seat_ids=(seat("A", 1 + n // 100, 1 + n % 100),),
        holder_id=UserId(new_id()),
        fencing_token=n + 1,
        expires_at=T0 + timedelta(minutes=2, milliseconds=n),
    )


async def stored_seat_messages(
    js: JetStreamContext, prefix: str, count: int
) -> list[tuple[SeatsHeld, Envelope, dict[str, str]]]:
    """The first ``count`` messages of the SEATS stream, in stream order, decoded.

    Read by an ordered consumer, as a live feed reads them; fails if fewer arrive.
    """
    subscription = await js.subscribe(
        subject_name("seat.>", prefix),
        stream=stream_name(SEATS, prefix),
        ordered_consumer=True,
        deliver_policy=DeliverPolicy.ALL,
    )
    found: list[tuple[SeatsHeld, Envelope, dict[str, str]]] = []
    try:
        for _ in range(count):
            message = await subscription.next_msg(timeout=5)
            event, envelope = decode(message.data)
            assert isinstance(event, SeatsHeld)
            found.append((event, envelope, dict(message.headers or {})))
    finally:
        await subscription.unsubscribe()
    return found


async def stored_count(js: JetStreamContext, prefix: str) -> int:
    return (await js.stream_info(stream_name(SEATS, prefix))).state.messages


@pytest.mark.parametrize("max_window", [1_000, 64], ids=["one-window", "many-windows"])
async def test_five_hundred_seat_events_handed_over_one_by_one_are_stored_in_that_order(
    publisher: NatsEventPublisher, js: JetStreamContext, unique: str, max_window: int
) -> None:
    forwarder = SeatEventForwarder(publisher, max_window=max_window)
    events = [seat_held(n) for n in range(500)]
    try:
        for n, event in enumerate(events, 1):
            await forwarder(event)
            if not n % 50:  # let the forwarder send while more events come in
                await asyncio.sleep(0)
    finally:
        await forwarder.stop()

    assert forwarder.forwarded == 500
    assert await stored_count(js, unique) == 500
    stored = await stored_seat_messages(js, unique, 500)
    assert [event for event, _, _ in stored] == events
    assert all(headers[MSG_ID_HEADER] == str(e.event_id) for e, _, headers in stored)
    assert publisher.duplicates == 0


async def test_each_stored_seat_event_carries_the_request_id_it_was_handed_over_under(
    forwarder: SeatEventForwarder, js: JetStreamContext, unique: str
) -> None:
    events = [seat_held(n) for n in range(6)]
    requests = ["req-1", "req-1", None, "req-2", "req-3", None]
    for event, request in zip(events, requests, strict=True):
        with correlated(request):
            await forwarder(event)
    # the request id is taken when the event is handed over, not when it is sent
    with correlated("req-after"):
        await forwarder.stop()

    stored = await stored_seat_messages(js, unique, len(events))
    assert [event for event, _, _ in stored] == events
    assert [envelope.correlation_id for _, envelope, _ in stored] == requests


async def test_a_window_sent_again_stores_nothing_twice(
    publisher: NatsEventPublisher, js: JetStreamContext, unique: str
) -> None:
    events = [seat_held(n) for n in range(20)]
    window = [(event, "req-9") for event in events]
    await publisher.publish_window(window)
    assert publisher.duplicates == 0
    assert await stored_count(js, unique) == 20

    await publisher.publish_window(window)
    await publisher.publish_window(window[5:10])

    assert publisher.duplicates == 2  # the acknowledged last of each window
    assert await stored_count(js, unique) == 20
    stored = await stored_seat_messages(js, unique, 20)
    assert [event for event, _, _ in stored] == events
