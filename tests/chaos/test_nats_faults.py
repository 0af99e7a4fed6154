"""Reliability 10: nats-server killed with -9 mid-sale and started again.

Seat commands (request/reply to the workers) and the saga's streams stop for the
outage; the outbox keeps every committed event and republishes it once NATS is back,
the durable consumers pick up where they were, and no order event is lost. Readiness
says NATS is down, with ``Retry-After``, while it is.
"""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import Sale, readiness_probe, said_down, sale_through

pytestmark = pytest.mark.chaos


async def test_nats_killed_and_restarted_mid_sale(sale: Sale) -> None:
    seen: list[dict[str, Any]] = []
    summary = await sale_through(
        sale,
        "nats kill -9",
        lambda: sale.servers.nats.restart(down_for=2, while_down=readiness_probe(sale.base, seen)),
    )
    assert summary["sale"]["selling_again_after_s"] is not None
    assert said_down(seen, "nats"), seen
