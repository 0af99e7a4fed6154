"""Payment use cases: start paying an order, record what the provider says, refund.

Every call that moves money carries an idempotency key derived from our own ids
(``{order_id}:{attempt}`` to charge, ``refund:{payment_id}`` to refund), so a retried
call — after a time-out or a crash — never charges or refunds twice.

What the provider says reaches us three ways, all through :meth:`PaymentService.record`
(repeats and news out of order change nothing): the answer to our own call, a signed
webhook (:meth:`PaymentService.record_webhook`, deduplicated by the provider's event
id), and the buyer coming back from the provider's page
(:meth:`PaymentService.return_from_provider`: the confirm step, with the amount *we*
stored, never one from the redirect). Reconciliation asks again about payments still
waiting: it confirms what the buyer approved while the order can still have it, and
cancels at the provider what waits for an order that ended — so no money can come in
later for nothing; money that came in all the same is refunded by the saga, once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import TypeVar
from uuid import UUID, uuid5

import attrs
import structlog

from openticket.application.access import Requester
from openticket.application.errors import NotFound, UnknownPaymentProvider
from openticket.application.ports.clock import Clock, IdGenerator
from openticket.application.ports.errors import DuplicateError
from openticket.application.ports.payments import (
    PaymentProvider,
    PaymentProviderError,
    PaymentProviderUnavailable,
    PaymentRequest,
    ProviderPayment,
    ProviderStatus,
    WebhookNotice,
)
from openticket.application.ports.unit_of_work import UnitOfWork
from openticket.application.roles import PAYMENTS, EventRole
from openticket.application.stored import recall, remember, stored_scope
from openticket.application.transactions import Transactions
from openticket.domain.ordering import Order, OrderCancelled, OrderEvent, OrderExpired, OrderStatus
from openticket.domain.payment import Payment, PaymentStatus
from openticket.domain.shared import IdFactory, OrderId, PaymentId

_log = structlog.get_logger("openticket.payments")

R = TypeVar("R")

PROVIDER_ATTEMPTS = 3

WEBHOOK_EVENTS = UUID("9d3c3f7e-5a0b-4c7e-9a51-2f1f0c7b8e21")
"""Namespace of the ids under which a provider's webhook events are recorded once."""

WAITING = frozenset({PaymentStatus.INITIATED, PaymentStatus.PENDING})
"""A payment in these states still waits on its provider."""


@attrs.frozen
class StartedPayment:
    """A payment just started, and what the buyer needs to go on at the provider."""

    payment: Payment
    redirect_url: str | None = None
    """Where to send the buyer to approve it (LINE Pay)."""
    client_secret: str | None = None
    """What the buyer's browser confirms it with (Stripe)."""


