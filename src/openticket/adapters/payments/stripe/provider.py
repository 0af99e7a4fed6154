"""Stripe behind the ``PaymentProvider`` port: one PaymentIntent per payment attempt.

The official SDK (``stripe.StripeClient``, async over httpx) talks to ``api_base``
(Stripe itself by default; a loopback server in tests). Stripe's objects, statuses and
errors stay in here:

* **create**: a PaymentIntent for the amount in the currency's minor unit, with the
  attempt's idempotency key (``{order_id}:{attempt}``) as ``Idempotency-Key``, so a
  retried call finds the same intent; its ``client_secret`` goes to the buyer, whose
  browser confirms it with Stripe.js. Our ids travel in its ``metadata``.
* **status**: ``succeeded`` is succeeded (refunded once its refunds cover the amount),
  ``canceled`` is failed, everything else is pending. A declined attempt leaves the
  intent at ``requires_payment_method``, where the buyer may still try another card:
  still pending, until cancelled (:meth:`StripePaymentProvider.cancel_payment`).
* **cancel**: cancels the intent so it can take no money; an intent that succeeded
  meanwhile cannot be cancelled, and says so (the caller refunds).
* **refund**: a Refund of the intent with the idempotency key ``refund:{payment_id}``.
* **webhooks**: ``Stripe-Signature`` is checked on the raw body — HMAC-SHA256 of
  ``"{t}.{body}"`` with the endpoint secret, any of the ``v1`` signatures (Stripe signs
  with the old and the new secret while one is rolled), ``t`` within ``tolerance`` of
  our clock in either direction — before anything is read. ``payment_intent.succeeded``,
  ``payment_intent.payment_failed``, ``payment_intent.canceled`` and (a full)
  ``charge.refunded`` are notices; other events are acknowledged and ignored.

Errors: no answer, 429 or a 5xx is ``PaymentProviderUnavailable`` (the service retries
with the same key); any other refusal is ``PaymentProviderError``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import timedelta
from decimal import Decimal
from typing import Any, Final, TypeVar

import stripe

from openticket.application.ports.clock import Clock
from openticket.application.ports.payments import (
    InvalidWebhookSignature,
    PaymentProviderError,
    PaymentProviderUnavailable,
    PaymentRequest,
    ProviderPayment,
    ProviderRefund,
    ProviderStatus,
    WebhookNotice,
    refuse_any_options,
)
from openticket.domain.shared import Money

SIGNATURE_HEADER: Final = "stripe-signature"
DEFAULT_TOLERANCE: Final = timedelta(seconds=300)

ZERO_DECIMAL: Final = frozenset(
    "BIF CLP DJF GNF JPY KMF KRW MGA PYG RWF UGX VND VUV XAF XOF XPF".split()  # noqa: SIM905
)
"""Currencies Stripe counts in whole units."""
THREE_DECIMAL: Final = frozenset(["BHD", "JOD", "KWD", "OMR", "TND"])
"""Currencies Stripe counts in thousandths."""

_T = TypeVar("_T")


def minor_units(amount: Money) -> int:
    """``amount`` in Stripe's smallest unit of its currency (cents, yen...)."""
    currency = amount.currency
    exponent = 0 if currency in ZERO_DECIMAL else 3 if currency in THREE_DECIMAL else 2
    scaled = amount.amount * (Decimal(10) ** exponent)
    if scaled != scaled.to_integral_value():
        raise PaymentProviderError(f"{amount.amount} {amount.currency} has too many decimals")
    return int(scaled)


