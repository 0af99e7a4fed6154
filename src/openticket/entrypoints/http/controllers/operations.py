"""Health checks and payment webhooks."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath

from openticket.application.facade import OpenTicket
from openticket.entrypoints.http.schemas import PaymentOut, payment_out


class HealthController(Controller):
    """Liveness and readiness for orchestrators."""

    path = "/health"
    tags = ["operations"]

    @get("/live", summary="The process answers")
    async def live(self) -> dict[str, str]:
        """Always ``ok`` while the process serves requests."""
        return {"status": "ok"}

    @get("/ready", summary="Every dependency answers")
    async def ready(self, tickets: NamedDependency[OpenTicket]) -> Response[dict[str, Any]]:
        """200 ``ok`` when every dependency answers, 503 naming the ones that do not."""
        checks = await tickets.readiness()
        healthy = all(state == "ok" for state in checks.values())
        body = {"status": "ok" if healthy else "down", "checks": checks}
        return Response(body, status_code=200 if healthy else 503)


class WebhookController(Controller):
    """Payment providers tell us how payments ended."""

    path = "/api/webhooks"
    tags = ["payments"]

    @post("/{provider:str}", status_code=200, summary="A provider's webhook")
    async def receive(
        self,
        provider: FromPath[str],
        request: Request[Any, Any, Any],
        tickets: NamedDependency[OpenTicket],
    ) -> PaymentOut | dict[str, str]:
        """Signature checked on the raw body (400 if it does not verify); repeats are harmless."""
        body = await request.body()
        payment = await tickets.handle_webhook(provider, dict(request.headers), body)
        return {"status": "ignored"} if payment is None else payment_out(payment)
