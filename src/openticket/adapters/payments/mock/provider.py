"""A ``PaymentProvider`` that needs no network.

The buyer picks the outcome with the ``outcome`` option: ``succeed`` (the default)
settles at once, ``decline`` fails at once, ``delay`` stays pending until
:meth:`MockPaymentProvider.settle` (or a signed mock webhook) says how it ended, and
``succeed_after_expiry`` stays pending until just after the order's hold has expired,
then reports success to whoever asks (``verify_payment``, as reconciliation does) —
the late payer every flash sale has.
Calls are idempotent by key, like a real provider's: retrying never charges twice.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from enum import StrEnum

import attrs

from openticket.application.ports.clock import Clock
from openticket.application.ports.payments import (
    InvalidPaymentOptions,
    InvalidWebhookSignature,
    PaymentProviderError,
    PaymentRequest,
    ProviderPayment,
    ProviderRefund,
    ProviderStatus,
    WebhookNotice,
)
from openticket.domain.shared import Money, total_of

SIGNATURE_HEADER = "x-mock-signature"
LATE_BY = timedelta(seconds=1)
"""How long after the hold's expiry a ``succeed_after_expiry`` payment succeeds."""


class MockOutcome(StrEnum):
    """How a mock payment ends."""

    SUCCEED = "succeed"
    DECLINE = "decline"
    DELAY = "delay"
    SUCCEED_AFTER_EXPIRY = "succeed_after_expiry"


OUTCOME_STATUS: Mapping[MockOutcome, tuple[ProviderStatus, str | None]] = {
    MockOutcome.SUCCEED: (ProviderStatus.SUCCEEDED, None),
    MockOutcome.DECLINE: (ProviderStatus.FAILED, "card_declined"),
    MockOutcome.DELAY: (ProviderStatus.PENDING, None),
    MockOutcome.SUCCEED_AFTER_EXPIRY: (ProviderStatus.PENDING, None),
}
"""How a new mock payment stands, by the buyer's chosen outcome."""


def check_mock_options(options: Mapping[str, str]) -> MockOutcome:
    """The outcome the options choose (``InvalidPaymentOptions`` for any other option)."""
    others = sorted(set(options) - {"outcome"})
    if others:
        raise InvalidPaymentOptions(f"the mock provider takes no option {others[0]!r}")
    outcome = options.get("outcome", MockOutcome.SUCCEED)
    if outcome not in MockOutcome.__members__.values():
        known = ", ".join(MockOutcome)
        raise InvalidPaymentOptions(f"unknown mock outcome {outcome!r} (one of {known})")
    return MockOutcome(outcome)


def mock_transaction_id(idempotency_key: str) -> str:
    """The transaction id of the payment made with ``idempotency_key``."""
    return f"mock_{hashlib.sha256(idempotency_key.encode()).hexdigest()[:24]}"


def late_settlement(request: PaymentRequest, clock: Clock | None) -> datetime:
    """When a ``succeed_after_expiry`` payment succeeds: just after the hold's expiry."""
    if request.expires_at is None or clock is None:
        raise PaymentProviderError("succeed_after_expiry needs an expiry and a clock")
    return request.expires_at + LATE_BY


def signature(secret: bytes, body: bytes) -> str:
    """The ``X-Mock-Signature`` of a webhook body: HMAC-SHA256, hex."""
    return hmac.new(secret, body, hashlib.sha256).hexdigest()


def read_webhook(secret: bytes, headers: Mapping[str, str], body: bytes) -> WebhookNotice:
    """A mock webhook's notice, its signature checked (``InvalidWebhookSignature``)."""
    given = {k.lower(): v for k, v in headers.items()}.get(SIGNATURE_HEADER, "")
    if not hmac.compare_digest(given, signature(secret, body)):
        raise InvalidWebhookSignature("mock webhook signature does not verify")
    try:
        data = json.loads(body)
        return WebhookNotice(
            provider_event_id=str(data["event_id"]),
            provider_transaction_id=str(data["transaction_id"]),
            status=ProviderStatus(data["status"]),
            failure_reason=data.get("failure_reason"),
        )
    except (ValueError, KeyError, TypeError) as e:
        raise InvalidWebhookSignature("mock webhook body is not a payment notice") from e


@attrs.define
class _Transaction:
    transaction_id: str
    amount: Money
    status: ProviderStatus
    failure_reason: str | None = None
    refunded: Money | None = None
    settles_at: datetime | None = None


