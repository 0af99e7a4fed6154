"""The payment provider port: the anti-corruption layer around Mock, Stripe, LINE Pay.

Every call that moves money carries the payment's idempotency key, so a call that
timed out can be retried without charging twice. Provider objects, statuses and
errors never pass the adapter: it answers with :class:`ProviderPayment` (our
:class:`ProviderStatus`), and raises ``PaymentProviderUnavailable`` (no answer: retry
with the same key) or ``PaymentProviderError`` (the provider refused). Options the
buyer chose that the provider does not take are ``InvalidPaymentOptions``, found by
``check_options`` before anything is recorded.

The life of a payment at a provider::

    create_payment ──► pending ──(the buyer pays at the provider)──► confirm_payment ──► succeeded
         │                │                                        (or a webhook says so)
         │                ├──► failed (declined, cancelled by the buyer, expired)
         │                └──► cancel_payment: failed — or succeeded, if it was too late
         └── the same idempotency key: the same payment, never a second one
    succeeded ──► refund (idempotency key: once) ──► refunded

``openticket.testing.contracts.PaymentProviderContract`` is what an adapter must do.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Protocol

import attrs

from openticket.application.ports.errors import AdapterUnavailable, PortError
from openticket.domain.shared import Money, OrderId, PaymentId, UserId, ValidationError


class PaymentProviderUnavailable(AdapterUnavailable):
    """The provider did not answer (time-out, connection refused); retry with the same key."""

    code = "payment_provider_unavailable"


class PaymentProviderError(PortError):
    """The provider refused the request itself (bad credentials, unknown transaction...)."""

    code = "payment_provider_error"


class InvalidWebhookSignature(PortError):
    """A webhook whose signature does not verify against the raw body: ignored, 400."""

    code = "invalid_signature"


class InvalidPaymentOptions(ValidationError):
    """Options the buyer gave that the provider does not take (an unknown mock ``outcome``).

    Bad input, like any other rule a well-formed request breaks (422): it is raised by
    :meth:`PaymentProvider.check_options` before anything is recorded.
    """

    code = "invalid_payment_options"


def refuse_any_options(provider: str, options: Mapping[str, str]) -> None:
    """``check_options`` of a provider that takes no options from the buyer."""
    if options:
        raise InvalidPaymentOptions(f"{provider} takes no option {sorted(options)[0]!r}")


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
    expires_at: datetime | None = None
    """When the order stops waiting for this payment (its hold's expiry)."""
    options: Mapping[str, str] = attrs.field(factory=dict)
    """Provider-specific choices from the buyer (e.g. the mock's ``outcome``)."""
    items: tuple[tuple[str, Money], ...] = ()
    """What is bought, line by line (a seat and its price); they add up to ``amount``."""


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

    def check_options(self, options: Mapping[str, str]) -> None:
        """Refuse (``InvalidPaymentOptions``) options this provider does not take.

        Asked before a payment is recorded, so that bad options change nothing; it
        calls nobody. ``create_payment`` refuses the same options the same way.
        """
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

    async def cancel_payment(self, provider_transaction_id: str) -> ProviderPayment:
        """Make sure a payment no longer takes money (its order ended unpaid).

        Answers how it stands after: ``failed`` when it can no longer capture, or
        ``succeeded`` (``refunded``) when the money had already come in — the caller
        then owes a refund. Cancelling twice is harmless.
        """
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
