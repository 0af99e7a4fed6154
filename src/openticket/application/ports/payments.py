"""The payment provider port: the anti-corruption layer around Mock, Stripe, LINE Pay.

Every call that moves money carries the payment's idempotency key, so a call that
timed out can be retried without charging twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Protocol

import attrs

from openticket.application.ports.errors import AdapterUnavailable, PortError
from openticket.domain.shared import Money, OrderId, PaymentId, UserId


class PaymentProviderUnavailable(AdapterUnavailable):
    """The provider did not answer (time-out, connection refused); retry with the same key."""

    code = "payment_provider_unavailable"


class PaymentProviderError(PortError):
    """The provider refused the request itself (bad credentials, unknown transaction...)."""

    code = "payment_provider_error"


class InvalidWebhookSignature(PortError):
    """A webhook whose signature does not verify against the raw body: ignored, 400."""

    code = "invalid_signature"


class ProviderStatus(StrEnum):
    """How the provider sees a payment."""

    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    REFUNDED = "refunded"


@attrs.frozen(kw_only=True)
class PaymentRequest:
    """What the provider needs to start taking ``amount`` for an order."""

    payment_id: PaymentId
    order_id: OrderId
    user_id: UserId
    amount: Money
    idempotency_key: str
    description: str = ""
    return_url: str | None = None
    expires_at: datetime | None = None
    """When the order stops waiting for this payment (its hold's expiry)."""
    options: Mapping[str, str] = attrs.field(factory=dict)
    """Provider-specific choices from the buyer (e.g. the mock's ``outcome``)."""


@attrs.frozen(kw_only=True)
class ProviderPayment:
    """The provider's view of a payment."""

    provider_transaction_id: str
    status: ProviderStatus
    redirect_url: str | None = None
    client_secret: str | None = None
    failure_reason: str | None = None


@attrs.frozen(kw_only=True)
class ProviderRefund:
    """A refund the provider accepted."""

    provider_refund_id: str
    amount: Money


@attrs.frozen(kw_only=True)
class WebhookNotice:
    """What a verified webhook says happened to a payment."""

    provider_event_id: str
    provider_transaction_id: str
    status: ProviderStatus
    failure_reason: str | None = None


class PaymentProvider(Protocol):
    """Takes and gives back money through one provider."""

    @property
    def name(self) -> str:
        """The provider's name in the API (``mock``, ``stripe``, ``linepay``)."""
        ...

    async def create_payment(self, request: PaymentRequest) -> ProviderPayment:
        """Start a payment; it may settle at once or later (webhook, confirm step)."""
        ...

    async def confirm_payment(self, provider_transaction_id: str, amount: Money) -> ProviderPayment:
        """Capture a payment the buyer approved (LINE Pay's confirm); others just verify."""
        ...

    async def verify_payment(self, provider_transaction_id: str) -> ProviderPayment:
        """Ask the provider how a payment stands now (reconciliation)."""
        ...

    async def refund(
        self, provider_transaction_id: str, amount: Money, idempotency_key: str
    ) -> ProviderRefund:
        """Pay ``amount`` back; the same idempotency key never refunds twice."""
        ...

    async def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> WebhookNotice | None:
        """Verify a webhook's signature on the raw body and read it.

        Raises ``InvalidWebhookSignature``; returns None for events that do not concern
        a payment.
        """
        ...
