"""The Litestar application: built by a factory from the composition root."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Tag

from openticket._version import __version__
from openticket.application.facade import OpenTicket
from openticket.application.identity.service import IdentityService
from openticket.application.ports.clock import Clock
from openticket.entrypoints.http.auth import IDENTITY, METRICS, POLICY, TICKETS
from openticket.entrypoints.http.controllers.catalog import (
    EventController,
    SalesController,
    SessionController,
    VenueController,
)
from openticket.entrypoints.http.controllers.feeds import order_feed, queue_feed, seat_feed
from openticket.entrypoints.http.controllers.identity import AuthController, MeController
from openticket.entrypoints.http.controllers.operations import (
    HealthController,
    PaymentReturnController,
    WebhookController,
)
from openticket.entrypoints.http.controllers.orders import (
    CheckInController,
    MyThingsController,
    OrderController,
)
from openticket.entrypoints.http.controllers.queue import QueueController
from openticket.entrypoints.http.docs import PackagedSwaggerUI, static_files
from openticket.entrypoints.http.edge import compression_config, cors_config, edge_headers
from openticket.entrypoints.http.feed_limits import FeedLimits
from openticket.entrypoints.http.media import require_json
from openticket.entrypoints.http.observability import (
    Metrics,
    metrics_endpoint,
    observe,
    traced_requests,
)
from openticket.entrypoints.http.openapi import COMPONENTS, RefinedJsonRenderPlugin, refine
from openticket.entrypoints.http.pages import assets, template_config
from openticket.entrypoints.http.pages.buyer import BuyerPages
from openticket.entrypoints.http.pages.organizer import OrganizerPages
from openticket.entrypoints.http.pages.staff import StaffPages
from openticket.entrypoints.http.policy import HttpPolicy
from openticket.entrypoints.http.problems import EXCEPTION_HANDLERS
from openticket.entrypoints.http.proxies import ForwardedClientMiddleware, TrustedProxies
from openticket.entrypoints.http.rate_limit import RateLimitMiddleware, RateLimits
from openticket.entrypoints.http.routes import allow_every_method

API_DESCRIPTION = """Sell seats to high-demand events without ever selling a seat twice.

Every error is `application/problem+json` (RFC 9457) with a stable `code`. Sign in with
`POST /api/auth/token` and send `Authorization: Bearer <access_token>`. Lists take
`?limit=&cursor=` and answer `{items, next_cursor}`. The live feeds (WebSocket) are
described in the project's `docs/feeds.md`: `/ws/sessions/{session_id}/seats` and
`/ws/me/orders?token=...`."""

TAGS = [
    Tag(name="identity", description="Accounts and bearer tokens."),
    Tag(name="catalog", description="Venues, events, prices, sessions and their seats."),
    Tag(
        name="buying",
        description="Orders, payments and refunds; the caller's orders and tickets.",
    ),
    Tag(name="tickets", description="Checking tickets in at the door."),
    Tag(name="payments", description="What payment providers call: webhooks and returns."),
    Tag(name="operations", description="Health checks and metrics."),
]

MAX_BODY_BYTES = 1024 * 1024
"""Request bodies above 1 MiB are refused with 413 before they are read whole."""

SCHEMA_PATH = "/schema"
"""Where the docs page is (``/schema/openapi.json`` the schema)."""


def create_app(
    tickets: OpenTicket,
    identity: IdentityService,
    clock: Clock,
    *,
    start: bool = True,
    metrics: Metrics | None = None,
    rate_limits: RateLimits | None = None,
    policy: HttpPolicy | None = None,
) -> Litestar:
    """The HTTP API over one running ``OpenTicket``.

    With ``start`` the app starts the platform (actors, sweeper) on start-up and stops it
    on shut-down; pass False when the caller runs it already. ``policy`` holds the
    edge's rules (CORS, trusted proxies, WebSocket caps); the default is the safe one.

    The client's address is settled first (``ForwardedClientMiddleware``: the peer, or
    what a trusted proxy forwarded), so the rate limits, the logs and the feeds' caps
    all see the same client; ``edge_headers`` gives every answer its security,
    caching and ``Vary`` headers last.
    """
    policy = policy or HttpPolicy()
    docs = PackagedSwaggerUI()

    @asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        if start:
            await tickets.start()
        try:
            yield
        finally:
            if start:
                await tickets.stop()

    metrics = metrics or Metrics()
    metrics.watch(tickets.bus)
    if tickets.gate is not None:
        tickets.gate.observer = metrics

    def provide_metrics() -> Metrics:
        return metrics

    def provide_tickets() -> OpenTicket:
        return tickets

    def provide_identity() -> IdentityService:
        return identity

    def provide_clock() -> Clock:
        return clock

    feed_limits = FeedLimits(policy, clock)

    def provide_feed_limits() -> FeedLimits:
        return feed_limits

    dependencies: dict[str, Any] = {
        "tickets": Provide(provide_tickets, sync_to_thread=False),
        "identity": Provide(provide_identity, sync_to_thread=False),
        "clock": Provide(provide_clock, sync_to_thread=False),
        "metrics": Provide(provide_metrics, sync_to_thread=False),
        "feed_limits": Provide(provide_feed_limits, sync_to_thread=False),
    }
    app = Litestar(
        route_handlers=[
            AuthController,
            MeController,
            MyThingsController,
            VenueController,
            EventController,
            QueueController,
            SessionController,
            SalesController,
            OrderController,
            CheckInController,
            WebhookController,
            PaymentReturnController,
            HealthController,
            seat_feed,
            order_feed,
            queue_feed,
            metrics_endpoint(metrics),
            static_files(),
            BuyerPages,
            OrganizerPages,
            StaffPages,
            assets(),
        ],
        template_config=template_config(),
        middleware=[
            *traced_requests(),
            ForwardedClientMiddleware(TrustedProxies(policy.trusted_proxies)),
            observe(metrics),
            *(
                [RateLimitMiddleware(rate_limits, identity, limit_loopback=policy.limit_loopback)]
                if rate_limits
                else []
            ),
        ],
        cors_config=cors_config(policy),
        compression_config=compression_config(),
        before_send=[
            edge_headers(policy, {SCHEMA_PATH, *(f"{SCHEMA_PATH}{path}" for path in docs.paths)})
        ],
        dependencies=dependencies,
        exception_handlers=EXCEPTION_HANDLERS,
        request_max_body_size=MAX_BODY_BYTES,
        before_request=require_json,
        lifespan=[lifespan],
        state=State({IDENTITY: identity, POLICY: policy, TICKETS: tickets, METRICS: metrics}),
        openapi_config=OpenAPIConfig(
            title="OpenTicket",
            version=__version__,
            description=API_DESCRIPTION,
            path=SCHEMA_PATH,
            components=COMPONENTS,
            tags=TAGS,
            use_handler_docstrings=True,
            create_examples=False,
            render_plugins=[
                docs,
                RefinedJsonRenderPlugin(
                    partial(refine, payment_providers=tickets.payments.provider_names)
                ),
            ],
        ),
    )
    allow_every_method(app)
    return app
