"""Production sources of time, ids and ticket codes."""

from __future__ import annotations

import os
import random
import secrets
import time
import uuid
from datetime import UTC, datetime

_UUID_SAFE = uuid.SafeUUID.unknown
_LAYOUT_BITS = (0xF << 76) | (0x3 << 62)  # where the version and the variant go
_VERSION_7_RFC_VARIANT = (0x7 << 76) | (0x2 << 62)


class SystemClock:
    """The ``Clock`` of the machine, in UTC."""

    def now(self) -> datetime:
        """The current moment, timezone-aware UTC."""
        return datetime.now(UTC)


class RandomIdGenerator:
    """Time-ordered random ids (UUID version 7): 48 bits of milliseconds, 74 random bits.

    Ordered by creation time, they keep database indexes compact. They are ids, not
    secrets — what must be unguessable (ticket codes) comes from ``secrets``. The
    random bits come from a generator seeded from the OS, so ids stay unique across
    processes; making one costs a fraction of ``uuid4()``, which asks the OS each time.
    """

    def __init__(self) -> None:
        self._random_bits = random.Random(os.urandom(32)).getrandbits  # noqa: S311  # ids, not secrets

    def new_id(self) -> uuid.UUID:
        """A fresh id, later ids sorting after earlier ones (per millisecond)."""
        value = (
            (time.time_ns() // 1_000_000) << 80
            | (self._random_bits(80) & ~_LAYOUT_BITS)
            | _VERSION_7_RFC_VARIANT
        )
        # the same object uuid.UUID(int=value) builds, without its argument checks
        made = object.__new__(uuid.UUID)
        object.__setattr__(made, "int", value)
        object.__setattr__(made, "is_safe", _UUID_SAFE)
        return made


class SecretTicketCodeGenerator:
    """Ticket codes from the OS's cryptographic random source (192 bits)."""

    def new_code(self) -> str:
        """A fresh unguessable URL-safe code of 32 characters."""
        return secrets.token_urlsafe(24)
