"""Opaque list cursors shared by the adapters: a cursor names the last row handed out."""

from __future__ import annotations

import base64

from openticket.application.ports.repositories import InvalidCursor


def encode_cursor(position: int) -> str:
    """The cursor of the page after the row at ``position``."""
    return base64.urlsafe_b64encode(f"p{position}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int:
    """The position a cursor names (0 for the first page); ``InvalidCursor`` if forged."""
    if cursor is None:
        return 0
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if not raw.startswith("p"):
            raise ValueError(raw)
        position = int(raw[1:])
    except (ValueError, UnicodeDecodeError) as e:
        raise InvalidCursor(f"not a cursor of this list: {cursor!r}") from e
    if position < 0 or position >= 2**63:
        raise InvalidCursor(f"not a cursor of this list: {cursor!r}")
    return position
