"""structlog, configured once at the entrypoint: JSON lines with the request id bound.

A line written inside a trace's span (:mod:`openticket.entrypoints.tracing`) carries its
``trace_id`` and ``span_id``, so a log search finds the trace and a trace its log lines.
"""

from __future__ import annotations

import logging
import sys

import structlog
from opentelemetry import trace
from structlog.typing import EventDict, WrappedLogger


def configure_logging(*, level: int = logging.INFO) -> None:
    """JSON logs on stderr; context bound with ``structlog.contextvars`` is in every line."""
    logging.basicConfig(level=level, stream=sys.stderr, format="%(message)s")
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            add_trace_ids,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )


def add_trace_ids(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    """The current span's ``trace_id`` and ``span_id`` (hex, as OTLP shows them), if any."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event["trace_id"] = format(context.trace_id, "032x")
        event["span_id"] = format(context.span_id, "016x")
    return event
