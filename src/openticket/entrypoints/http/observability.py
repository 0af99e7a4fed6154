"""Prometheus metrics and request ids for the HTTP API."""

from __future__ import annotations

import time
import uuid
from typing import Any

import structlog
from litestar import MediaType, Response, get
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from opentelemetry import trace
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from openticket.adapters import tracing
from openticket.application.correlation import correlation_id
from openticket.application.messagebus import MessageBus
from openticket.application.notifications import ORDER_STATUS_AFTER
from openticket.application.saga import SaleRefusedAtFinalFence
from openticket.domain.ordering import OrderEvent
from openticket.domain.seating import SeatHoldRejected, SeatsHeld
from openticket.domain.shared import SessionId

REQUEST_ID_HEADER = "x-request-id"
_REQUEST_ID_KEY = REQUEST_ID_HEADER.encode()
EXPOSITION_MEDIA_TYPE = "text/plain; version=0.0.4"
"""Prometheus's text format; Litestar adds the ``charset=utf-8`` of every ``text/`` answer."""
_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Metrics:
    """The platform's metrics, in a registry of their own (one per app)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.request_seconds = Histogram(
            "openticket_http_request_seconds",
            "HTTP request latency",
            ["method", "route", "status"],
            registry=self.registry,
            buckets=_BUCKETS,
        )
        self.hold_seconds = Histogram(
            "openticket_seat_hold_seconds",
            "time to decide a hold request (POST /api/orders)",
            registry=self.registry,
            buckets=_BUCKETS,
        )
        self.holds = Counter(
            "openticket_holds",
            "seat hold requests decided, by outcome",
            ["outcome"],
            registry=self.registry,
        )
        self.orders = Counter(
            "openticket_orders",
            "orders entering each status",
            ["status"],
            registry=self.registry,
        )
        self.double_sales = Counter(
            "openticket_double_sales_prevented",
            "sales the last fence (one live ticket per seat) refused; should stay 0",
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "openticket_queue_depth",
            "buyers waiting in a session's waiting room",
            ["session_id"],
            registry=self.registry,
        )
        self.bot_suspects = Counter(
            "openticket_bot_suspects",
            "joins sent back and orders refused as scripted, per session",
            ["session_id", "kind", "action"],
            registry=self.registry,
        )
        self.queue_wait_seconds = Histogram(
            "openticket_queue_wait_seconds",
            "how long buyers let in from a waiting room had waited since joining",
            ["session_id"],
            registry=self.registry,
            buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200),
        )
        self.queue_admitted = Counter(
            "openticket_queue_admitted",
            "buyers let in from a session's waiting room (by this process's admitter)",
            ["session_id"],
            registry=self.registry,
        )
        for outcome in ("granted", "refused"):
            self.holds.labels(outcome)
        for status in ORDER_STATUS_AFTER.values():
            self.orders.labels(status.value)

    def admitted(self, session_id: SessionId, count: int) -> None:
        """The waiting room let ``count`` buyers of the session in (``GateObserver``)."""
        self.queue_admitted.labels(str(session_id)).inc(count)

    def waiting(self, session_id: SessionId, count: int) -> None:
        """``count`` buyers wait in the session's waiting room now (``GateObserver``)."""
        self.queue_depth.labels(str(session_id)).set(count)

    def suspected(self, session_id: SessionId, kind: str, action: str) -> None:
        """The bot defence sent a join back or refused an order (``GateObserver``)."""
        self.bot_suspects.labels(str(session_id), kind, action).inc()

    def waited(self, session_id: SessionId, seconds: float) -> None:
        """A buyer let in had waited ``seconds`` (``GateObserver``)."""
        self.queue_wait_seconds.labels(str(session_id)).observe(max(seconds, 0.0))

    def watch(self, bus: MessageBus) -> None:
        """Count holds, order statuses and refused double sales from the event bus."""

        async def held(_: SeatsHeld) -> None:
            self.holds.labels("granted").inc()

        async def refused(_: SeatHoldRejected) -> None:
            self.holds.labels("refused").inc()

        async def order(event: OrderEvent) -> None:
            status = ORDER_STATUS_AFTER.get(type(event))
            if status is not None:
                self.orders.labels(status.value).inc()

        async def fenced(_: SaleRefusedAtFinalFence) -> None:
            self.double_sales.inc()

        bus.subscribe(SeatsHeld, "metrics_holds_granted", held)
        bus.subscribe(SeatHoldRejected, "metrics_holds_refused", refused)
        for event_type in ORDER_STATUS_AFTER:
            bus.subscribe(event_type, "metrics_orders", order)
        bus.subscribe(SaleRefusedAtFinalFence, "metrics_double_sales", fenced)

    def exposition(self) -> bytes:
        """The Prometheus text of every metric."""
        return generate_latest(self.registry)


