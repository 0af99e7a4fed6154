from __future__ import annotations

import json
import uuid
from decimal import Decimal

import pytest

from openticket.adapters.payments.mock import MockPaymentProvider
from openticket.application.ports.payments import (
    InvalidPaymentOptions,
    InvalidWebhookSignature,
    PaymentProviderError,
    PaymentRequest,
    ProviderStatus,
)
from openticket.domain.shared import Money, OrderId, PaymentId, UserId

TWD = "TWD"


def request(key: str = "key-1", amount: str = "1200.00", **options: str) -> PaymentRequest:
    return PaymentRequest(
        payment_id=PaymentId(uuid.uuid4()),
        order_id=OrderId(uuid.uuid4()),
        user_id=UserId(uuid.uuid4()),
        amount=Money(Decimal(amount), TWD),
        idempotency_key=key,
        options=options,
    )


async def test_default_outcome_settles_at_once() -> None:
    provider = MockPaymentProvider()
    payment = await provider.create_payment(request())
    assert payment.status is ProviderStatus.SUCCEEDED
    assert (
        await provider.verify_payment(payment.provider_transaction_id)
    ).status is ProviderStatus.SUCCEEDED
    assert provider.captured == Money(Decimal("1200.00"), TWD)


async def test_decline_fails_with_a_reason_and_captures_nothing() -> None:
    provider = MockPaymentProvider()
    payment = await provider.create_payment(request(outcome="decline"))
    assert payment.status is ProviderStatus.FAILED
    assert payment.failure_reason == "card_declined"
    assert provider.captured is None


async def test_a_retried_create_with_the_same_key_charges_once() -> None:
    provider = MockPaymentProvider()
    first = await provider.create_payment(request("same"))
    second = await provider.create_payment(request("same"))
    assert first.provider_transaction_id == second.provider_transaction_id
    assert provider.captured == Money(Decimal("1200.00"), TWD)


async def test_delayed_payment_stays_pending_until_settled() -> None:
    provider = MockPaymentProvider()
    payment = await provider.create_payment(request(outcome="delay"))
    assert payment.status is ProviderStatus.PENDING
    provider.settle(payment.provider_transaction_id, succeed=True)
    assert (
        await provider.verify_payment(payment.provider_transaction_id)
    ).status is ProviderStatus.SUCCEEDED
    with pytest.raises(PaymentProviderError):
        provider.settle(payment.provider_transaction_id, succeed=False)


@pytest.mark.parametrize("options", [{"outcome": "maybe"}, {"outcome": ""}, {"colour": "red"}])
async def test_unknown_options_are_bad_input_and_start_nothing(options: dict[str, str]) -> None:
    provider = MockPaymentProvider()
    with pytest.raises(InvalidPaymentOptions):
        provider.check_options(options)
    with pytest.raises(InvalidPaymentOptions):
        await provider.create_payment(request(**options))
    assert provider.captured is None
    assert (await provider.create_payment(request())).status is ProviderStatus.SUCCEEDED


async def test_refund_is_idempotent_per_key_and_only_for_captured_money() -> None:
    provider = MockPaymentProvider()
    paid = await provider.create_payment(request("a"))
    amount = Money(Decimal("1200.00"), TWD)
    first = await provider.refund(paid.provider_transaction_id, amount, "refund-a")
    again = await provider.refund(paid.provider_transaction_id, amount, "refund-a")
    assert first == again
    assert provider.captured is None
    with pytest.raises(PaymentProviderError):
        await provider.refund(paid.provider_transaction_id, amount, "refund-b")
    declined = await provider.create_payment(request("b", outcome="decline"))
    with pytest.raises(PaymentProviderError):
        await provider.refund(declined.provider_transaction_id, amount, "refund-c")


async def test_webhook_with_a_valid_signature_is_read() -> None:
    provider = MockPaymentProvider(webhook_secret="s3cret")
    body = json.dumps(
        {"event_id": "ev1", "transaction_id": "mock_1", "status": "succeeded"}
    ).encode()
    notice = await provider.parse_webhook({"X-Mock-Signature": provider.sign(body)}, body)
    assert notice is not None
    assert (notice.provider_event_id, notice.status) == ("ev1", ProviderStatus.SUCCEEDED)


@pytest.mark.parametrize("tamper", ["flip-byte", "no-header", "other-secret"])
async def test_webhook_with_a_bad_signature_is_refused(tamper: str) -> None:
    provider = MockPaymentProvider(webhook_secret="s3cret")
    body = json.dumps(
        {"event_id": "ev1", "transaction_id": "mock_1", "status": "succeeded"}
    ).encode()
    headers = {"X-Mock-Signature": provider.sign(body)}
    if tamper == "flip-byte":
        body = body.replace(b"succeeded", b"succeedeD")
    elif tamper == "no-header":
        headers = {}
    else:
        headers = {"X-Mock-Signature": MockPaymentProvider(webhook_secret="other").sign(body)}
    with pytest.raises(InvalidWebhookSignature):
        await provider.parse_webhook(headers, body)


async def test_succeed_after_expiry_stays_pending_until_just_past_the_hold() -> None:
    from datetime import timedelta

    from openticket.adapters.memory import FakeClock

    clock = FakeClock()
    provider = MockPaymentProvider(clock=clock)
    late = PaymentRequest(
        payment_id=PaymentId(uuid.uuid4()),
        order_id=OrderId(uuid.uuid4()),
        user_id=UserId(uuid.uuid4()),
        amount=Money(Decimal("10.00"), TWD),
        idempotency_key="late",
        expires_at=clock.now() + timedelta(seconds=60),
        options={"outcome": "succeed_after_expiry"},
    )
    payment = await provider.create_payment(late)
    assert payment.status is ProviderStatus.PENDING
    clock.advance(60)
    assert (
        await provider.verify_payment(payment.provider_transaction_id)
    ).status is ProviderStatus.PENDING
    clock.advance(1)
    assert (
        await provider.verify_payment(payment.provider_transaction_id)
    ).status is ProviderStatus.SUCCEEDED
    with pytest.raises(PaymentProviderError):
        await MockPaymentProvider().create_payment(
            request("no-clock", outcome="succeed_after_expiry")
        )
