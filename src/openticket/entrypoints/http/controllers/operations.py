"""Health checks, payment webhooks, and the buyer's way back from a payment provider."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Annotated, Any, Literal, TypeVar

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.enums import MediaType
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import PathParameter, QueryParameter
from litestar.response import Redirect

from openticket.application.errors import NotFound, UnknownPaymentProvider
from openticket.application.facade import OpenTicket
from openticket.entrypoints.http.openapi import READ, problems
from openticket.entrypoints.http.schemas import PROVIDER_PATTERN, PaymentOut, payment_out

Provider = Annotated[
    str,
    PathParameter(
        min_length=1,
        max_length=20,
        pattern=PROVIDER_PATTERN,
        description="A payment provider's name, e.g. `stripe`.",
    ),
]

T = TypeVar("T")
Health = Literal["ok", "down"]


class ReadinessOut(msgspec.Struct):
    """Whether every dependency answers, and each one's state."""

    status: Health
    checks: dict[str, Health]


class WebhookIgnored(msgspec.Struct):
    """A webhook about something we do not track (answered 200 so it is not resent)."""

    status: Literal["ignored"]


class HealthController(Controller):
    """Liveness and readiness for orchestrators."""

    path = "/health"
    tags = ["operations"]

    @get("/live", summary="The process answers", operation_id="live")
    async def live(self) -> dict[str, str]:
        """Always ``ok`` while the process serves requests."""
        return {"status": "ok"}

    @get(
        "/ready",
        summary="Every dependency answers",
        operation_id="ready",
        responses={
            503: ResponseSpec(
                data_container=ReadinessOut,
                description="A dependency is down; `checks` says which.",
                generate_examples=False,
            )
        },
    )
    async def ready(self, tickets: NamedDependency[OpenTicket]) -> Response[ReadinessOut]:
        """200 ``ok`` when every dependency answers, 503 naming the ones that do not."""
        checks: dict[str, Health] = {
            name: "ok" if state == "ok" else "down"
            for name, state in (await tickets.readiness()).items()
        }
        healthy = all(state == "ok" for state in checks.values())
        body = ReadinessOut("ok" if healthy else "down", checks)
        return Response(body, status_code=200 if healthy else 503)


class WebhookController(Controller):
    """Payment providers tell us how payments ended."""

    path = "/api/webhooks"
    tags = ["payments"]

    @post(
        "/{provider:str}",
        status_code=200,
        summary="A provider's webhook",
        operation_id="receiveWebhook",
        responses=problems(400, 404, 413, 503),
    )
    async def receive(
        self,
        provider: Provider,
        request: Request[Any, Any, Any],
        tickets: NamedDependency[OpenTicket],
    ) -> PaymentOut | WebhookIgnored:
        """The provider's own payload, its signature checked on the raw body.

        400 when the signature does not verify, 404 for a provider this deployment
        does not have; a repeated delivery is harmless (recorded once).
        """
        body = await request.body()
        payment = await _known_provider(
            tickets.handle_webhook(provider, dict(request.headers), body)
        )
        return WebhookIgnored("ignored") if payment is None else payment_out(payment)


TransactionId = Annotated[
    str,
    QueryParameter(name="transactionId", min_length=1, max_length=64, pattern=r"^[\w-]+$"),
]
Reference = Annotated[
    str,
    QueryParameter(name="orderId", min_length=1, max_length=100, pattern=r"^[\w.:-]+$"),
]


THE_PAYMENT = ResponseSpec(
    data_container=PaymentOut,
    description="For an API client: the payment as it stands now.",
    generate_examples=False,
)
TO_THE_ORDER = ResponseSpec(
    data_container=None,
    description=(
        "For a browser (`Accept` prefers `text/html`): the same outcome, then on to the"
        " order's page, `/orders/{order_id}`."
    ),
    generate_examples=False,
)


def _wants_page(request: Request[Any, Any, Any]) -> bool:
    """Whether the caller is a browser asking for a page rather than a client for JSON."""
    return request.accept.best_match([MediaType.JSON, MediaType.HTML]) == MediaType.HTML


class PaymentReturnController(Controller):
    """Where a provider sends the buyer back (LINE Pay's confirm and cancel URLs).

    The query is untrusted: it must name a payment we started, with our reference, or
    the answer is 404 and nothing changes; the confirm uses the amount we stored.
    A browser (``Accept`` preferring ``text/html``) is sent on to the order's page
    with 303 once that is done; API clients get the payment as JSON.
    """

    path = "/api/payments"
    tags = ["payments"]

    @get(
        "/{provider:str}/confirm",
        summary="The buyer approved at the provider",
        operation_id="confirmPayment",
        responses={200: THE_PAYMENT, 303: TO_THE_ORDER, **problems(*READ, 400, 404, 409)},
    )
    async def confirm(
        self,
        provider: Provider,
        transaction_id: TransactionId,
        order_id: Reference,
        tickets: NamedDependency[OpenTicket],
        request: Request[Any, Any, Any],
    ) -> PaymentOut | Redirect:
        """Confirm the payment with its stored amount (if its order can still have it)."""
        payment = await _returned(tickets, provider, transaction_id, order_id, approved=True)
        return _answer(request, payment)

    @get(
        "/{provider:str}/cancel",
        summary="The buyer cancelled at the provider",
        operation_id="cancelPayment",
        responses={200: THE_PAYMENT, 303: TO_THE_ORDER, **problems(*READ, 400, 404, 409)},
    )
    async def cancel(
        self,
        provider: Provider,
        transaction_id: TransactionId,
        order_id: Reference,
        tickets: NamedDependency[OpenTicket],
        request: Request[Any, Any, Any],
    ) -> PaymentOut | Redirect:
        """The payment ends failed; the order fails and its seats are free again."""
        payment = await _returned(tickets, provider, transaction_id, order_id, approved=False)
        return _answer(request, payment)


def _answer(request: Request[Any, Any, Any], payment: PaymentOut) -> PaymentOut | Redirect:
    """The payment for an API client; for a browser, 303 to its order's page."""
    if _wants_page(request):
        return Redirect(f"/orders/{payment.order_id}", status_code=303)
    return payment


async def _returned(
    tickets: OpenTicket, provider: str, transaction_id: str, reference: str, *, approved: bool
) -> PaymentOut:
    payment = await _known_provider(
        tickets.return_from_provider(provider, transaction_id, reference, approved=approved)
    )
    return payment_out(payment)


async def _known_provider(call: Awaitable[T]) -> T:
    """A provider named in the path that this deployment lacks is not found (404)."""
    try:
        return await call
    except UnknownPaymentProvider as e:
        raise NotFound(str(e)) from e
