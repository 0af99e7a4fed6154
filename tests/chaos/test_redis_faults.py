"""Reliability 11 and 28: Redis restarted without persistence, or flushed, mid-sale.

Every seat lock, the fencing counters, the seat-status cache and the rate-limit windows
go. The partition actors still know what they granted: they keep tokens growing and
restore a paid hold before selling it; the database fences the rest. Afterwards every
paying buyer has tickets or exactly one refund, and the audit holds.
"""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import Sale, readiness_probe, said_down, sale_through

pytestmark = pytest.mark.chaos


async def test_redis_restarted_without_persistence_mid_sale(sale: Sale) -> None:
    seen: list[dict[str, Any]] = []
    summary = await sale_through(
        sale,
        "redis restarted empty",
        lambda: sale.servers.redis.restart(down_for=2, while_down=readiness_probe(sale.base, seen)),
    )
    after = summary["sale"]["after"]["statuses"]
    # nobody else's seats (a buyer at their own cap, 409 user_limit_reached, is not the fault)
    assert not any(code.startswith("409 seat_unavailable") for code in after), after
    assert said_down(seen, "redis"), seen  # readiness named it, with Retry-After


async def test_redis_flushed_with_payments_in_flight(sale: Sale) -> None:
    summary = await sale_through(sale, "redis flushed", sale.servers.redis.flush)
    assert summary["audit"]["purchases"] > 0