def metrics_endpoint(metrics: Metrics) -> Any:
    """``GET /metrics``."""

    @get(
        "/metrics",
        tags=["operations"],
        summary="Prometheus metrics",
        media_type=MediaType.TEXT,
        operation_id="metrics",
    )
    async def read_metrics() -> Response[bytes]:
        return Response(metrics.exposition(), media_type=EXPOSITION_MEDIA_TYPE)

    return read_metrics


def observe(metrics: Metrics) -> Any:
    """ASGI middleware: a request id per request (bound into logs) and its latency."""
    # the histogram's child per method, route and status: ``labels()`` locks and checks
    latency: dict[tuple[str, str, int], Any] = {}

    def observe_latency(method: str, route: str, status: int, seconds: float) -> None:
        child = latency.get((method, route, status))
        if child is None:
            child = metrics.request_seconds.labels(method, route, str(status))
            if len(latency) < 10_000:  # routes are templates: a small set
                latency[(method, route, status)] = child
        child.observe(seconds)

    def middleware(app: ASGIApp) -> ASGIApp:
        async def handle(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != ScopeType.HTTP:
                await app(scope, receive, send)
                return
            given = ""
            for name, value in scope.get("headers") or ():
                if name == _REQUEST_ID_KEY:
                    given = value.decode("latin-1")  # the last one wins, as in a dict
            request_id = given if 0 < len(given) <= 100 else uuid.uuid4().hex
            status = 500
            started = time.perf_counter()

            async def send_with_id(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                    message["headers"] = [
                        *message.get("headers", []),
                        (REQUEST_ID_HEADER.encode(), request_id.encode("latin-1")),
                    ]
                await send(message)

            token = correlation_id.set(request_id)
            # set and reset, not ``bound_contextvars``: that one reads every context
            # variable first, on every request
            bound = structlog.contextvars.bind_contextvars(request_id=request_id)
            try:
                await app(scope, receive, send_with_id)
            finally:
                structlog.contextvars.reset_contextvars(**bound)
                correlation_id.reset(token)
                route = scope.get("path_template") or scope.get("path", "")
                observe_latency(
                    scope.get("method", ""), route, status, time.perf_counter() - started
                )

        return handle

    return middleware


def traced_requests() -> list[Any]:
    """Litestar's OpenTelemetry middleware while the process traces; nothing otherwise.

    Each request is a server span named by its method and route template (``POST
    /api/orders/{order_id:uuid}/payments``), continuing the caller's ``traceparent``
    (a browser or a gateway that traces). Litestar's middleware starts the span before
    the request is routed, so a second middleware, run once it is, names it by its
    route. The probes, ``/metrics`` and the static files are left out: they are no
    buyer's work.
    """
    if not tracing.enabled():
        return []
    from litestar.plugins.opentelemetry import OpenTelemetryConfig  # noqa: PLC0415

    return [
        OpenTelemetryConfig(
            exclude=["^/health/", "^/metrics$", "^/assets/", "^/schema/"],
            exclude_spans=["receive", "send"],
        ).middleware,
        _name_span_by_route,
    ]


def _name_span_by_route(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        span = trace.get_current_span()
        route = scope.get("path_template")
        if route and span.is_recording():
            method = scope.get("method", "") if scope["type"] == ScopeType.HTTP else "WEBSOCKET"
            span.update_name(f"{method} {route}")
            span.set_attribute("http.route", route)
        await app(scope, receive, send)

    return middleware
