"""Health checks, payment webhooks, and the buyer's way back from a payment provider."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter

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


TransactionId = Annotated[
    str,
    QueryParameter(name="transactionId", min_length=1, max_length=64, pattern=r"^[\w-]+$"),
]
Reference = Annotated[
    str,
    QueryParameter(name="orderId", min_length=1, max_length=100, pattern=r"^[\w.:-]+$"),
]


class PaymentReturnController(Controller):
    """Where a provider sends the buyer back (LINE Pay's confirm and cancel URLs).

    The query is untrusted: it must name a payment we started, with our reference, or
    the answer is 404 and nothing changes; the confirm uses the amount we stored.
    """

    path = "/api/payments"
    tags = ["payments"]

    @get("/{provider:str}/confirm", summary="The buyer approved at the provider")
    async def confirm(
        self,
        provider: FromPath[str],
        transaction_id: TransactionId,
        order_id: Reference,
        tickets: NamedDependency[OpenTicket],
    ) -> PaymentOut:
        """Confirm the payment with its stored amount (if its order can still have it)."""
        return await _returned(tickets, provider, transaction_id, order_id, approved=True)

    @get("/{provider:str}/cancel", summary="The buyer cancelled at the provider")
    async def cancel(
        self,
        provider: FromPath[str],
        transaction_id: TransactionId,
        order_id: Reference,
        tickets: NamedDependency[OpenTicket],
    ) -> PaymentOut:
        """The payment ends failed; the order fails and its seats are free again."""
        return await _returned(tickets, provider, transaction_id, order_id, approved=False)


async def _returned(
    tickets: OpenTicket, provider: str, transaction_id: str, reference: str, *, approved: bool
) -> PaymentOut:
    payment = await tickets.return_from_provider(
        provider, transaction_id, reference, approved=approved
    )
    return payment_out(payment)
