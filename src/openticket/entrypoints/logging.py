"""structlog, configured once at the entrypoint: JSON lines with the request id bound."""

from __future__ import annotations

import logging
import sys

import structlog


def configure_logging(*, level: int = logging.INFO) -> None:
    """JSON logs on stderr; context bound with ``structlog.contextvars`` is in every line."""
    logging.basicConfig(level=level, stream=sys.stderr, format="%(message)s")
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
