"""The audit's count of parked messages, read from a real PARKED stream."""

from __future__ import annotations

import contextlib

from nats.aio.client import Client

from openticket.adapters.nats.consumer import ensure_parking, parked_stream, parked_subject
from openticket.adapters.nats.parked import NatsParkedMessages


async def test_the_parked_messages_of_a_deployment_are_counted(
    nats_client: Client, unique: str
) -> None:
    js = nats_client.jetstream()
    parked = NatsParkedMessages(js, prefix=f"T{unique}")
    try:
        assert await parked.parked() == 0  # no stream yet: nothing was ever parked
        await ensure_parking(js, f"T{unique}")
        for n in range(3):
            await js.publish(parked_subject("ticketing", f"T{unique}"), f"poison {n}".encode())
        assert await parked.parked() == 3
    finally:
        with contextlib.suppress(Exception):
            await js.delete_stream(parked_stream(f"T{unique}"))
