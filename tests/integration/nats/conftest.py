"""NATS fixtures: a connected client, and names of the test's own for streams and buckets."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator

import nats
import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from openticket.adapters.nats.streams import STREAMS, ensure_streams, stream_name

pytestmark = pytest.mark.nats


@pytest.fixture
async def nats_client(nats_url: str) -> AsyncIterator[Client]:
    """A client of the test server, drained and closed at the end."""
    client = await nats.connect(nats_url, connect_timeout=5, allow_reconnect=False)
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
def unique() -> str:
    """A suffix of the test's own for stream, consumer, bucket and subject names."""
    return uuid.uuid4().hex[:10].upper()


@pytest.fixture
async def event_streams(nats_client: Client, unique: str) -> AsyncIterator[JetStreamContext]:
    """JetStream with the test's own event streams (prefix ``unique``), deleted at the end."""
    context = nats_client.jetstream()
    await ensure_streams(context, prefix=unique)
    try:
        yield context
    finally:
        for layout in STREAMS:
            with contextlib.suppress(NotFoundError):
                await context.delete_stream(stream_name(layout.name, unique))
