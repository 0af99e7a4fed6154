"""Slow payments under load: half the buyers' money arrives only after their hold expired.

Their seats go back on sale at expiry and may be bought by others; the late money is
found by reconciliation with the provider and refunded exactly once, never turned into
a second ticket.
"""

from __future__ import annotations

import pytest

from . import sale as sales
from .conftest import Sale, sale_through

pytestmark = pytest.mark.chaos


async def test_late_payers_under_load_are_refunded_once(
    sale: Sale, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sales, "LATE", 0.5)
    summary = await sale_through(sale, "slow payments", None)
    assert summary["audit"]["payments"].get("refunded", 0) > 0
