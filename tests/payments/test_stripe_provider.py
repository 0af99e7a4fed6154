"""The Stripe adapter against the loopback Stripe: the provider contract, the webhook
signature, and what a retried call does."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest

from openticket.adapters.memory import FakeClock
from openticket.adapters.payments.stripe import StripePaymentProvider, minor_units
from openticket.adapters.system import SystemClock
from openticket.application.ports.payments import (
    InvalidWebhookSignature,
    PaymentProvider,
    PaymentProviderError,
    PaymentProviderUnavailable,
    ProviderPayment,
    ProviderStatus,
)
from openticket.domain.shared import Money
from openticket.testing.contracts import PaymentProviderContract

from .conftest import STRIPE_KEY, StripeBuyer, free_port

pytestmark = pytest.mark.stripe

SECRET = "whsec_contract_tests"


@pytest.fixture
async def stripe_provider(stripe_server: str) -> AsyncIterator[StripePaymentProvider]:
    provider = StripePaymentProvider(
        STRIPE_KEY, [SECRET], clock=SystemClock(), api_base=stripe_server, timeout=5
    )
    yield provider
    await provider.stop()


class TestStripePaymentProvider(PaymentProviderContract):
    @pytest.fixture
    def provider(self, stripe_provider: StripePaymentProvider) -> StripePaymentProvider:
        return stripe_provider

    @pytest.fixture
    def buyer(self, stripe_server: str) -> StripeBuyer:
        return StripeBuyer(stripe_server)

    @pytest.fixture
    async def unreachable_provider(self) -> AsyncIterator[StripePaymentProvider]:
        provider = StripePaymentProvider(
            STRIPE_KEY,
            [SECRET],
            clock=SystemClock(),
            api_base=f"http://127.0.0.1:{free_port()}",
            timeout=1,
        )
        yield provider
        await provider.stop()

    @pytest.fixture(autouse=True)
    def _server(self, stripe_server: str) -> None:
        self.stripe_base = stripe_server

    async def refunded_at_provider(
        self, provider: PaymentProvider, payment: ProviderPayment
    ) -> Money:
        async with httpx.AsyncClient(base_url=self.stripe_base, auth=(STRIPE_KEY, "")) as http:
            listed = await http.get(
                "/v1/refunds", params={"payment_intent": payment.provider_transaction_id}
            )
        cents = sum(r["amount"] for r in listed.json()["data"])
        return Money(Decimal(cents) / 100, self.price.currency)


# --- webhooks -----------------------------------------------------------------------------

NOW = 1_900_000_000


def signed(body: bytes, *, secret: str = SECRET, at: int = NOW, extra: str = "") -> str:
    mac = hmac.new(secret.encode(), f"{at}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={at},v1={mac}{extra}"


def event(kind: str, thing: dict[str, object], event_id: str = "evt_1") -> bytes:
    return json.dumps({"id": event_id, "type": kind, "data": {"object": thing}}).encode()


@pytest.fixture
async def verifier() -> AsyncIterator[StripePaymentProvider]:
    """An adapter whose clock stands at ``NOW``, for signatures of known time."""
    clock = FakeClock()
    clock.set(datetime.fromtimestamp(NOW, UTC))
    provider = StripePaymentProvider("sk_test_x", [SECRET, "whsec_old"], clock=clock)
    yield provider
    await provider.stop()


async def test_the_three_events_become_notices(verifier: StripePaymentProvider) -> None:
    cases = [
        (event("payment_intent.succeeded", {"id": "pi_1"}), ProviderStatus.SUCCEEDED, None),
        (
            event(
                "payment_intent.payment_failed",
                {"id": "pi_1", "last_payment_error": {"code": "card_declined"}},
            ),
            ProviderStatus.FAILED,
            "card_declined",
        ),
        (
            event("charge.refunded", {"id": "ch_1", "payment_intent": "pi_1", "refunded": True}),
            ProviderStatus.REFUNDED,
            None,
        ),
    ]
    for body, status, reason in cases:
        notice = await verifier.parse_webhook({"Stripe-Signature": signed(body)}, body)
        assert notice is not None
        assert (notice.provider_transaction_id, notice.status, notice.failure_reason) == (
            "pi_1",
            status,
            reason,
        )
        assert notice.provider_event_id == "evt_1"


async def test_other_events_and_partial_refunds_are_not_news(
    verifier: StripePaymentProvider,
) -> None:
    for body in (
        event("customer.created", {"id": "cus_1"}),
        event("charge.refunded", {"id": "ch_1", "payment_intent": "pi_1", "refunded": False}),
    ):
        assert await verifier.parse_webhook({"Stripe-Signature": signed(body)}, body) is None


@pytest.mark.parametrize(
    ("header", "why"),
    [
        ("", "missing"),
        ("garbled", "garbled"),
        ("t=1900000000", "no v1"),
        (signed(b"other body"), "a byte flipped"),
        (signed(event("payment_intent.succeeded", {"id": "pi_1"}), secret="whsec_bad"), "key"),
        (signed(event("payment_intent.succeeded", {"id": "pi_1"}), at=NOW - 301), "stale"),
        (signed(event("payment_intent.succeeded", {"id": "pi_1"}), at=NOW + 301), "future"),
    ],
)
async def test_a_bad_signature_is_refused(
    verifier: StripePaymentProvider, header: str, why: str
) -> None:
    body = event("payment_intent.succeeded", {"id": "pi_1"})
    with pytest.raises(InvalidWebhookSignature):
        await verifier.parse_webhook({"Stripe-Signature": header}, body)


async def test_signatures_within_tolerance_and_of_a_rolled_secret_are_accepted(
    verifier: StripePaymentProvider,
) -> None:
    body = event("payment_intent.succeeded", {"id": "pi_1"})
    for header in (
        signed(body, at=NOW - 299),
        signed(body, at=NOW + 299),
        # Stripe signs with the old and the new secret while one is rolled
        signed(body, secret="whsec_unknown") + ",v1=" + signed(body).split("v1=")[1],
        signed(body, secret="whsec_old"),
    ):
        assert await verifier.parse_webhook({"stripe-signature": header}, body) is not None


# --- retries --------------------------------------------------------------------------------


async def test_a_create_answered_too_late_and_retried_makes_one_intent(
    stripe_server: str,
) -> None:
    """The first answer comes after the client gave up; the retry, same key, finds it."""
    impatient = StripePaymentProvider(
        STRIPE_KEY, [SECRET], clock=SystemClock(), api_base=stripe_server, timeout=0.5
    )
    contract = TestStripePaymentProvider()
    request = contract._request()
    async with httpx.AsyncClient(base_url=stripe_server) as http:
        delayed = await http.post(
            "/_config/delay_next", json={"path": "/v1/payment_intents", "seconds": 1.5}
        )
        assert delayed.status_code == 200
    started = time.monotonic()
    with pytest.raises(PaymentProviderUnavailable):
        await impatient.create_payment(request)
    assert time.monotonic() - started < 1.5
    retried = await impatient.create_payment(request)
    async with httpx.AsyncClient(base_url=stripe_server, auth=(STRIPE_KEY, "")) as http:
        listed = (await http.get("/v1/payment_intents", params={"limit": 100})).json()["data"]
    mine = [i for i in listed if i["metadata"].get("payment_id") == str(request.payment_id)]
    assert [i["id"] for i in mine] == [retried.provider_transaction_id]
    await impatient.stop()


def test_amounts_go_in_the_currencys_minor_unit() -> None:
    assert minor_units(Money("1200.00", "TWD")) == 120000
    assert minor_units(Money("1200", "JPY")) == 1200
    assert minor_units(Money("1.234", "KWD")) == 1234
    assert minor_units(Money("12.34", "USD")) == 1234


def test_too_many_decimals_for_the_currency_are_refused() -> None:
    for amount in (Money("12.345", "USD"), Money("12.5", "JPY")):
        with pytest.raises(PaymentProviderError):
            minor_units(amount)

