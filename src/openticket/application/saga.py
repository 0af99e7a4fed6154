"""The purchase saga: what happens after a payment succeeds or fails, or an order ends.

::

    PaymentSucceeded ──► sell the held seats (fencing token) ──► tickets + order completed
          │                        └── hold lost ──► refund, order expired / failed
          └── order no longer payable (expired, cancelled, failed) ──► refund, exactly once
    PaymentFailed    ──► order failed
    PaymentRefunded  ──► (refunded at the provider) a completed order refunded, tickets voided
    OrderFailed / OrderCancelled / OrderExpired ──► seats released
    OrderRefunded    ──► seats returned to sale

Each handler is safe to run again for the same event: steps with effects outside the
database (selling seats, refunding) are idempotent themselves, and the database step
records the event as processed in the same transaction.
"""

from __future__ import annotations

import attrs
import structlog

from openticket.application.access import Requester
from openticket.application.catalog.service import CatalogService
from openticket.application.errors import NotFound
from openticket.application.messagebus import MessageBus
from openticket.application.payments.service import PaymentService
from openticket.application.ports.clock import Clock, IdGenerator, TicketCodeGenerator
from openticket.application.ports.errors import (
    ConcurrencyError,
    DuplicateError,
    SeatAlreadyTicketed,
)
from openticket.application.ports.unit_of_work import UnitOfWork
from openticket.application.roles import ORDER_SAGA, TICKETING, EventRole, Handler
from openticket.application.seating.api import Seating
from openticket.application.seating.commands import ReleaseSeats, ReturnSeats, SellSeats
from openticket.application.stored import recall
from openticket.application.transactions import Transactions
from openticket.domain.identity import Role
from openticket.domain.ordering import (
    Order,
    OrderCancelled,
    OrderEvent,
    OrderExpired,
    OrderFailed,
    OrderRefunded,
    OrderStatus,
)
from openticket.domain.payment import (
    Payment,
    PaymentFailed,
    PaymentRefunded,
    PaymentStatus,
    PaymentSucceeded,
)
from openticket.domain.seating import HoldExpired, NotHolder, SeatsUnavailable, StaleFencingToken
from openticket.domain.shared import (
    DomainEvent,
    InvalidTransition,
    OrderId,
    PaymentId,
    TicketId,
)
from openticket.domain.ticketing import Ticket

_log = structlog.get_logger("openticket.saga")

COMPLETE_PURCHASE = "complete_purchase"
FAIL_ORDER = "fail_order_after_failed_payment"
SALE_LOST = (HoldExpired, NotHolder, StaleFencingToken, SeatsUnavailable)


@attrs.frozen(kw_only=True)
class SaleRefusedAtFinalFence(DomainEvent):
    """The database refused a second live ticket for a seat: a double sale was stopped.

    Every fence before it (the actor, the lock store's fencing token) should have
    stopped it first; operators alert on this.
    """

    order_id: OrderId
    payment_id: PaymentId


class _SaleLost(Exception):
    """The seats cannot be sold to this order any more."""


