"""The id of the request that set work off, followed into the events it causes."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

correlation_id: ContextVar[str | None] = ContextVar("openticket_correlation_id", default=None)
"""Set by an entrypoint (the HTTP request id); read where work changes hands (actors)."""


@contextlib.contextmanager
def correlated(value: str | None) -> Iterator[None]:
    """Run what the block does as part of the request ``value`` (``None``: of none)."""
    token = correlation_id.set(value)
    try:
        yield
    finally:
        correlation_id.reset(token)
