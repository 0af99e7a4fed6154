"""Payment context: one attempt to pay for an order through a provider.

::

    initiated ──► pending ──► succeeded ──► refunded
        │            │
        └──► failed ◄┘

The idempotency key is fixed when the payment is created and sent with every call to
the provider, so a retried call never charges twice.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import TypedDict
from uuid import UUID

import attrs

from openticket.domain.shared import (
    Aggregate,
    DomainEvent,
    IdFactory,
    InvalidTransition,
    Money,
    OrderId,
    PaymentId,
    UserId,
    ValidationError,
)


class PaymentStatus(StrEnum):
    """Where a payment stands."""

    INITIATED = "initiated"
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    REFUNDED = "refunded"


_P = PaymentStatus
LEGAL_PAYMENT_TRANSITIONS: dict[PaymentStatus, frozenset[PaymentStatus]] = {
    _P.INITIATED: frozenset({_P.PENDING, _P.FAILED}),
    _P.PENDING: frozenset({_P.SUCCEEDED, _P.FAILED}),
    _P.SUCCEEDED: frozenset({_P.REFUNDED}),
    _P.FAILED: frozenset(),
    _P.REFUNDED: frozenset(),
}
"""Every legal move of a payment; nothing else is allowed."""


@attrs.frozen(kw_only=True)
class PaymentEvent(DomainEvent):
    """Base of events about one payment."""

    payment_id: PaymentId
    order_id: OrderId
    user_id: UserId
    provider: str
    amount: Money


@attrs.frozen(kw_only=True)
class PaymentInitiated(PaymentEvent):
    """A payment was started for an order."""


@attrs.frozen(kw_only=True)
class PaymentSucceeded(PaymentEvent):
    """The provider captured the money."""

    provider_transaction_id: str | None


@attrs.frozen(kw_only=True)
class PaymentFailed(PaymentEvent):
    """The provider declined or the attempt failed."""

    reason: str


@attrs.frozen(kw_only=True)
class PaymentRefunded(PaymentEvent):
    """Captured money was paid back."""

    reason: str


@attrs.define(kw_only=True)
class Payment(Aggregate):
    """One attempt to pay an order's total through one provider."""

    payment_id: PaymentId
    order_id: OrderId
    user_id: UserId
    provider: str
    amount: Money
    idempotency_key: str
    status: PaymentStatus = PaymentStatus.INITIATED
    provider_transaction_id: str | None = None
    redirect_url: str | None = None
    """Where the buyer approves the payment at the provider (LINE Pay's page), if anywhere."""
    failure_reason: str | None = None
    refund_reason: str | None = None
    created_at: datetime
    processed_at: datetime | None = None
    refunded_at: datetime | None = None

    @classmethod
    def initiate(
        cls,
        *,
        payment_id: PaymentId,
        order_id: OrderId,
        user_id: UserId,
        provider: str,
        amount: Money,
        idempotency_key: str,
        now: datetime,
        ids: IdFactory,
    ) -> Payment:
        """Start paying ``amount`` for an order."""
        if amount.is_negative:
            raise ValidationError("a payment amount cannot be negative")
        if not provider or not idempotency_key:
            raise ValidationError("a payment needs a provider and an idempotency key")
        payment = cls(
            payment_id=payment_id,
            order_id=order_id,
            user_id=user_id,
            provider=provider,
            amount=amount,
            idempotency_key=idempotency_key,
            created_at=now,
        )
        payment.record(PaymentInitiated(**payment._fields(now, ids)))
        return payment

    @property
    def is_captured(self) -> bool:
        """Whether money was taken (and not yet given back)."""
        return self.status is PaymentStatus.SUCCEEDED

    def mark_pending(
        self, provider_transaction_id: str | None, redirect_url: str | None = None
    ) -> None:
        """The provider accepted the attempt and will settle it later.

        ``redirect_url`` is where the buyer approves it, if the provider has such a page.
        """
        self._move(PaymentStatus.PENDING)
        self.status = PaymentStatus.PENDING
        if provider_transaction_id is not None:
            self.provider_transaction_id = provider_transaction_id
        self.redirect_url = redirect_url

    def succeed(
        self, *, now: datetime, ids: IdFactory, provider_transaction_id: str | None = None
    ) -> None:
        """The provider captured the money."""
        self._move(PaymentStatus.SUCCEEDED)
        self.status = PaymentStatus.SUCCEEDED
        if provider_transaction_id is not None:
            self.provider_transaction_id = provider_transaction_id
        self.processed_at = now
        self.record(
            PaymentSucceeded(
                **self._fields(now, ids), provider_transaction_id=self.provider_transaction_id
            )
        )

    def fail(self, reason: str, *, now: datetime, ids: IdFactory) -> None:
        """The provider declined, or the attempt could not be made."""
        self._move(PaymentStatus.FAILED)
        self.status = PaymentStatus.FAILED
        self.failure_reason = reason
        self.processed_at = now
        self.record(PaymentFailed(**self._fields(now, ids), reason=reason))

    def refund(self, reason: str, *, now: datetime, ids: IdFactory) -> None:
        """Captured money was paid back."""
        self._move(PaymentStatus.REFUNDED)
        self.status = PaymentStatus.REFUNDED
        self.refund_reason = reason
        self.refunded_at = now
        self.record(PaymentRefunded(**self._fields(now, ids), reason=reason))

    def _move(self, target: PaymentStatus) -> None:
        if target not in LEGAL_PAYMENT_TRANSITIONS[self.status]:
            raise InvalidTransition("payment", self.status.value, target.value)

    def _fields(self, now: datetime, ids: IdFactory) -> _PaymentEventFields:
        return {
            "event_id": ids(),
            "occurred_at": now,
            "payment_id": self.payment_id,
            "order_id": self.order_id,
            "user_id": self.user_id,
            "provider": self.provider,
            "amount": self.amount,
        }


class _PaymentEventFields(TypedDict):
    event_id: UUID
    occurred_at: datetime
    payment_id: PaymentId
    order_id: OrderId
    user_id: UserId
    provider: str
    amount: Money
