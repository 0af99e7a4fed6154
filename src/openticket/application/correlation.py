"""The id of the request that set work off, followed into the events it causes."""

from __future__ import annotations

from contextvars import ContextVar

correlation_id: ContextVar[str | None] = ContextVar("openticket_correlation_id", default=None)
"""Set by an entrypoint (the HTTP request id); read where work changes hands (actors)."""
