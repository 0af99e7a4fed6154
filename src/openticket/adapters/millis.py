"""Times as whole milliseconds since the Unix epoch: what Redis scripts and KV values keep."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final

EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
MILLISECOND: Final = timedelta(milliseconds=1)


def millis(moment: datetime) -> int:
    """Whole milliseconds since the epoch (rounded down) of an aware datetime."""
    return (moment - EPOCH) // MILLISECOND


def from_millis(ms: bytes | str | int) -> datetime:
    """The moment ``ms`` milliseconds after the epoch."""
    return EPOCH + timedelta(milliseconds=int(ms))


def whole_millis(moment: datetime) -> datetime:
    """``moment`` cut to whole milliseconds: what a store keeps and answers."""
    micro = moment.microsecond
    if micro % 1000:
        return moment.replace(microsecond=micro - micro % 1000)
    return moment
