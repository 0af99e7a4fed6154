"""The mock provider with its books in PostgreSQL, for deployments of several processes.

At a real provider a payment taken through one API process can be checked, cancelled
or refunded through any other — a worker refunds a late payer, another API process
reconciles. The in-memory mock keeps its transactions in the process that took them,
so in the production profile a worker's refund of a mock payment found nothing and
the money stayed taken. This mock keeps the same rules (``provider.py``) in the
deployment's database (migration ``0003_mock_payments``); every change is one
conditional statement, so two processes acting at once cannot both win.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Final

from psycopg.rows import namedtuple_row

from openticket.adapters.payments.mock.provider import (
    OUTCOME_STATUS,
    MockOutcome,
    check_mock_options,
    late_settlement,
    mock_transaction_id,
    read_webhook,
    signature,
)
from openticket.adapters.postgres.database import PostgresDatabase
from openticket.adapters.postgres.errors import DRIVER_ERRORS, translate
from openticket.application.ports.clock import Clock
from openticket.application.ports.payments import (
    PaymentProviderError,
    PaymentRequest,
    ProviderPayment,
    ProviderRefund,
    ProviderStatus,
    WebhookNotice,
)
from openticket.domain.shared import Money

# Statuses are bound parameters taken from ``ProviderStatus``, as every other value.

_PENDING: Final = {"pending": ProviderStatus.PENDING.value}


class SharedMockPaymentProvider:
    """The mock ``PaymentProvider`` (same outcomes as ``MockPaymentProvider``), in PostgreSQL."""

    def __init__(
        self,
        database: PostgresDatabase,
        clock: Clock,
        webhook_secret: str = "mock-webhook-secret",  # noqa: S107  # a test double, not a credential
        name: str = "mock",
    ) -> None:
        self._db = database
        self._clock = clock
        self._secret = webhook_secret.encode()
        self._name = name

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
        status, reason = OUTCOME_STATUS[outcome]
        settles_at = (
            late_settlement(request, self._clock)
            if outcome is MockOutcome.SUCCEED_AFTER_EXPIRY
            else None
        )
        stored = await self._db.query(
            "INSERT INTO mock_transactions (transaction_id, idempotency_key, amount, currency,"
            " status, failure_reason, settles_at) VALUES (%(transaction_id)s,"
            " %(idempotency_key)s, %(amount)s, %(currency)s, %(status)s, %(reason)s,"
            " %(settles_at)s) ON CONFLICT (idempotency_key) DO NOTHING"
            " RETURNING transaction_id, status, failure_reason, amount, currency",
            {
                "transaction_id": mock_transaction_id(request.idempotency_key),
                "idempotency_key": request.idempotency_key,
                "amount": request.amount.amount,
                "currency": request.amount.currency,
                "status": status.value,
                "reason": reason,
                "settles_at": settles_at,
            },
        )
        if stored:  # new; a repeat of the key answers the transaction as it stands
            return _transaction(stored[0])[0]
        return (await self._get(mock_transaction_id(request.idempotency_key)))[0]

    async def confirm_payment(self, provider_transaction_id: str, amount: Money) -> ProviderPayment:
        """Nothing to capture separately: the same as :meth:`verify_payment`."""
        payment, taken = await self._get(provider_transaction_id)
        if amount != taken:
            raise PaymentProviderError("amount does not match the transaction")
        return payment

    async def verify_payment(self, provider_transaction_id: str) -> ProviderPayment:
        """How the transaction stands now (a late payer's money arrives once its time came)."""
        await self._db.query(
            "UPDATE mock_transactions SET status = %(succeeded)s"
            " WHERE transaction_id = %(transaction_id)s AND status = %(pending)s"
            " AND settles_at IS NOT NULL AND settles_at <= %(now)s RETURNING transaction_id",
            {
                **_PENDING,
                "succeeded": ProviderStatus.SUCCEEDED.value,
                "transaction_id": provider_transaction_id,
                "now": self._clock.now(),
            },
        )
        return (await self._get(provider_transaction_id))[0]

    async def cancel_payment(self, provider_transaction_id: str) -> ProviderPayment:
        """A pending payment can take no more money (failed); a settled one says so."""
        await self.verify_payment(provider_transaction_id)  # a late payer may be in already
        await self._db.query(
            "UPDATE mock_transactions SET status = %(failed)s, failure_reason = 'cancelled',"
            " settles_at = NULL WHERE transaction_id = %(transaction_id)s"
            " AND status = %(pending)s RETURNING transaction_id",
            {
                **_PENDING,
                "failed": ProviderStatus.FAILED.value,
                "transaction_id": provider_transaction_id,
            },
        )
        return (await self._get(provider_transaction_id))[0]

    async def refund(
        self, provider_transaction_id: str, amount: Money, idempotency_key: str
    ) -> ProviderRefund:
        """Give ``amount`` back once per idempotency key; only captured money can be refunded."""
        conn = await self._db.take()
        try:
            async with conn.transaction():
                # one refund at a time per transaction: a second caller waits here, then
                # finds the first one's refund by its key (as a real provider answers)
                books = conn.cursor(row_factory=namedtuple_row)
                await books.execute(
                    "SELECT 1 FROM mock_transactions WHERE transaction_id = %(transaction_id)s"
                    " FOR UPDATE",
                    {"transaction_id": provider_transaction_id},
                )
                done: Any = await (
                    await books.execute(
                        "SELECT amount, currency FROM mock_refunds"
                        " WHERE idempotency_key = %(idempotency_key)s",
                        {"idempotency_key": idempotency_key},
                    )
                ).fetchone()
                if done is not None:
                    return _refund(idempotency_key, done.amount, done.currency)
                refunded = await (
                    await books.execute(
                        "UPDATE mock_transactions SET status = %(refunded)s,"
                        " refunded_amount = %(amount)s WHERE transaction_id = %(transaction_id)s"
                        " AND status = %(succeeded)s AND amount >= %(amount)s"
                        " RETURNING transaction_id",
                        {
                            "refunded": ProviderStatus.REFUNDED.value,
                            "succeeded": ProviderStatus.SUCCEEDED.value,
                            "amount": amount.amount,
                            "transaction_id": provider_transaction_id,
                        },
                    )
                ).fetchone()
                if refunded is None:
                    payment, taken = await self._get(provider_transaction_id)
                    if payment.status is not ProviderStatus.SUCCEEDED:
                        raise PaymentProviderError(
                            f"cannot refund a {payment.status.value} payment"
                        )
                    raise PaymentProviderError(
                        f"cannot refund more than was captured ({taken.amount})"
                    )
                await books.execute(
                    "INSERT INTO mock_refunds (idempotency_key, transaction_id, amount, currency)"
                    " VALUES (%(idempotency_key)s, %(transaction_id)s, %(amount)s, %(currency)s)",
                    {
                        "idempotency_key": idempotency_key,
                        "transaction_id": provider_transaction_id,
                        "amount": amount.amount,
                        "currency": amount.currency,
                    },
                )
        except DRIVER_ERRORS as e:
            raise translate(e) from e
        finally:
            await self._db.give_back(conn)
        return _refund(idempotency_key, amount.amount, amount.currency)

    async def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> WebhookNotice | None:
        """Read a mock webhook signed with HMAC-SHA256 of the raw body."""
        return read_webhook(self._secret, headers, body)

    # --- for tests and demos -------------------------------------------------------

    def sign(self, body: bytes) -> str:
        """The signature header value a genuine mock webhook carries."""
        return signature(self._secret, body)

    async def settle(
        self, provider_transaction_id: str, *, succeed: bool, reason: str = "declined"
    ) -> None:
        """End a delayed payment: captured or failed."""
        ended = await self._db.query(
            "UPDATE mock_transactions SET status = %(status)s, failure_reason = %(reason)s"
            " WHERE transaction_id = %(transaction_id)s AND status = %(pending)s"
            " RETURNING transaction_id",
            {
                **_PENDING,
                "status": (ProviderStatus.SUCCEEDED if succeed else ProviderStatus.FAILED).value,
                "reason": None if succeed else reason,
                "transaction_id": provider_transaction_id,
            },
        )
        if not ended:
            payment, _ = await self._get(provider_transaction_id)
            raise PaymentProviderError(f"payment is {payment.status.value}, not pending")

    async def refunded(self, provider_transaction_id: str) -> Money | None:
        """What was refunded of a transaction (None: nothing)."""
        rows = await self._db.query(
            "SELECT amount, currency FROM mock_refunds WHERE transaction_id = %(transaction_id)s",
            {"transaction_id": provider_transaction_id},
        )
        return Money(rows[0].amount, rows[0].currency.strip()) if rows else None

    async def _get(self, provider_transaction_id: str) -> tuple[ProviderPayment, Money]:
        rows = await self._db.query(
            "SELECT transaction_id, status, failure_reason, amount, currency"
            " FROM mock_transactions WHERE transaction_id = %(transaction_id)s",
            {"transaction_id": provider_transaction_id},
        )
        if not rows:
            raise PaymentProviderError(f"no mock transaction {provider_transaction_id!r}")
        return _transaction(rows[0])


def _transaction(row: Any) -> tuple[ProviderPayment, Money]:
    """A transaction row as ``_get`` reads it: what the provider answers, and the amount taken."""
    return (
        ProviderPayment(
            provider_transaction_id=row.transaction_id,
            status=ProviderStatus(row.status),
            failure_reason=row.failure_reason,
        ),
        Money(row.amount, row.currency.strip()),
    )


def _refund(idempotency_key: str, amount: Decimal, currency: str) -> ProviderRefund:
    return ProviderRefund(
        provider_refund_id=f"re_{idempotency_key}", amount=Money(amount, currency.strip())
    )
