"""Reliability 29 (first half): PostgreSQL restarted immediately mid-sale.

``pg_ctl restart -m immediate``: every connection cut, no checkpoint. Requests in flight
fail with 503 and nothing they did half is kept; pools replace their dead connections;
events committed before the cut are in the outbox and go out. Readiness says the
database is down, with ``Retry-After``, while it is.
"""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import Sale, readiness_probe, said_down, sale_through

pytestmark = pytest.mark.chaos


async def test_postgres_restarted_immediately_mid_sale(sale: Sale) -> None:
    seen: list[dict[str, Any]] = []
    summary = await sale_through(
        sale,
        "postgres restart -m immediate",
        lambda: sale.servers.postgres.restart(
            down_for=2, while_down=readiness_probe(sale.base, seen)
        ),
    )
    assert summary["sale"]["selling_again_after_s"] is not None
    assert said_down(seen, "database"), seen
