"""Production sources of time, ids and ticket codes."""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime


class SystemClock:
    """The ``Clock`` of the machine, in UTC."""

    def now(self) -> datetime:
        """The current moment, timezone-aware UTC."""
        return datetime.now(UTC)


class RandomIdGenerator:
    """Random version-4 UUIDs."""

    def new_id(self) -> uuid.UUID:
        """A fresh random id."""
        return uuid.uuid4()


class SecretTicketCodeGenerator:
    """Ticket codes from the OS's cryptographic random source (192 bits)."""

    def new_code(self) -> str:
        """A fresh unguessable URL-safe code of 32 characters."""
        return secrets.token_urlsafe(24)
