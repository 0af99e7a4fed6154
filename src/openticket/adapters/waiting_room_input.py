"""The input every waiting-room store refuses, checked alike by each adapter (before any change)."""

from __future__ import annotations

from datetime import datetime


def checked_ticket(ticket: object) -> float:
    """A drawn pre-queue ticket, refused (``ValueError``) unless it is a float in [0, 1)."""
    if not isinstance(ticket, float) or not 0.0 <= ticket < 1.0:
        raise ValueError(f"a pre-queue ticket must be a float in [0, 1), the draw gave {ticket!r}")
    return ticket


def check_pre_queue_until(pre_queue_until: datetime | None) -> None:
    """Refuse (``ValueError``) a naive ``pre_queue_until``: it cannot be compared with now."""
    if pre_queue_until is not None and pre_queue_until.tzinfo is None:
        raise ValueError(f"pre_queue_until must be timezone-aware, not {pre_queue_until}")


def check_holder(holder: str) -> None:
    """Refuse (``ValueError``) an empty lease holder: it could not be told from no holder."""
    if not holder:
        raise ValueError("a lease holder must be named")
