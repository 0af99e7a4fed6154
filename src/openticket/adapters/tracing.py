"""Spans of the adapters' work, and the W3C trace context that crosses processes.

OpenTelemetry's API is a no-op until an entrypoint installs the SDK
(:mod:`openticket.entrypoints.tracing`, with ``OPENTICKET_OTLP_ENDPOINT``). Even a
no-op span costs a few microseconds, so the adapters ask :func:`enabled` first and
start nothing while tracing is off: the hot path stays as it was.

Where a purchase's trace goes from one process to another, it travels as a W3C
``traceparent``:

* seat commands (NATS request/reply): one per command in the batch message
  (``traceparents``, beside ``correlation_ids``), as a message carries the commands of
  many requests;
* events (JetStream): the ``traceparent`` header of the message, read by the consumer
  that handles it.

The span names and kinds follow OpenTelemetry's conventions for messaging and database
clients: ``seat hold`` (client) in the process that asks, ``seat hold decide``
(server) in the partition's owner, ``publish <subject>`` (producer), ``process
<subject>`` (consumer), ``postgres transaction`` (client), ``payment <provider>
<call>`` (client).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any, Final

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

TRACEPARENT: Final = "traceparent"
"""The W3C header (and message header) that carries a span's context."""

_tracer: Final = trace.get_tracer("openticket")
_propagator: Final = TraceContextTextMapPropagator()
_enabled = False

__all__ = [
    "TRACEPARENT",
    "Span",
    "SpanKind",
    "enable",
    "enabled",
    "end_with",
    "inject",
    "parent_of",
    "span",
    "start",
    "traceparent_of",
]


def enable(on: bool = True) -> None:
    """Start (or stop) the adapters' spans; the entrypoint's tracing setup calls it."""
    global _enabled  # noqa: PLW0603  # one switch for the process, read on the hot path
    _enabled = on


def enabled() -> bool:
    """Whether spans are being recorded in this process."""
    return _enabled


def parent_of(traceparent: str | None) -> otel_context.Context | None:
    """The context a ``traceparent`` names (``None``: none, or not readable)."""
    if not traceparent:
        return None
    context = _propagator.extract({TRACEPARENT: traceparent})
    if not trace.get_current_span(context).get_span_context().is_valid:
        return None
    return context


def start(
    name: str,
    kind: SpanKind,
    *,
    parent: otel_context.Context | None = None,
    attributes: Mapping[str, Any] | None = None,
) -> Span:
    """A span begun now, child of ``parent`` (default: the current span); end it."""
    return _tracer.start_span(name, context=parent, kind=kind, attributes=attributes)


def traceparent_of(span: Span) -> str | None:
    """``span``'s context as a ``traceparent`` value, for a message that crosses processes."""
    carrier: dict[str, str] = {}
    _propagator.inject(carrier, context=trace.set_span_in_context(span))
    return carrier.get(TRACEPARENT)


def inject(headers: dict[str, str]) -> None:
    """Add the current span's ``traceparent`` to ``headers`` (nothing without one)."""
    _propagator.inject(headers)


def end_with(span: Span, error: BaseException | None) -> None:
    """End ``span``, recording ``error`` (if any) as its exception and status."""
    if error is not None:
        span.record_exception(error)
        span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
    span.end()


@contextlib.contextmanager
def span(
    name: str,
    kind: SpanKind,
    *,
    parent: otel_context.Context | None = None,
    attributes: Mapping[str, Any] | None = None,
) -> Iterator[Span]:
    """A span that is the current one while the block runs (its errors recorded)."""
    with _tracer.start_as_current_span(
        name, context=parent, kind=kind, attributes=attributes
    ) as current:
        yield current
