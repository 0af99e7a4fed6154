"""A payment provider whose calls are client spans (``payment <provider> <call>``).

The container wraps every configured provider in it while the process traces
(:mod:`openticket.adapters.tracing`), so the time a purchase waits on Stripe or
LINE Pay shows in its trace beside the seat commands and transactions. Anything else
the provider has (``stop``, a test's hooks) is reached through the wrapper.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from openticket.adapters import tracing
from openticket.application.ports.payments import (
    PaymentProvider,
    PaymentRequest,
    ProviderPayment,
    ProviderRefund,
    WebhookNotice,
)
from openticket.domain.shared import Money


class TracedPaymentProvider:
    """``provider`` with a span around each call that reaches it over the network."""

    def __init__(self, provider: PaymentProvider) -> None:
        self.provider = provider

    def __getattr__(self, name: str) -> Any:
        return getattr(self.provider, name)

    @property
    def name(self) -> str:
        """The wrapped provider's name."""
        return self.provider.name

    def check_options(self, options: Mapping[str, str]) -> None:
        """The wrapped provider's check (it calls nobody: no span)."""
        self.provider.check_options(options)

    def _span(self, call: str, **attributes: str) -> Any:
        return tracing.span(
            f"payment {self.provider.name} {call}",
            tracing.SpanKind.CLIENT,
            attributes={"openticket.payment.provider": self.provider.name, **attributes},
        )

    async def create_payment(self, request: PaymentRequest) -> ProviderPayment:
        """Start a payment, traced."""
        with self._span("create", **{"openticket.order_id": str(request.order_id)}) as span:
            payment = await self.provider.create_payment(request)
            span.set_attribute("openticket.payment.status", str(payment.status))
            return payment

    async def confirm_payment(self, provider_transaction_id: str, amount: Money) -> ProviderPayment:
        """Capture an approved payment, traced."""
        with self._span("confirm") as span:
            payment = await self.provider.confirm_payment(provider_transaction_id, amount)
            span.set_attribute("openticket.payment.status", str(payment.status))
            return payment

    async def verify_payment(self, provider_transaction_id: str) -> ProviderPayment:
        """Ask how a payment stands, traced."""
        with self._span("verify"):
            return await self.provider.verify_payment(provider_transaction_id)

    async def cancel_payment(self, provider_transaction_id: str) -> ProviderPayment:
        """Cancel a payment, traced."""
        with self._span("cancel"):
            return await self.provider.cancel_payment(provider_transaction_id)

    async def refund(
        self, provider_transaction_id: str, amount: Money, idempotency_key: str
    ) -> ProviderRefund:
        """Pay back, traced."""
        with self._span("refund"):
            return await self.provider.refund(provider_transaction_id, amount, idempotency_key)

    async def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> WebhookNotice | None:
        """Read a webhook (local work: no span)."""
        return await self.provider.parse_webhook(headers, body)
