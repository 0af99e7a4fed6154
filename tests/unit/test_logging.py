"""Log lines written inside a span carry its trace and span ids."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
import structlog

from openticket.adapters import tracing
from openticket.entrypoints.logging import configure_logging

if TYPE_CHECKING:
    from tests.conftest import SpanReader


@pytest.fixture
def logged() -> Iterator[io.StringIO]:
    """The entrypoints' logging, written here instead of stderr; put back after."""
    saved = structlog.get_config()
    lines = io.StringIO()
    configure_logging()
    structlog.configure(
        logger_factory=structlog.PrintLoggerFactory(lines), cache_logger_on_first_use=False
    )
    try:
        yield lines
    finally:
        structlog.configure(**saved)


def test_a_line_logged_in_a_span_names_its_trace_and_one_outside_none(
    spans: SpanReader, logged: io.StringIO
) -> None:
    log = structlog.get_logger("test")
    with tracing.span("request", tracing.SpanKind.SERVER) as span:
        log.info("inside")
    log.info("outside")

    inside, outside = (json.loads(line) for line in logged.getvalue().splitlines())
    context = span.get_span_context()
    assert inside["event"] == "inside"
    assert inside["trace_id"] == format(context.trace_id, "032x")
    assert inside["span_id"] == format(context.span_id, "016x")
    assert "trace_id" not in outside
    assert [s.name for s in spans()] == ["request"]
