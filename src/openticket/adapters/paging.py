"""Opaque list cursors shared by the adapters: a cursor names the last row handed out.

A cursor is the row's position as eight big-endian bytes in unpadded URL-safe base64:
eleven characters. Every string of that shape (``CURSOR_PATTERN``) is a cursor some
list could hand out, so a client that keeps to the pattern is never refused; anything
else is ``InvalidCursor`` (400), never a server error.
"""

from __future__ import annotations

import base64
import binascii
import re

from openticket.application.ports.repositories import InvalidCursor

CURSOR_PATTERN = r"^[A-Za-f][A-Za-z0-9_-]{9}[AEIMQUYcgkosw048]$"
"""Eleven base64url characters of a position below 2**63: the first character carries
the sign bit (0), the last one two padding bits (0)."""

_CURSOR = re.compile(CURSOR_PATTERN)


def encode_cursor(position: int) -> str:
    """The cursor of the page after the row at ``position``."""
    return base64.urlsafe_b64encode(position.to_bytes(8, "big")).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int:
    """The position a cursor names (0 for the first page); ``InvalidCursor`` if malformed."""
    if cursor is None:
        return 0
    if not _CURSOR.fullmatch(cursor):
        raise InvalidCursor("not a cursor of this list")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=")
    except (ValueError, binascii.Error) as e:  # unreachable after the pattern; kept safe
        raise InvalidCursor("not a cursor of this list") from e
    return int.from_bytes(raw, "big")
