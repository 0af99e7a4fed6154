"""Reliability 11 and 28: Redis restarted without persistence, or flushed, mid-sale."""

from __future__ import annotations

import json

import pytest

from .conftest import HOLD_TTL, Sale, audit_until_it_holds, parked_reasons
from .sale import flash_sale

pytestmark = pytest.mark.chaos


async def test_redis_restarted_without_persistence_mid_sale_loses_nothing(sale: Sale) -> None:
    log = await flash_sale(
        sale.base,
        sale.session_id,
        sale.buyers,
        concurrency=100,
        seconds=14,
        fault=lambda: sale.servers.redis.restart(down_for=2),
        fault_at=5,
    )
    settled_in, report = await audit_until_it_holds(sale, within=HOLD_TTL + 60)
    print(
        json.dumps({"sale": log.summary(), "settled_in_s": round(settled_in, 1), "audit": report})
    )
    assert report["holds"], json.dumps(
        {"findings": report["findings"][:10], "parked": await parked_reasons(sale)}, indent=1
    )
