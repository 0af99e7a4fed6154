"""Payment use cases: start paying an order, record what the provider says, refund.

Every call that moves money carries an idempotency key derived from our own ids
(``{order_id}:{attempt}`` to charge, ``refund:{payment_id}`` to refund), so a retried
call — after a time-out or a crash — never charges or refunds twice.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import TypeVar

import structlog

from openticket.application.access import Requester
from openticket.application.errors import NotFound, UnknownPaymentProvider
from openticket.application.messagebus import Publish
from openticket.application.ordering.service import retry_on_conflict
from openticket.application.ports.clock import Clock, IdGenerator
from openticket.application.ports.payments import (
    PaymentProvider,
    PaymentProviderError,
    PaymentProviderUnavailable,
    PaymentRequest,
    ProviderPayment,
    ProviderStatus,
    WebhookNotice,
)
from openticket.application.ports.unit_of_work import UnitOfWorkFactory
from openticket.application.roles import PAYMENTS, EventRole
from openticket.domain.ordering import OrderCancelled, OrderEvent, OrderExpired
from openticket.domain.payment import Payment, PaymentStatus
from openticket.domain.shared import DomainEvent, IdFactory, OrderId, PaymentId

_log = structlog.get_logger("openticket.payments")

R = TypeVar("R")

PROVIDER_ATTEMPTS = 3


class PaymentService:
    """Talks to payment providers through the port and keeps ``Payment`` aggregates true."""

    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        providers: Mapping[str, PaymentProvider],
        clock: Clock,
        ids: IdGenerator,
        publish: Publish,
    ) -> None:
        self._uow = uow
        self._providers = providers
        self._clock = clock
        self._ids = ids
        self._publish = publish

    def provider(self, name: str) -> PaymentProvider:
        """The configured provider called ``name``."""
        try:
            return self._providers[name]
        except KeyError:
            known = ", ".join(sorted(self._providers)) or "none"
            raise UnknownPaymentProvider(f"no payment provider {name!r} (known: {known})") from None

    async def start_payment(
        self,
        by: Requester,
        order_id: OrderId,
        provider_name: str,
        options: Mapping[str, str] | None = None,
    ) -> Payment:
        """Start paying one of the caller's orders; returns the payment as it stands after.

        A provider that settles at once (the mock) has completed the order — or failed
        it — by the time this returns.
        """
        provider = self.provider(provider_name)
        now = self._clock.now()
        async with self._uow() as uow:
            order = await uow.orders.get(order_id)
            if order is None or order.user_id != by.user_id:
                raise NotFound(f"no order {order_id} of yours")
            attempt = len(await uow.payments.list_for_order(order_id)) + 1
            payment = Payment.initiate(
                payment_id=PaymentId(self._ids.new_id()),
                order_id=order_id,
                user_id=order.user_id,
                provider=provider.name,
                amount=order.total,
                idempotency_key=f"{order_id}:{attempt}",
                now=now,
                ids=self._ids.new_id,
            )
            order.start_payment(payment.payment_id, now=now, ids=self._ids.new_id)
            await uow.payments.add(payment)
            await uow.orders.save(order)
            await uow.commit()
        await self._publish(uow.collect_new_events())
        request = PaymentRequest(
            payment_id=payment.payment_id,
            order_id=order_id,
            user_id=order.user_id,
            amount=order.total,
            idempotency_key=payment.idempotency_key,
            description=f"OpenTicket order {order_id}",
            expires_at=order.expires_at,
            options=dict(options or {}),
        )
        answer = await self._call_provider(lambda: provider.create_payment(request))
        return await self.record(payment.payment_id, answer)

    async def record(self, payment_id: PaymentId, answer: ProviderPayment) -> Payment:
        """Bring a payment up to what the provider says; repeats and stale news change nothing.

        Illegal moves the provider may report out of order (``failed`` after
        ``succeeded``) are ignored: the payment keeps its final state.
        """

        async def apply() -> tuple[Payment, list[DomainEvent]]:
            now = self._clock.now()
            async with self._uow() as uow:
                payment = await uow.payments.get(payment_id)
                if payment is None:
                    raise NotFound(f"no payment {payment_id}")
                if _advance(payment, answer, now, self._ids.new_id):
                    await uow.payments.save(payment)
                    await uow.commit()
            return payment, uow.collect_new_events()

        payment, events = await retry_on_conflict(apply)
        await self._publish(events)
        return payment

    async def record_webhook(self, provider_name: str, notice: WebhookNotice) -> Payment | None:
        """Apply a verified webhook to the payment it names (None if we do not know it)."""
        async with self._uow() as uow:
            payment = await uow.payments.get_by_provider_transaction(
                provider_name, notice.provider_transaction_id
            )
        if payment is None:
            return None
        answer = ProviderPayment(
            provider_transaction_id=notice.provider_transaction_id,
            status=notice.status,
            failure_reason=notice.failure_reason,
        )
        return await self.record(payment.payment_id, answer)

    async def reconcile(self, payment_id: PaymentId) -> Payment:
        """Ask the provider how a payment stands and record it."""
        async with self._uow() as uow:
            payment = await uow.payments.get(payment_id)
        if payment is None or payment.provider_transaction_id is None:
            raise NotFound(f"no payment {payment_id} known to its provider")
        provider = self.provider(payment.provider)
        transaction = payment.provider_transaction_id
        answer = await self._call_provider(lambda: provider.verify_payment(transaction))
        return await self.record(payment_id, answer)

    async def reconcile_unsettled(self, *, limit: int = 100) -> int:
        """Ask the providers about payments still waiting on them; return how many moved.

        Catches what a lost webhook or a timed-out confirm left behind.
        """
        async with self._uow() as uow:
            unsettled = await uow.payments.list_unsettled(limit=limit)
        moved = 0
        for payment in unsettled:
            if payment.provider_transaction_id is None:
                continue
            try:
                after = await self.reconcile(payment.payment_id)
            except (PaymentProviderUnavailable, PaymentProviderError):
                continue  # asked again at the next sweep
            moved += after.status is not payment.status
        return moved

    def role(self) -> EventRole:
        """The ``payments`` role: an order that ended unpaid has its payments checked."""
        return EventRole(
            PAYMENTS,
            {
                ended: (f"reconcile_payments_of_{ended.__name__}", self.reconcile_order)
                for ended in (OrderExpired, OrderCancelled)
            },
        )

    async def reconcile_order(self, event: OrderEvent) -> None:
        """Ask the providers at once about the ended order's payments still waiting on them.

        Money that arrived after all (a lost webhook, a payer just too late) is recorded
        now; the saga then refunds it, since the order can no longer have its seats. A
        provider that refuses the question is logged and asked again by the sweeper.
        """
        async with self._uow() as uow:
            payments = await uow.payments.list_for_order(event.order_id)
        for payment in payments:
            waiting = payment.status in (PaymentStatus.INITIATED, PaymentStatus.PENDING)
            if not waiting or payment.provider_transaction_id is None:
                continue
            try:
                await self.reconcile(payment.payment_id)
            except PaymentProviderError as e:
                _log.warning(
                    "payment_reconcile_refused", payment_id=str(payment.payment_id), error=str(e)
                )

    async def refund(self, payment_id: PaymentId, reason: str) -> Payment:
        """Give a captured payment back, exactly once: the provider first, then our record."""
        async with self._uow() as uow:
            payment = await uow.payments.get(payment_id)
        if payment is None:
            raise NotFound(f"no payment {payment_id}")
        if payment.status is PaymentStatus.REFUNDED:
            return payment
        if payment.provider_transaction_id is not None:
            provider = self.provider(payment.provider)
            transaction, amount = payment.provider_transaction_id, payment.amount
            key = f"refund:{payment_id}"
            await self._call_provider(lambda: provider.refund(transaction, amount, key))

        async def record_refund() -> tuple[Payment, list[DomainEvent]]:
            async with self._uow() as uow:
                fresh = await uow.payments.get(payment_id)
                if fresh is None:
                    raise NotFound(f"no payment {payment_id}")
                if fresh.status is not PaymentStatus.REFUNDED:
                    fresh.refund(reason, now=self._clock.now(), ids=self._ids.new_id)
                    await uow.payments.save(fresh)
                    await uow.commit()
            return fresh, uow.collect_new_events()

        refunded, events = await retry_on_conflict(record_refund)
        await self._publish(events)
        return refunded

    @staticmethod
    async def _call_provider(call: Callable[[], Awaitable[R]]) -> R:
        for attempt in range(1, PROVIDER_ATTEMPTS + 1):
            try:
                return await call()
            except PaymentProviderUnavailable:
                if attempt == PROVIDER_ATTEMPTS:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover


def _advance(payment: Payment, answer: ProviderPayment, now: datetime, ids: IdFactory) -> bool:
    """Move ``payment`` toward what the provider says; True if it changed."""
    before = payment.status
    transaction = answer.provider_transaction_id
    if before is PaymentStatus.INITIATED and answer.status is not ProviderStatus.REFUNDED:
        payment.mark_pending(transaction)
    if answer.status is ProviderStatus.SUCCEEDED and payment.status is PaymentStatus.PENDING:
        payment.succeed(now=now, ids=ids, provider_transaction_id=transaction)
    elif answer.status is ProviderStatus.FAILED and payment.status is PaymentStatus.PENDING:
        payment.fail(answer.failure_reason or "declined", now=now, ids=ids)
    elif answer.status is ProviderStatus.REFUNDED and payment.status is PaymentStatus.SUCCEEDED:
        payment.refund("refunded at the provider", now=now, ids=ids)
    return payment.status is not before