class MockPaymentProvider:
    """Settles payments in memory; see the module docstring for the outcomes."""

    def __init__(
        self,
        webhook_secret: str = "mock-webhook-secret",  # noqa: S107  # a test double, not a credential
        name: str = "mock",
        clock: Clock | None = None,
    ) -> None:
        self._clock = clock
        self._secret = webhook_secret.encode()
        self._name = name
        self._by_key: dict[str, _Transaction] = {}
        self._by_id: dict[str, _Transaction] = {}
        self._refunds: dict[str, ProviderRefund] = {}
        self.create_calls = 0
        self.refunds: list[tuple[str, Money]] = []
        """Every refund actually made, as ``(transaction id, amount)``, in order."""

    @property
    def name(self) -> str:
        """``mock``."""
        return self._name

    def check_options(self, options: Mapping[str, str]) -> None:
        """The mock takes one option, ``outcome``, one of :class:`MockOutcome`."""
        check_mock_options(options)

    async def create_payment(self, request: PaymentRequest) -> ProviderPayment:
        """Start (and usually settle) a payment; one transaction per idempotency key."""
        outcome = check_mock_options(request.options)
        self.create_calls += 1
        existing = self._by_key.get(request.idempotency_key)
        if existing is not None:
            return self._view(existing)
        status, reason = OUTCOME_STATUS[outcome]
        settles_at = None
        if outcome is MockOutcome.SUCCEED_AFTER_EXPIRY:
            settles_at = late_settlement(request, self._clock)
        transaction = _Transaction(
            transaction_id=mock_transaction_id(request.idempotency_key),
            amount=request.amount,
            status=status,
            failure_reason=reason,
            settles_at=settles_at,
        )
        self._by_key[request.idempotency_key] = transaction
        self._by_id[transaction.transaction_id] = transaction
        return self._view(transaction)

    async def confirm_payment(self, provider_transaction_id: str, amount: Money) -> ProviderPayment:
        """Nothing to capture separately: the same as :meth:`verify_payment`."""
        transaction = self._get(provider_transaction_id)
        if amount != transaction.amount:
            raise PaymentProviderError("amount does not match the transaction")
        return self._view(transaction)

    async def verify_payment(self, provider_transaction_id: str) -> ProviderPayment:
        """How the transaction stands now (a late payer's money arrives once its time came)."""
        transaction = self._get(provider_transaction_id)
        if (
            transaction.status is ProviderStatus.PENDING
            and transaction.settles_at is not None
            and self._clock is not None
            and self._clock.now() >= transaction.settles_at
        ):
            transaction.status = ProviderStatus.SUCCEEDED
        return self._view(transaction)

    async def cancel_payment(self, provider_transaction_id: str) -> ProviderPayment:
        """A pending payment can take no more money (failed); a settled one says so."""
        transaction = self._get(provider_transaction_id)
        await self.verify_payment(provider_transaction_id)  # a late payer may be in already
        if transaction.status is ProviderStatus.PENDING:
            transaction.status = ProviderStatus.FAILED
            transaction.failure_reason = "cancelled"
            transaction.settles_at = None
        return self._view(transaction)

    async def refund(
        self, provider_transaction_id: str, amount: Money, idempotency_key: str
    ) -> ProviderRefund:
        """Give ``amount`` back once per idempotency key; only captured money can be refunded."""
        done = self._refunds.get(idempotency_key)
        if done is not None:
            return done
        transaction = self._get(provider_transaction_id)
        if transaction.status is not ProviderStatus.SUCCEEDED:
            raise PaymentProviderError(f"cannot refund a {transaction.status.value} payment")
        if amount > transaction.amount:
            raise PaymentProviderError("cannot refund more than was captured")
        transaction.status = ProviderStatus.REFUNDED
        transaction.refunded = amount
        refund = ProviderRefund(provider_refund_id=f"re_{idempotency_key}", amount=amount)
        self._refunds[idempotency_key] = refund
        self.refunds.append((provider_transaction_id, amount))
        return refund

    async def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> WebhookNotice | None:
        """Read a mock webhook signed with HMAC-SHA256 of the raw body."""
        return read_webhook(self._secret, headers, body)

    # --- for tests and demos -------------------------------------------------------

    def sign(self, body: bytes) -> str:
        """The signature header value a genuine mock webhook carries."""
        return signature(self._secret, body)

    def settle(
        self, provider_transaction_id: str, *, succeed: bool, reason: str = "declined"
    ) -> None:
        """End a delayed payment: captured or failed."""
        transaction = self._get(provider_transaction_id)
        if transaction.status is not ProviderStatus.PENDING:
            raise PaymentProviderError(f"payment is {transaction.status.value}, not pending")
        transaction.status = ProviderStatus.SUCCEEDED if succeed else ProviderStatus.FAILED
        transaction.failure_reason = None if succeed else reason

    @property
    def captured(self) -> Money | None:
        """Money captured and not refunded, over all transactions (None if none)."""
        totals = [t.amount for t in self._by_id.values() if t.status is ProviderStatus.SUCCEEDED]
        if not totals:
            return None
        return total_of(totals, totals[0].currency)

    def _get(self, provider_transaction_id: str) -> _Transaction:
        transaction = self._by_id.get(provider_transaction_id)
        if transaction is None:
            raise PaymentProviderError(f"no mock transaction {provider_transaction_id!r}")
        return transaction

    @staticmethod
    def _view(transaction: _Transaction) -> ProviderPayment:
        return ProviderPayment(
            provider_transaction_id=transaction.transaction_id,
            status=transaction.status,
            failure_reason=transaction.failure_reason,
        )