class PaymentService:
    """Talks to payment providers through the port and keeps ``Payment`` aggregates true."""

    def __init__(
        self,
        *,
        transactions: Transactions,
        providers: Mapping[str, PaymentProvider],
        clock: Clock,
        ids: IdGenerator,
    ) -> None:
        self._tx = transactions
        self._providers = providers
        self._clock = clock
        self._ids = ids

    @property
    def provider_names(self) -> tuple[str, ...]:
        """The providers configured, by name."""
        return tuple(sorted(self._providers))

    def provider(self, name: str) -> PaymentProvider:
        """The configured provider called ``name``."""
        try:
            return self._providers[name]
        except KeyError:
            known = ", ".join(sorted(self._providers)) or "none"
            raise UnknownPaymentProvider(f"no payment provider {name!r} (known: {known})") from None

    # --- starting ---------------------------------------------------------------------

    async def start_payment(
        self,
        by: Requester,
        order_id: OrderId,
        provider_name: str,
        options: Mapping[str, str] | None = None,
    ) -> StartedPayment:
        """Start paying one of the caller's orders; the payment as it stands after.

        Idempotent per order: while the order awaits a payment through this provider,
        asking again answers that same payment (and the provider, asked again with the
        same idempotency key, hands back the same redirect or client secret). A
        provider that settles at once (the mock) has completed the order — or failed
        it — by the time this returns. Options the provider does not take are refused
        (``InvalidPaymentOptions``) before anything is recorded: the order stays as it was.
        """
        with stored_scope():
            return await self._start_payment(by, order_id, provider_name, options)

    async def _start_payment(
        self,
        by: Requester,
        order_id: OrderId,
        provider_name: str,
        options: Mapping[str, str] | None,
    ) -> StartedPayment:
        provider = self.provider(provider_name)
        provider.check_options(options or {})
        now = self._clock.now()
        async with self._tx.unit() as uow:
            order = await uow.orders.get(order_id)
            if order is None or order.user_id != by.user_id:
                raise NotFound(f"no order {order_id} of yours")
            payment = await self._awaited(uow, order, provider.name)
            if payment is not None and payment.redirect_url is not None:
                return StartedPayment(payment, payment.redirect_url)  # the same page again
            if payment is None:
                attempt = (  # an order that never awaited a payment has none yet
                    1
                    if order.payment_id is None
                    else len(await uow.payments.list_for_order(order_id)) + 1
                )
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
                remember(order_id, order)
                remember(payment.payment_id, payment)
        request = PaymentRequest(
            payment_id=payment.payment_id,
            order_id=order_id,
            user_id=order.user_id,
            amount=payment.amount,
            idempotency_key=payment.idempotency_key,
            description=f"OpenTicket order {order_id}",
            expires_at=order.expires_at,
            options=dict(options or {}),
            items=tuple((f"Seat {item.seat_id}", item.price) for item in order.items),
        )
        answer = await self._call_provider(lambda: provider.create_payment(request))
        recorded = await self.record(payment.payment_id, answer)
        return StartedPayment(recorded, answer.redirect_url, answer.client_secret)

    @staticmethod
    async def _awaited(uow: UnitOfWork, order: Order, provider: str) -> Payment | None:
        """The payment ``order`` awaits through ``provider``, if it still waits on it."""
        if order.status is not OrderStatus.PAYMENT_PENDING or order.payment_id is None:
            return None
        payment = await uow.payments.get(order.payment_id)
        if payment is None or payment.provider != provider or payment.status not in WAITING:
            return None
        return payment

    # --- what the provider says -------------------------------------------------------------

    async def record(
        self, payment_id: PaymentId, answer: ProviderPayment, *, once: UUID | None = None
    ) -> Payment:
        """Bring a payment up to what the provider says; repeats and stale news change nothing.

        Illegal moves the provider may report out of order (``failed`` after
        ``succeeded``) are ignored: the payment keeps its final state. ``refunded``
        for a payment still pending (the refund's news came first) records both the
        success and the refund, so the saga gives the order nothing. With ``once``, the
        news is recorded under that id in the same transaction, and news already
        recorded under it changes nothing. A payment this scope just stored
        (:mod:`~openticket.application.stored`) is tried first without reading it again;
        a save finding it changed meanwhile reads it and tries again.
        """

        async def apply(uow: UnitOfWork) -> Payment:
            payment = recall(Payment, payment_id) or await uow.payments.get(payment_id)
            if payment is None:
                raise NotFound(f"no payment {payment_id}")
            if once is not None and not await uow.processed_events.add(
                f"provider:{payment.provider}", once
            ):
                return payment
            if _advance(payment, answer, self._clock.now(), self._ids.new_id):
                await uow.payments.save(payment)
            return payment

        try:
            # remembered before the news goes out: the saga step it sets off reads it
            payment = await self._tx.run(apply, committed=lambda p: remember(payment_id, p))
        except DuplicateError:  # the same news, recorded meanwhile by a racing delivery
            if once is None:
                raise
            async with self._tx.unit() as uow:
                racing = await uow.payments.get(payment_id)
            if racing is None:
                raise NotFound(f"no payment {payment_id}") from None
            return racing
        return payment

    async def handle_webhook(
        self, provider_name: str, headers: Mapping[str, str], body: bytes
    ) -> Payment | None:
        """Verify a provider's webhook (``InvalidWebhookSignature``) and record it.

        ``None`` for a webhook that names no payment of ours, or none at all.
        """
        notice = await self.provider(provider_name).parse_webhook(headers, body)
        if notice is None:
            return None
        return await self.record_webhook(provider_name, notice)

    async def record_webhook(self, provider_name: str, notice: WebhookNotice) -> Payment | None:
        """Apply a verified webhook to the payment it names (None if we do not know it).

        Each provider event is applied once, by its event id: a repeated delivery,
        even one racing the first, changes nothing. A failure is recorded once the
        provider, asked to cancel the payment, confirms it can take no more money.
        """
        async with self._tx.unit() as uow:
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
        if notice.status is ProviderStatus.FAILED and payment.status in WAITING:
            # a failed attempt is final only once the provider can take no more money for it
            # (at Stripe the buyer may try another card): cancel, and believe the answer
            provider, transaction = self.provider(provider_name), notice.provider_transaction_id
            settled = await self._call_provider(lambda: provider.cancel_payment(transaction))
            if settled.status is not ProviderStatus.FAILED:
                answer = settled
        event_key = uuid5(WEBHOOK_EVENTS, f"{provider_name}:{notice.provider_event_id}")
        return await self.record(payment.payment_id, answer, once=event_key)

    async def return_from_provider(
        self, provider_name: str, provider_transaction_id: str, reference: str, *, approved: bool
    ) -> Payment:
        """The buyer came back from the provider's page (LINE Pay's confirm or cancel URL).

        The redirect is untrusted: it must name a transaction we started, with the
        reference we gave it (our payment id), else ``NotFound`` and nothing changes.
        Approved, the payment is confirmed with the amount we stored, while its order
        can still have it; an order that ended meanwhile is not charged at all (the
        payment is cancelled). A repeated redirect answers the payment as it stands.
        """
        provider = self.provider(provider_name)
        async with self._tx.unit() as uow:
            payment = await uow.payments.get_by_provider_transaction(
                provider.name, provider_transaction_id
            )
            order = None if payment is None else await uow.orders.get(payment.order_id)
        if payment is None or order is None or not reference.startswith(str(payment.payment_id)):
            raise NotFound(f"no {provider_name} payment {provider_transaction_id} for {reference}")
        if payment.status not in WAITING:
            return payment
        transaction = provider_transaction_id
        amount = payment.amount
        if approved and self._payable(order, payment):
            answer = await self._call_provider(
                lambda: provider.confirm_payment(transaction, amount)
            )
        else:
            answer = await self._call_provider(lambda: provider.cancel_payment(transaction))
        return await self.record(payment.payment_id, answer)

    def _payable(self, order: Order, payment: Payment) -> bool:
        """Whether ``order`` still awaits ``payment`` and can still have its seats."""
        return (
            order.status is OrderStatus.PAYMENT_PENDING
            and order.payment_id == payment.payment_id
            and not order.is_due(self._clock.now())
        )

    # --- asking again ---------------------------------------------------------------------

    async def reconcile(self, payment_id: PaymentId) -> Payment:
        """Ask the provider how a payment stands and record it.

        A payment still waiting is confirmed if its order can still have it (what the
        buyer approved is taken, with our amount; nothing is taken if they did not),
        and cancelled at the provider if its order ended — so nothing comes in later
        for nothing. Settled payments are only asked about (a refund made at the
        provider is recorded).
        """
        async with self._tx.unit() as uow:
            payment = await uow.payments.get(payment_id)
            order = None if payment is None else await uow.orders.get(payment.order_id)
        if payment is None or order is None or payment.provider_transaction_id is None:
            raise NotFound(f"no payment {payment_id} known to its provider")
        provider = self.provider(payment.provider)
        transaction, amount = payment.provider_transaction_id, payment.amount
        call: Callable[[], Awaitable[ProviderPayment]]
        if payment.status not in WAITING:
            call = lambda: provider.verify_payment(transaction)  # noqa: E731
        elif self._payable(order, payment):
            call = lambda: provider.confirm_payment(transaction, amount)  # noqa: E731
        elif order.is_open and not order.is_due(self._clock.now()):
            call = lambda: provider.verify_payment(transaction)  # noqa: E731  # not this order's
        else:
            call = lambda: provider.cancel_payment(transaction)  # noqa: E731
        answer = await self._call_provider(call)
        return await self.record(payment_id, answer)

    async def reconcile_unsettled(self, *, limit: int = 100) -> int:
        """Ask the providers about payments still waiting on them; return how many moved.

        Catches what a lost webhook, a lost redirect or a timed-out confirm left behind.
        """
        async with self._tx.unit() as uow:
            unsettled = await uow.payments.list_unsettled(limit=limit)
        moved = 0
        for payment in unsettled:
            try:
                if payment.provider_transaction_id is None:
                    after = await self._ask_again(payment)
                else:
                    after = await self.reconcile(payment.payment_id)
            except (PaymentProviderUnavailable, PaymentProviderError, UnknownPaymentProvider):
                continue  # asked again at the next sweep
            moved += after is not None and after.status is not payment.status
        return moved

    async def _ask_again(self, payment: Payment) -> Payment | None:
        """A payment whose start the provider never answered us, for an order that ended.

        The call may have reached the provider (a database or the network failed before
        the answer was recorded). Asked again with the same idempotency key, the provider
        answers the payment it made — or makes one the buyer never saw, which takes no
        money — and the payment is then settled as any other: cancelled at the provider,
        or refunded if money came in. An order still open is left to its buyer, whose
        next try asks the provider again the same way.
        """
        async with self._tx.unit() as uow:
            order = await uow.orders.get(payment.order_id)
        if order is None or (order.is_open and not order.is_due(self._clock.now())):
            return None
        provider = self.provider(payment.provider)
        request = PaymentRequest(
            payment_id=payment.payment_id,
            order_id=order.order_id,
            user_id=order.user_id,
            amount=payment.amount,
            idempotency_key=payment.idempotency_key,
            description=f"OpenTicket order {order.order_id}",
            expires_at=order.expires_at,
            items=tuple((f"Seat {item.seat_id}", item.price) for item in order.items),
        )
        answer = await self._call_provider(lambda: provider.create_payment(request))
        recorded = await self.record(payment.payment_id, answer)
        if recorded.status in WAITING and recorded.provider_transaction_id is not None:
            return await self.reconcile(payment.payment_id)
        return recorded

    def role(self) -> EventRole:
        """The ``payments`` role: an order that ended unpaid has its payments settled."""
        return EventRole(
            PAYMENTS,
            {
                ended: (f"reconcile_payments_of_{ended.__name__}", self.reconcile_order)
                for ended in (OrderExpired, OrderCancelled)
            },
        )

    async def reconcile_order(self, event: OrderEvent) -> None:
        """Settle, at once, the payments of an order that ended while they waited.

        Each is cancelled at its provider; money that arrived after all (a lost
        webhook, a payer just too late) is recorded instead, and the saga refunds it,
        since the order can no longer have its seats. A provider that refuses is
        logged and asked again by the sweeper.
        """
        async with self._tx.unit() as uow:
            payments = await uow.payments.list_for_order(event.order_id)
        for payment in payments:
            if payment.status not in WAITING or payment.provider_transaction_id is None:
                continue
            try:
                await self.reconcile(payment.payment_id)
            except PaymentProviderError as e:
                _log.warning(
                    "payment_reconcile_refused", payment_id=str(payment.payment_id), error=str(e)
                )

    # --- refunds ------------------------------------------------------------------------------

    async def refund(self, payment_id: PaymentId, reason: str) -> Payment:
        """Give a captured payment back, exactly once: the provider first, then our record."""
        async with self._tx.unit() as uow:
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

        async def record_refund(uow: UnitOfWork) -> Payment:
            fresh = await uow.payments.get(payment_id)
            if fresh is None:
                raise NotFound(f"no payment {payment_id}")
            if fresh.status is not PaymentStatus.REFUNDED:
                fresh.refund(reason, now=self._clock.now(), ids=self._ids.new_id)
                await uow.payments.save(fresh)
            return fresh

        return await self._tx.run(record_refund)

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
    if before is PaymentStatus.INITIATED:
        payment.mark_pending(transaction, answer.redirect_url)
    if payment.status is PaymentStatus.PENDING:
        if answer.status in (ProviderStatus.SUCCEEDED, ProviderStatus.REFUNDED):
            payment.succeed(now=now, ids=ids, provider_transaction_id=transaction)
        elif answer.status is ProviderStatus.FAILED:
            payment.fail(answer.failure_reason or "declined", now=now, ids=ids)
    if answer.status is ProviderStatus.REFUNDED and payment.status is PaymentStatus.SUCCEEDED:
        payment.refund("refunded at the provider", now=now, ids=ids)
    return payment.status is not before
