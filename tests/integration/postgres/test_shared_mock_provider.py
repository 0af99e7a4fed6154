"""The payment-provider contract on the mock whose books are in PostgreSQL.

Two providers on one database stand for two processes of a deployment: a payment taken
through one is refunded, reconciled or cancelled through the other, as at a real
provider.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from types import MappingProxyType
from uuid import uuid4

import pytest

from openticket.adapters.memory import FakeClock
from openticket.adapters.payments.mock.shared import SharedMockPaymentProvider
from openticket.adapters.postgres import PostgresDatabase
from openticket.application.ports.payments import (
    PaymentProvider,
    PaymentRequest,
    ProviderPayment,
    ProviderStatus,
)
from openticket.domain.shared import Money, OrderId, PaymentId, UserId
from openticket.testing.contracts import PaymentProviderContract

pytestmark = pytest.mark.postgres

PRICE = Money(Decimal("1200.00"), "TWD")


class SharedMockBuyer:
    """The buyer of a delayed mock payment: the mock settles when told."""

    def __init__(self, mock: SharedMockPaymentProvider) -> None:
        self._mock = mock

    async def approve(self, payment: ProviderPayment) -> None:
        await self._mock.settle(payment.provider_transaction_id, succeed=True)

    async def decline(self, payment: ProviderPayment) -> None:
        await self._mock.settle(payment.provider_transaction_id, succeed=False)


class TestSharedMockPaymentProvider(PaymentProviderContract):
    request_options = MappingProxyType({"outcome": "delay"})
    test_a_provider_that_does_not_answer_is_unavailable = None  # its database is the network

    @pytest.fixture
    def provider(self, pg_database: PostgresDatabase) -> SharedMockPaymentProvider:
        return SharedMockPaymentProvider(pg_database, FakeClock())

    @pytest.fixture
    def buyer(self, provider: SharedMockPaymentProvider) -> SharedMockBuyer:
        return SharedMockBuyer(provider)

    async def refunded_at_provider(
        self, provider: PaymentProvider, payment: ProviderPayment
    ) -> Money:
        assert isinstance(provider, SharedMockPaymentProvider)
        refunded = await provider.refunded(payment.provider_transaction_id)
        assert refunded is not None
        return refunded


def request(outcome: str, expires_in: timedelta = timedelta(minutes=2)) -> PaymentRequest:
    return PaymentRequest(
        payment_id=PaymentId(uuid4()),
        order_id=OrderId(uuid4()),
        user_id=UserId(uuid4()),
        amount=PRICE,
        idempotency_key=f"pay-{uuid4()}",
        expires_at=FakeClock().now() + expires_in,
        options={"outcome": outcome},
    )


async def test_what_one_process_took_another_refunds_once(
    pg_database: PostgresDatabase, other_database: PostgresDatabase
) -> None:
    api = SharedMockPaymentProvider(pg_database, FakeClock())
    worker = SharedMockPaymentProvider(other_database, FakeClock())
    taken = await api.create_payment(request("succeed"))
    assert taken.status is ProviderStatus.SUCCEEDED
    first = await worker.refund(taken.provider_transaction_id, PRICE, "refund-1")
    again = await api.refund(taken.provider_transaction_id, PRICE, "refund-1")
    assert first == again
    assert (
        await api.verify_payment(taken.provider_transaction_id)
    ).status is ProviderStatus.REFUNDED
    assert await worker.refunded(taken.provider_transaction_id) == PRICE


async def test_a_late_payer_is_found_by_any_process_once_its_time_came(
    pg_database: PostgresDatabase, other_database: PostgresDatabase
) -> None:
    clock = FakeClock()
    api = SharedMockPaymentProvider(pg_database, clock)
    worker = SharedMockPaymentProvider(other_database, clock)
    late = await api.create_payment(request("succeed_after_expiry"))
    assert (
        await worker.verify_payment(late.provider_transaction_id)
    ).status is ProviderStatus.PENDING
    clock.advance(timedelta(minutes=3))
    assert (
        await worker.verify_payment(late.provider_transaction_id)
    ).status is ProviderStatus.SUCCEEDED


async def test_two_processes_refunding_at_once_make_one_refund(
    pg_database: PostgresDatabase, other_database: PostgresDatabase
) -> None:
    """The API process and a worker refund the same late payment at the same moment."""
    import asyncio

    api = SharedMockPaymentProvider(pg_database, FakeClock())
    worker = SharedMockPaymentProvider(other_database, FakeClock())
    for _ in range(20):
        taken = await api.create_payment(request("succeed"))
        first, second = await asyncio.gather(
            api.refund(
                taken.provider_transaction_id, PRICE, f"refund-{taken.provider_transaction_id}"
            ),
            worker.refund(
                taken.provider_transaction_id, PRICE, f"refund-{taken.provider_transaction_id}"
            ),
        )
        assert first == second
        assert await api.refunded(taken.provider_transaction_id) == PRICE
