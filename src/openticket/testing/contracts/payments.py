"""The ``PaymentProvider`` contract: what every payment provider adapter must do.

A provider cannot be tested alone: between creating a payment and confirming it, the
buyer pays at the provider (Stripe.js confirms a card, LINE Pay's page is approved).
So the suite asks for a ``buyer`` fixture that plays that part against the provider's
(loopback) service, and for :meth:`PaymentProviderContract.refunded_at_provider`,
which reads how much the service itself refunded.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from types import MappingProxyType
from typing import Protocol
from uuid import uuid4

import attrs
import pytest

from openticket.application.ports.payments import (
    InvalidPaymentOptions,
    PaymentProvider,
    PaymentProviderError,
    PaymentProviderUnavailable,
    PaymentRequest,
    ProviderPayment,
    ProviderStatus,
)
from openticket.domain.shared import Money, OrderId, PaymentId, UserId


class BuyerAtProvider(Protocol):
    """The buyer, on the provider's side of a payment."""

    async def approve(self, payment: ProviderPayment) -> None:
        """Pay (a card that works, an approval on the provider's page)."""
        ...

    async def decline(self, payment: ProviderPayment) -> None:
        """Try to pay and be refused (a declined card, a failed approval)."""
        ...


class PaymentProviderContract:
    """What every ``PaymentProvider`` adapter must do.

    Subclass it once per adapter and define the async fixtures ``provider`` (the
    adapter, talking to its service), ``buyer`` (a :class:`BuyerAtProvider` for that
    service) and ``unreachable_provider`` (the same adapter configured for an address
    where nothing answers), and override :meth:`refunded_at_provider`. Set
    :attr:`price` to an amount in a currency the service takes. An adapter with no
    network (the mock) sets ``test_a_provider_that_does_not_answer_is_unavailable =
    None``.
    """

    price: Money = Money(Decimal("1200.00"), "TWD")
    """What the test payments are for."""

    captures_on_confirm: bool = False
    """True when the money moves at ``confirm_payment`` (LINE Pay), not at the buyer's."""

    idempotent_create: bool = True
    """False for a provider that cannot find a payment again by our key (LINE Pay): a
    retried create may then start a second one. That is only allowed where a started
    payment takes no money until we confirm it (``captures_on_confirm``)."""

    request_options: Mapping[str, str] = MappingProxyType({})
    """Options of every test payment (the mock's ``{"outcome": "delay"}``: wait for the buyer)."""

    async def refunded_at_provider(
        self, provider: PaymentProvider, payment: ProviderPayment
    ) -> Money:
        """How much the provider's service has refunded of ``payment``, in all."""
        raise TypeError(f"{type(self).__name__} must override refunded_at_provider()")

    # --- helpers ---------------------------------------------------------------------

    def _request(self, key: str | None = None, amount: Money | None = None) -> PaymentRequest:
        return PaymentRequest(
            payment_id=PaymentId(uuid4()),
            order_id=OrderId(uuid4()),
            user_id=UserId(uuid4()),
            amount=amount or self.price,
            idempotency_key=key or f"{uuid4()}:1",
            description="contract test",
            options=dict(self.request_options),
            items=(("Seat A-1-1", amount or self.price),),
        )

    async def _paid(self, provider: PaymentProvider, buyer: BuyerAtProvider) -> ProviderPayment:
        started = await provider.create_payment(self._request())
        await buyer.approve(started)
        confirmed = await provider.confirm_payment(started.provider_transaction_id, self.price)
        assert confirmed.status is ProviderStatus.SUCCEEDED, confirmed
        return confirmed

    # --- creating --------------------------------------------------------------------

    async def test_a_payment_is_created_once_per_idempotency_key(
        self, provider: PaymentProvider
    ) -> None:
        """The same key (a retried call) finds the same payment; another key, another.

        Where that cannot be (``idempotent_create = False``) a retried call starts one
        that takes nothing until confirmed, and the first takes nothing either.
        """
        request = self._request()
        first = await provider.create_payment(request)
        again = await provider.create_payment(request)
        other = await provider.create_payment(self._request())
        assert other.provider_transaction_id != first.provider_transaction_id
        if self.idempotent_create:
            assert again.provider_transaction_id == first.provider_transaction_id
            return
        assert self.captures_on_confirm, "a non-idempotent create must not take money"
        for started in (first, again):
            checked = await provider.verify_payment(started.provider_transaction_id)
            assert checked.status is ProviderStatus.PENDING

    async def test_a_new_payment_waits_for_the_buyer(self, provider: PaymentProvider) -> None:
        """Nothing is taken before the buyer pays, confirm or not."""
        started = await provider.create_payment(self._request())
        assert started.status is ProviderStatus.PENDING
        transaction = started.provider_transaction_id
        assert (await provider.verify_payment(transaction)).status is ProviderStatus.PENDING
        early = await provider.confirm_payment(transaction, self.price)
        assert early.status is ProviderStatus.PENDING

    # --- confirming ------------------------------------------------------------------

    async def test_what_the_buyer_approved_is_confirmed_once(
        self, provider: PaymentProvider, buyer: BuyerAtProvider
    ) -> None:
        """Confirmed with our amount it succeeds; a repeated confirm changes nothing."""
        paid = await self._paid(provider, buyer)
        transaction = paid.provider_transaction_id
        again = await provider.confirm_payment(transaction, self.price)
        assert again.status is ProviderStatus.SUCCEEDED
        assert (await provider.verify_payment(transaction)).status is ProviderStatus.SUCCEEDED

    async def test_a_confirm_for_another_amount_is_refused(
        self, provider: PaymentProvider, buyer: BuyerAtProvider
    ) -> None:
        """An amount that is not the payment's is refused; the right one still works.

        Where the confirm is what takes the money, the refused one took nothing.
        """
        started = await provider.create_payment(self._request())
        await buyer.approve(started)
        transaction = started.provider_transaction_id
        wrong = Money(self.price.amount + 1, self.price.currency)
        with pytest.raises(PaymentProviderError):
            await provider.confirm_payment(transaction, wrong)
        if self.captures_on_confirm:
            after = await provider.verify_payment(transaction)
            assert after.status is not ProviderStatus.SUCCEEDED
        right = await provider.confirm_payment(transaction, self.price)
        assert right.status is ProviderStatus.SUCCEEDED

    async def test_a_declined_buyer_pays_nothing(
        self, provider: PaymentProvider, buyer: BuyerAtProvider
    ) -> None:
        """After a refusal the payment ends failed once cancelled, and stays failed."""
        started = await provider.create_payment(self._request())
        await buyer.decline(started)
        transaction = started.provider_transaction_id
        confirmed = await provider.confirm_payment(transaction, self.price)
        assert confirmed.status is not ProviderStatus.SUCCEEDED
        cancelled = await provider.cancel_payment(transaction)
        assert cancelled.status is ProviderStatus.FAILED
        assert cancelled.failure_reason

    # --- cancelling -------------------------------------------------------------------

    async def test_cancelling_a_payment_nobody_paid_ends_it_failed(
        self, provider: PaymentProvider
    ) -> None:
        """Its order ended: the payment can take no money; cancelling twice is harmless."""
        started = await provider.create_payment(self._request())
        transaction = started.provider_transaction_id
        assert (await provider.cancel_payment(transaction)).status is ProviderStatus.FAILED
        assert (await provider.cancel_payment(transaction)).status is ProviderStatus.FAILED

    async def test_cancelling_too_late_says_the_money_came_in(
        self, provider: PaymentProvider, buyer: BuyerAtProvider
    ) -> None:
        """A payment that succeeded cannot be cancelled: the caller learns it owes a refund."""
        paid = await self._paid(provider, buyer)
        late = await provider.cancel_payment(paid.provider_transaction_id)
        assert late.status is ProviderStatus.SUCCEEDED

    # --- refunding --------------------------------------------------------------------

    async def test_a_refund_is_made_once_per_idempotency_key(
        self, provider: PaymentProvider, buyer: BuyerAtProvider
    ) -> None:
        """Refunding again with the same key (a retry) gives back nothing more."""
        paid = await self._paid(provider, buyer)
        transaction, key = paid.provider_transaction_id, f"refund:{uuid4()}"
        refund = await provider.refund(transaction, self.price, key)
        assert refund.amount == self.price
        again = await provider.refund(transaction, self.price, key)
        assert again.amount == self.price
        assert await self.refunded_at_provider(provider, paid) == self.price

    async def test_money_never_taken_cannot_be_refunded(self, provider: PaymentProvider) -> None:
        """A refund of a payment that took nothing is refused."""
        started = await provider.create_payment(self._request())
        with pytest.raises(PaymentProviderError):
            await provider.refund(started.provider_transaction_id, self.price, f"r:{uuid4()}")

    # --- errors -----------------------------------------------------------------------

    async def test_options_it_does_not_take_are_refused_before_anything_starts(
        self, provider: PaymentProvider
    ) -> None:
        """``check_options`` refuses an option the provider does not take; so does creating.

        The options of the suite's own payments pass, and a payment started after a
        refused one is a payment like any other.
        """
        provider.check_options(dict(self.request_options))
        bad = {**self.request_options, "no_such_option": "x"}
        with pytest.raises(InvalidPaymentOptions):
            provider.check_options(bad)
        refused = attrs.evolve(self._request(), options=bad)
        with pytest.raises(InvalidPaymentOptions):
            await provider.create_payment(refused)
        started = await provider.create_payment(self._request())
        assert started.status is ProviderStatus.PENDING, started

    async def test_an_unknown_payment_is_a_provider_error(self, provider: PaymentProvider) -> None:
        """A transaction the provider never issued is refused, not taken for pending."""
        with pytest.raises(PaymentProviderError):
            await provider.verify_payment("9999999999999999999")

    async def test_a_provider_that_does_not_answer_is_unavailable(
        self, unreachable_provider: PaymentProvider
    ) -> None:
        """No answer is ``PaymentProviderUnavailable``: the caller may retry, same key."""
        with pytest.raises(PaymentProviderUnavailable):
            await unreachable_provider.create_payment(self._request())
        with pytest.raises(PaymentProviderUnavailable):
            await unreachable_provider.verify_payment("9999999999999999999")
