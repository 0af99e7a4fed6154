"""The payment-provider contract on the mock provider (the embedded profile's)."""

from __future__ import annotations

from types import MappingProxyType

import pytest

from openticket.adapters.memory import FakeClock
from openticket.adapters.payments.mock import MockPaymentProvider
from openticket.application.ports.payments import PaymentProvider, ProviderPayment
from openticket.domain.shared import Money
from openticket.testing.contracts import PaymentProviderContract


class MockBuyer:
    """The buyer of a delayed mock payment: the mock settles when told."""

    def __init__(self, mock: MockPaymentProvider) -> None:
        self._mock = mock

    async def approve(self, payment: ProviderPayment) -> None:
        self._mock.settle(payment.provider_transaction_id, succeed=True)

    async def decline(self, payment: ProviderPayment) -> None:
        self._mock.settle(payment.provider_transaction_id, succeed=False)


class TestMockPaymentProvider(PaymentProviderContract):
    request_options = MappingProxyType({"outcome": "delay"})
    test_a_provider_that_does_not_answer_is_unavailable = None  # no network to lose

    @pytest.fixture
    def provider(self) -> MockPaymentProvider:
        return MockPaymentProvider(clock=FakeClock())

    @pytest.fixture
    def buyer(self, provider: MockPaymentProvider) -> MockBuyer:
        return MockBuyer(provider)

    async def refunded_at_provider(
        self, provider: PaymentProvider, payment: ProviderPayment
    ) -> Money:
        assert isinstance(provider, MockPaymentProvider)
        [amount] = [a for t, a in provider.refunds if t == payment.provider_transaction_id]
        return amount
