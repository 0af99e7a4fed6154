"""Payments in PostgreSQL."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final, LiteralString

from openticket.adapters.postgres.executor import Executor, Row
from openticket.adapters.postgres.repositories.shared import (
    Table,
    checked_limit,
    one_of,
    save_versioned,
    storable,
)
from openticket.application.ports.repositories import DEFAULT_PAGE_SIZE
from openticket.domain.payment import Payment, PaymentStatus
from openticket.domain.shared import Money, OrderId, PaymentId, UserId

PAYMENTS: Final = Table(
    "payments",
    (
        "payment_id",
        "order_id",
        "user_id",
        "provider",
        "amount",
        "currency",
        "idempotency_key",
        "status",
        "provider_transaction_id",
        "failure_reason",
        "refund_reason",
        "created_at",
        "processed_at",
        "refunded_at",
        "version",
        "redirect_url",
    ),
)

_UNSETTLED: Final[LiteralString] = one_of((PaymentStatus.INITIATED, PaymentStatus.PENDING))

_INSERT: Final[LiteralString] = PAYMENTS.insert()
_BY_ID: Final[LiteralString] = PAYMENTS.select() + " WHERE payment_id = %(payment_id)s"
_BY_IDEMPOTENCY_KEY: Final[LiteralString] = (
    PAYMENTS.select() + " WHERE idempotency_key = %(idempotency_key)s"
)
_BY_PROVIDER_TRANSACTION: Final[LiteralString] = (
    PAYMENTS.select()
    + " WHERE provider = %(provider)s AND provider_transaction_id = %(provider_transaction_id)s"
)
_OF_ORDER: Final[LiteralString] = PAYMENTS.select() + " WHERE order_id = %(order_id)s ORDER BY seq"
_UNSETTLED_FIRST: Final[LiteralString] = (
    PAYMENTS.select() + " WHERE status IN (" + _UNSETTLED + ")"
    " ORDER BY created_at, seq LIMIT %(limit)s"
)
_UPDATE: Final[LiteralString] = PAYMENTS.update(
    "status",
    "provider_transaction_id",
    "redirect_url",
    "failure_reason",
    "refund_reason",
    "processed_at",
    "refunded_at",
    "amount",
    "currency",
)


def _payment(row: Row) -> Payment:
    return Payment(
        payment_id=PaymentId(row.payment_id),
        order_id=OrderId(row.order_id),
        user_id=UserId(row.user_id),
        provider=row.provider,
        amount=Money(row.amount, row.currency),
        idempotency_key=row.idempotency_key,
        status=PaymentStatus(row.status),
        provider_transaction_id=row.provider_transaction_id,
        failure_reason=row.failure_reason,
        refund_reason=row.refund_reason,
        created_at=row.created_at,
        processed_at=row.processed_at,
        refunded_at=row.refunded_at,
        version=row.version,
        redirect_url=row.redirect_url,
    )


def _payment_params(payment: Payment) -> dict[str, Any]:
    return {
        "payment_id": payment.payment_id,
        "order_id": payment.order_id,
        "user_id": payment.user_id,
        "provider": payment.provider,
        "amount": payment.amount.amount,
        "currency": payment.amount.currency,
        "idempotency_key": payment.idempotency_key,
        "status": payment.status.value,
        "provider_transaction_id": payment.provider_transaction_id,
        "redirect_url": payment.redirect_url,
        "failure_reason": payment.failure_reason,
        "refund_reason": payment.refund_reason,
        "created_at": payment.created_at,
        "processed_at": payment.processed_at,
        "refunded_at": payment.refunded_at,
    }


class PostgresPaymentRepository:
    """Payments in PostgreSQL; idempotency keys and provider transaction ids are unique."""

    def __init__(self, uow: Executor) -> None:
        self._uow = uow

    async def add(self, payment: Payment) -> None:
        """Store a new payment."""
        version = self._uow.version_to_add(PAYMENTS.name, payment.payment_id, payment)
        self._uow.defer(_INSERT, {**_payment_params(payment), "version": version})
        self._uow.wrote(PAYMENTS.name, payment.payment_id, payment, 0, version)

    async def get(self, payment_id: PaymentId) -> Payment | None:
        """The payment with this id, if any."""
        row = await self._uow.fetch_one(_BY_ID, {"payment_id": payment_id})
        return None if row is None else _payment(row)

    async def save(self, payment: Payment) -> None:
        """Store changes to a loaded payment."""
        await save_versioned(
            self._uow, PAYMENTS, payment.payment_id, payment, _UPDATE, _payment_params(payment)
        )

    async def get_by_idempotency_key(self, key: str) -> Payment | None:
        """The payment created with this idempotency key, if any."""
        row = await self._uow.fetch_one(_BY_IDEMPOTENCY_KEY, {"idempotency_key": key})
        return None if row is None else _payment(row)

    async def get_by_provider_transaction(
        self, provider: str, provider_transaction_id: str
    ) -> Payment | None:
        """The payment a provider knows by this transaction id, if any."""
        if not storable(provider, provider_transaction_id):
            return None
        row = await self._uow.fetch_one(
            _BY_PROVIDER_TRANSACTION,
            {"provider": provider, "provider_transaction_id": provider_transaction_id},
        )
        return None if row is None else _payment(row)

    async def list_for_order(self, order_id: OrderId) -> Sequence[Payment]:
        """Every payment attempt of an order, oldest first."""
        rows = await self._uow.fetch_all(_OF_ORDER, {"order_id": order_id})
        return [_payment(row) for row in rows]

    async def list_unsettled(self, *, limit: int = DEFAULT_PAGE_SIZE) -> Sequence[Payment]:
        """Payments still initiated or pending, oldest first."""
        rows = await self._uow.fetch_all(_UNSETTLED_FIRST, {"limit": checked_limit(limit)})
        return [_payment(row) for row in rows]