class PurchaseSaga:
    """Event handlers that carry an order from payment to tickets (or to a refund)."""

    def __init__(
        self,
        *,
        transactions: Transactions,
        catalog: CatalogService,
        seating: Seating,
        payments: PaymentService,
        clock: Clock,
        ids: IdGenerator,
        ticket_codes: TicketCodeGenerator,
    ) -> None:
        self._tx = transactions
        self._catalog = catalog
        self._seating = seating
        self._payments = payments
        self._clock = clock
        self._ids = ids
        self._codes = ticket_codes

    def roles(self) -> tuple[EventRole, ...]:
        """The saga's steps by role: ``ticketing`` and ``order-saga``."""
        seats: dict[type[DomainEvent], tuple[str, Handler]] = {
            ended: (f"release_seats_of_{ended.__name__}", self.release_seats)
            for ended in (OrderFailed, OrderCancelled, OrderExpired)
        }
        return (
            EventRole(
                TICKETING, {PaymentSucceeded: (COMPLETE_PURCHASE, self.on_payment_succeeded)}
            ),
            EventRole(
                ORDER_SAGA,
                {
                    PaymentFailed: (FAIL_ORDER, self.on_payment_failed),
                    PaymentRefunded: ("refund_order_paid_back", self.on_payment_refunded),
                    **seats,
                    OrderRefunded: ("return_seats_of_refunded_order", self.return_seats),
                },
            ),
        )

    def register(self, bus: MessageBus) -> None:
        """Subscribe every step to its event."""
        for role in self.roles():
            role.subscribe(bus)

    # --- payment succeeded ---------------------------------------------------------------

    async def on_payment_succeeded(self, event: PaymentSucceeded) -> None:
        """Sell the seats and issue the tickets; refund if the order cannot have them."""
        async with self._tx.unit() as uow:
            order = recall(Order, event.order_id) or await uow.orders.get(event.order_id)
            if order is None:
                raise NotFound(f"order {event.order_id} is missing")
            if order.status is OrderStatus.COMPLETED and order.payment_id == event.payment_id:
                return  # this payment completed the order already: news of it again is no news
            if order.status is not OrderStatus.PAYMENT_PENDING and (
                await uow.processed_events.contains(COMPLETE_PURCHASE, event.event_id)
            ):
                return  # refunded already (the order awaiting payment is the hot path: no check)
            payment = recall(Payment, event.payment_id) or await uow.payments.get(event.payment_id)
        if payment is None:
            raise NotFound(f"payment {event.payment_id} is missing")
        payable = (
            payment.status is PaymentStatus.SUCCEEDED
            and order.status is OrderStatus.PAYMENT_PENDING
            and order.payment_id == payment.payment_id
        )
        sold = False
        if payable:
            try:
                await self._seating.ask(
                    SellSeats(
                        session_id=order.session_id,
                        area_id=order.area_id,
                        hold_id=order.hold_id,
                        fencing_token=order.fencing_token,
                        order_id=order.order_id,
                        seat_ids=order.seat_ids,
                    )
                )
                sold = True
                if not await self._issue_tickets(event, order):
                    await self._return_seats_unless_completed(event)
                return
            except SeatAlreadyTicketed:
                _log.error("double_sale_prevented", order_id=str(order.order_id))
                await self._tx.announce(
                    SaleRefusedAtFinalFence(
                        event_id=self._ids.new_id(),
                        occurred_at=self._clock.now(),
                        order_id=order.order_id,
                        payment_id=payment.payment_id,
                    )
                )
            except (*SALE_LOST, _SaleLost) as e:  # not this order's seats: the money goes back
                _log.warning(
                    "sale_lost",
                    order_id=str(order.order_id),
                    hold_id=str(order.hold_id),
                    payment_id=str(payment.payment_id),
                    sold=sold,
                    reason=getattr(e, "code", type(e).__name__),
                    error=str(e),
                )
        await self._refund_unpayable(event, order, seats_sold_to_it=sold)

    async def _issue_tickets(self, event: PaymentSucceeded, order: Order) -> bool:
        """Tickets and the order completed, once; False if this event was handled already.

        First with ``order`` as it was read before the sale, so that the claim of the
        event, the tickets, the order and the outbox go in one round trip with the
        commit; if the order changed meanwhile, again with the order read afresh.
        """
        try:
            return await self._complete_purchase(event, order)
        except ConcurrencyError:
            return await self._complete_purchase(event, None)

    async def _complete_purchase(self, event: PaymentSucceeded, known: Order | None) -> bool:
        now = self._clock.now()
        try:
            async with self._tx.unit() as uow:
                await uow.processed_events.claim(COMPLETE_PURCHASE, event.event_id)
                order = known or await uow.orders.get(event.order_id)
                if order is None or order.status is not OrderStatus.PAYMENT_PENDING:
                    raise _SaleLost(f"order {event.order_id} is no longer awaiting payment")
                for item in order.items:
                    await uow.tickets.add(
                        Ticket.issue(
                            ticket_id=TicketId(self._ids.new_id()),
                            order_id=order.order_id,
                            session_id=order.session_id,
                            area_id=order.area_id,
                            seat_id=item.seat_id,
                            user_id=order.user_id,
                            price=item.price,
                            qr_code=self._codes.new_code(),
                            now=now,
                            ids=self._ids.new_id,
                        )
                    )
                order.complete(event.payment_id, now=now, ids=self._ids.new_id)
                await uow.orders.save(order)
                await uow.commit()
        except SeatAlreadyTicketed:
            raise
        except DuplicateError:  # the claim: another delivery of the event completed it first
            return False
        return True

    async def _return_seats_unless_completed(self, event: PaymentSucceeded) -> None:
        """Seats this handler sold go back if another delivery of the event decided otherwise.

        At-least-once delivery can run two handlers of one event at once (a worker
        paused past the ack wait, then resumed). If the other one refunded and failed
        the order, the seats this one sold belong to nobody: they go back on sale.
        """
        async with self._tx.unit() as uow:
            order = await uow.orders.get(event.order_id)
        if order is None or (
            order.status is OrderStatus.COMPLETED and order.payment_id == event.payment_id
        ):
            return
        _log.warning("sold_seats_of_an_order_that_did_not_complete", order_id=str(order.order_id))
        await self._return_seats_of(order)

    async def _refund_unpayable(
        self, event: PaymentSucceeded, order: Order, *, seats_sold_to_it: bool
    ) -> None:
        """Money came in for an order that cannot have its seats: give it back, once."""
        await self._payments.refund(event.payment_id, reason="order_not_payable")
        now = self._clock.now()
        async with self._tx.unit() as uow:
            if not await uow.processed_events.add(COMPLETE_PURCHASE, event.event_id):
                return
            fresh = await uow.orders.get(event.order_id)
            if fresh is not None and fresh.is_open:
                if fresh.is_due(now):
                    fresh.expire(now=now, ids=self._ids.new_id)
                else:
                    fresh.fail("seats_no_longer_held", now=now, ids=self._ids.new_id)
                await uow.orders.save(fresh)
            await uow.commit()
        if seats_sold_to_it:
            await self._return_seats_of(order)

    # --- payment failed ------------------------------------------------------------------

    async def on_payment_failed(self, event: PaymentFailed) -> None:
        """The order that awaited this payment fails (its seats go back on ``OrderFailed``)."""
        async with self._tx.unit() as uow:
            if not await uow.processed_events.add(FAIL_ORDER, event.event_id):
                return
            order = await uow.orders.get(event.order_id)
            if (
                order is not None
                and order.status is OrderStatus.PAYMENT_PENDING
                and order.payment_id == event.payment_id
            ):
                order.fail(event.reason, now=self._clock.now(), ids=self._ids.new_id)
                await uow.orders.save(order)
            await uow.commit()

    # --- seats follow the order -------------------------------------------------------------

    async def release_seats(self, event: OrderEvent) -> None:
        """An order ended unpaid: its hold's seats are free again (if the hold is still there).

        If the hold is gone because a sale used it (the payment came, but the order
        could not complete and was refunded), the seats sold to the order go back on
        sale: this step is retried until it succeeds, so they never stay sold to nobody.
        """
        order = await self._order(event.order_id)
        try:
            await self._seating.ask(
                ReleaseSeats(
                    session_id=order.session_id, area_id=order.area_id, hold_id=order.hold_id
                )
            )
        except HoldExpired:
            pass
        except NotHolder:
            await self._return_seats_of(order)

    async def return_seats(self, event: OrderRefunded) -> None:
        """A refunded order's sold seats can be sold again."""
        await self._return_seats_of(await self._order(event.order_id))

    async def _return_seats_of(self, order: Order) -> None:
        await self._seating.ask(
            ReturnSeats(
                session_id=order.session_id,
                area_id=order.area_id,
                hold_id=order.hold_id,
                order_id=order.order_id,
                seat_ids=order.seat_ids,
            )
        )

    # --- refund by an organizer ---------------------------------------------------------------

    async def refund_order(self, by: Requester, order_id: OrderId) -> Order:
        """Refund a completed order of one of the caller's events (organizers, admins).

        The provider is refunded first (idempotently), then the order is marked
        refunded and its tickets voided in one transaction; the seats return to sale.
        """
        by.require(Role.ORGANIZER)
        order = await self._order(order_id)
        event = (await self._catalog.sale_context(order.session_id)).event
        if not (by.is_admin or event.is_managed_by(by.user_id)):
            raise NotFound(f"no order {order_id} of your events")
        if order.status is not OrderStatus.COMPLETED or order.payment_id is None:
            raise InvalidTransition("order", order.status.value, OrderStatus.REFUNDED.value)
        await self._payments.refund(order.payment_id, reason="refunded_by_organizer")
        return await self._close_refunded(order_id)

    async def on_payment_refunded(self, event: PaymentRefunded) -> None:
        """Money given back at the provider (say, from its dashboard): refund the order too.

        The completed order it paid is refunded — tickets voided, seats back on sale.
        Orders that payment never completed are the other steps' business (refunds of
        money that came for an order that could not have its seats).
        """
        async with self._tx.unit() as uow:
            order = await uow.orders.get(event.order_id)
        if (
            order is not None
            and order.status is OrderStatus.COMPLETED
            and order.payment_id == event.payment_id
        ):
            await self._close_refunded(order.order_id)

    async def _close_refunded(self, order_id: OrderId) -> Order:
        """Mark a completed order refunded and void its tickets, in one transaction."""

        async def close(uow: UnitOfWork) -> Order:
            now = self._clock.now()
            fresh = await uow.orders.get(order_id)
            if fresh is None:
                raise NotFound(f"no order {order_id}")
            if fresh.status is OrderStatus.COMPLETED:
                fresh.refund(now=now, ids=self._ids.new_id)
                for ticket in await uow.tickets.list_for_order(order_id):
                    if ticket.is_live:
                        ticket.void(now=now, ids=self._ids.new_id)
                        await uow.tickets.save(ticket)
                await uow.orders.save(fresh)
            return fresh

        return await self._tx.run(close)

    async def _order(self, order_id: OrderId) -> Order:
        async with self._tx.unit() as uow:
            order = await uow.orders.get(order_id)
        if order is None:
            raise NotFound(f"no order {order_id}")
        return order
