"""OpenTelemetry tracing for a process, on when ``OPENTICKET_OTLP_ENDPOINT`` is set.

``openticket serve`` and ``openticket worker`` call :func:`start_tracing` before they
build their container: it installs the SDK's tracer provider with a batch processor
that exports OTLP over HTTP to ``<endpoint>/v1/traces`` (an OpenTelemetry Collector,
Jaeger, Tempo…), and turns on the adapters' spans (:mod:`openticket.adapters.tracing`).
The HTTP layer then adds Litestar's OpenTelemetry middleware (a server span per
request, continuing a client's ``traceparent``), and every log line written inside a
span carries its ``trace_id`` and ``span_id`` (:mod:`openticket.entrypoints.logging`).

The service is named ``openticket-api`` or ``openticket-worker`` (``OTEL_SERVICE_NAME``
overrides it); the SDK's own variables still apply, such as ``OTEL_TRACES_SAMPLER`` /
``OTEL_TRACES_SAMPLER_ARG`` to keep a share of the traces under a flash sale's load
(the default keeps every trace a caller's sampling decision does not drop).
"""

from __future__ import annotations

import os

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import SERVICE_INSTANCE_ID, SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

from openticket.adapters import tracing


def start_tracing(
    endpoint: str, *, service: str, instance: str, exporter: SpanExporter | None = None
) -> TracerProvider:
    """Export this process's spans to the OTLP/HTTP collector at ``endpoint``.

    ``exporter`` replaces the OTLP one (a test's in-memory exporter). Call
    :func:`stop_tracing` with the answer before the process exits: it sends what is
    still buffered.
    """
    attributes = {SERVICE_INSTANCE_ID: instance}
    if not os.environ.get("OTEL_SERVICE_NAME"):
        attributes[SERVICE_NAME] = service
    provider = TracerProvider(resource=Resource.create(attributes))
    if exporter is None:
        exporter = OTLPSpanExporter(endpoint=f"{endpoint.rstrip('/')}/v1/traces")
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=1000))
    trace.set_tracer_provider(provider)
    tracing.enable()
    return provider


def stop_tracing(provider: TracerProvider | None) -> None:
    """Send the spans still buffered and stop recording (nothing for ``None``)."""
    if provider is None:
        return
    tracing.enable(False)
    provider.shutdown()