class StripePaymentProvider:
    """The ``PaymentProvider`` of Stripe; see the module docstring."""

    def __init__(
        self,
        api_key: str,
        webhook_secrets: Sequence[str],
        *,
        clock: Clock,
        api_base: str | None = None,
        timeout: float = 10.0,
        tolerance: timedelta = DEFAULT_TOLERANCE,
    ) -> None:
        if not api_key:
            raise ValueError("Stripe needs an API key (OPENTICKET_STRIPE_API_KEY)")
        if not any(webhook_secrets):
            raise ValueError("Stripe needs a webhook secret (OPENTICKET_STRIPE_WEBHOOK_SECRET)")
        self._http = stripe.HTTPXClient(timeout=timeout)
        self._client = stripe.StripeClient(
            api_key,
            base_addresses={"api": api_base} if api_base else None,
            http_client=self._http,
            max_network_retries=0,  # the payment service retries, with the same key
        )
        self._secrets = tuple(s.encode() for s in webhook_secrets if s)
        self._clock = clock
        self._tolerance = tolerance.total_seconds()

    @property
    def name(self) -> str:
        """``stripe``."""
        return "stripe"

    async def start(self) -> None:
        """Nothing to open: the HTTP client connects on first use."""

    async def stop(self) -> None:
        """Close the HTTP connections."""
        await self._http.close_async()  # type: ignore[no-untyped-call]  # untyped in the SDK

    # --- the port -------------------------------------------------------------------

    def check_options(self, options: Mapping[str, str]) -> None:
        """Stripe takes no options from the buyer: any is refused."""
        refuse_any_options(self.name, options)

    async def create_payment(self, request: PaymentRequest) -> ProviderPayment:
        """A PaymentIntent for the request, once per idempotency key."""
        self.check_options(request.options)
        params: dict[str, Any] = {
            "amount": minor_units(request.amount),
            "currency": request.amount.currency.lower(),
            "payment_method_types": ["card"],
            "metadata": {
                "payment_id": str(request.payment_id),
                "order_id": str(request.order_id),
                "user_id": str(request.user_id),
            },
        }
        intent = await self._call(
            lambda: self._client.v1.payment_intents.create_async(
                params,  # type: ignore[arg-type]  # a plain dict is what the SDK sends
                options={"idempotency_key": request.idempotency_key},
            )
        )
        return await self._view(intent)

    async def confirm_payment(self, provider_transaction_id: str, amount: Money) -> ProviderPayment:
        """The buyer confirms with Stripe.js: here the intent is checked against ``amount``."""
        intent = await self._retrieve(provider_transaction_id)
        if intent.amount != minor_units(amount) or intent.currency != amount.currency.lower():
            raise PaymentProviderError(
                f"payment intent {intent.id} is for {intent.amount} {intent.currency}, not"
                f" {amount.amount} {amount.currency}"
            )
        return await self._view(intent)

    async def verify_payment(self, provider_transaction_id: str) -> ProviderPayment:
        """How the intent stands now, refunds included."""
        return await self._view(await self._retrieve(provider_transaction_id))

    async def cancel_payment(self, provider_transaction_id: str) -> ProviderPayment:
        """Cancel the intent; one that succeeded (or was cancelled) answers as it stands."""
        try:
            intent = await self._call(
                lambda: self._client.v1.payment_intents.cancel_async(
                    provider_transaction_id,
                    options={"idempotency_key": f"cancel:{provider_transaction_id}"},
                )
            )
        except PaymentProviderError:  # not cancellable any more: say why
            intent = await self._retrieve(provider_transaction_id)
        return await self._view(intent)

    async def refund(
        self, provider_transaction_id: str, amount: Money, idempotency_key: str
    ) -> ProviderRefund:
        """Refund ``amount`` of the intent, once per idempotency key."""
        refund = await self._call(
            lambda: self._client.v1.refunds.create_async(
                {"payment_intent": provider_transaction_id, "amount": minor_units(amount)},
                options={"idempotency_key": idempotency_key},
            )
        )
        return ProviderRefund(provider_refund_id=refund.id, amount=amount)

    async def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> WebhookNotice | None:
        """Verify ``Stripe-Signature`` on the raw body, then read the event."""
        self.verify_signature(headers, body)
        try:
            event = json.loads(body)
            kind, thing = str(event["type"]), event["data"]["object"]
            event_id = str(event["id"])
        except (ValueError, KeyError, TypeError) as e:
            raise InvalidWebhookSignature("the Stripe webhook is not an event") from e
        notice = _notice(kind, thing)
        if notice is None:
            return None
        transaction, status, reason = notice
        return WebhookNotice(
            provider_event_id=event_id,
            provider_transaction_id=transaction,
            status=status,
            failure_reason=reason,
        )

    def verify_signature(self, headers: Mapping[str, str], body: bytes) -> None:
        """Raise ``InvalidWebhookSignature`` unless a ``v1`` of a fresh ``t`` verifies."""
        header = {k.lower(): v for k, v in headers.items()}.get(SIGNATURE_HEADER, "")
        timestamps, signatures = [], []
        for part in header.split(","):
            key, _, value = part.strip().partition("=")
            if key == "t":
                timestamps.append(value)
            elif key == "v1":
                signatures.append(value)
        if len(timestamps) != 1 or not timestamps[0].isdigit() or not signatures:
            raise InvalidWebhookSignature("no Stripe-Signature with a timestamp and a v1")
        sent_at = int(timestamps[0])
        if abs(self._clock.now().timestamp() - sent_at) > self._tolerance:
            raise InvalidWebhookSignature("the Stripe-Signature timestamp is out of tolerance")
        signed = timestamps[0].encode() + b"." + body
        expected = [hmac.new(s, signed, hashlib.sha256).hexdigest() for s in self._secrets]
        if not any(hmac.compare_digest(e, v) for e in expected for v in signatures):
            raise InvalidWebhookSignature("no Stripe-Signature v1 verifies")

    # --- Stripe's objects, in here only ------------------------------------------------

    async def _retrieve(self, provider_transaction_id: str) -> stripe.PaymentIntent:
        return await self._call(
            lambda: self._client.v1.payment_intents.retrieve_async(provider_transaction_id)
        )

    async def _view(self, intent: stripe.PaymentIntent) -> ProviderPayment:
        if intent.status == "succeeded":
            refunds = await self._call(
                lambda: self._client.v1.refunds.list_async(
                    {"payment_intent": intent.id, "limit": 100}
                )
            )
            refunded = sum(r.amount for r in refunds.data if r.status != "failed")
            covered = refunded >= intent.amount
            status = ProviderStatus.REFUNDED if covered else ProviderStatus.SUCCEEDED
        elif intent.status == "canceled":
            status = ProviderStatus.FAILED
        else:
            status = ProviderStatus.PENDING
        error = getattr(intent, "last_payment_error", None)
        reason = None
        if status is ProviderStatus.FAILED:
            reason = (getattr(error, "code", None) if error else None) or "canceled"
        return ProviderPayment(
            provider_transaction_id=intent.id,
            status=status,
            client_secret=intent.client_secret,
            failure_reason=reason,
        )

    @staticmethod
    async def _call(call: Callable[[], Awaitable[_T]]) -> _T:
        try:
            return await call()
        except (stripe.APIConnectionError, stripe.RateLimitError) as e:
            raise PaymentProviderUnavailable(f"Stripe did not answer: {e}") from e
        except stripe.StripeError as e:
            if (e.http_status or 500) >= 500:
                raise PaymentProviderUnavailable(f"Stripe failed: {e}") from e
            raise PaymentProviderError(f"Stripe refused: {e}") from e


def _notice(kind: str, thing: Mapping[str, Any]) -> tuple[str, ProviderStatus, str | None] | None:
    """``(payment intent, status, failure reason)`` of an event, or None if it is not news."""
    if kind == "payment_intent.succeeded":
        return str(thing["id"]), ProviderStatus.SUCCEEDED, None
    if kind in ("payment_intent.payment_failed", "payment_intent.canceled"):
        error = thing.get("last_payment_error") or {}
        reason = error.get("code") if isinstance(error, Mapping) else None
        return str(thing["id"]), ProviderStatus.FAILED, reason or kind.rsplit(".", 1)[1]
    if kind == "charge.refunded" and thing.get("payment_intent") and thing.get("refunded", True):
        return str(thing["payment_intent"]), ProviderStatus.REFUNDED, None
    return None
