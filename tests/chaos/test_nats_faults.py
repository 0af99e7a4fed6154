"""Reliability 10: nats-server killed with -9 mid-sale and started again.

Seat commands (request/reply to the workers) and the saga's streams stop for the
outage; the outbox keeps every committed event and republishes it once NATS is back,
the durable consumers pick up where they were, and no order event is lost.
"""

from __future__ import annotations

import pytest

from .conftest import Sale, sale_through

pytestmark = pytest.mark.chaos


async def test_nats_killed_and_restarted_mid_sale(sale: Sale) -> None:
    summary = await sale_through(
        sale, "nats kill -9", lambda: sale.servers.nats.restart(down_for=2)
    )
    assert summary["sale"]["selling_again_after_s"] is not None
