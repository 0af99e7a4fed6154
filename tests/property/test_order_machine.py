"""Orders, payments and tickets only ever make the moves their status machines draw.

Each ``RuleBasedStateMachine`` tries every transition on every aggregate it made, in
any status, at any time, with right and wrong arguments. A move the model refuses
must raise the expected error and leave the aggregate exactly as it was (every attrs
field); a move it allows must record exactly one event of the right kind.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import attrs
import pytest
from hypothesis import event
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    MultipleResults,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
)

from openticket.adapters.memory.clock import (
    FakeClock,
    SequentialIdGenerator,
    SequentialTicketCodes,
)
from openticket.domain.ordering import (
    LEGAL_TRANSITIONS,
    Order,
    OrderCancelled,
    OrderCompleted,
    OrderCreated,
    OrderEvent,
    OrderExpired,
    OrderFailed,
    OrderItem,
    OrderNotYetDue,
    OrderPaymentStarted,
    OrderRefunded,
    OrderStatus,
    PaymentMismatch,
)
from openticket.domain.payment import (
    LEGAL_PAYMENT_TRANSITIONS,
    Payment,
    PaymentEvent,
    PaymentFailed,
    PaymentInitiated,
    PaymentRefunded,
    PaymentStatus,
    PaymentSucceeded,
)
from openticket.domain.seating import HoldExpired
from openticket.domain.shared import (
    Aggregate,
    AreaId,
    DomainError,
    DomainEvent,
    HoldId,
    InvalidTransition,
    Money,
    OrderId,
    PaymentId,
    SeatId,
    SessionId,
    TicketId,
    UserId,
    total_of,
)
from openticket.domain.ticketing import (
    AlreadyUsed,
    Ticket,
    TicketCheckedIn,
    TicketEvent,
    TicketIssued,
    TicketStatus,
    TicketVoided,
    TicketVoidedEvent,
)
from openticket.testing.strategies import money, order_items

SEATS = ("A-1-1", "A-1-2", "A-1-3", "A-2-1", "A-2-2")
SESSION = SessionId(UUID(int=0x5E55))
_O = OrderStatus

ORDER_MOVES: dict[str, tuple[frozenset[OrderStatus], OrderStatus, type[DomainEvent]]] = {
    "start_payment": (frozenset({_O.CREATED}), _O.PAYMENT_PENDING, OrderPaymentStarted),
    "complete": (frozenset({_O.PAYMENT_PENDING}), _O.COMPLETED, OrderCompleted),
    "fail": (frozenset({_O.PAYMENT_PENDING}), _O.FAILED, OrderFailed),
    "expire": (frozenset({_O.CREATED, _O.PAYMENT_PENDING}), _O.EXPIRED, OrderExpired),
    "cancel": (frozenset({_O.CREATED, _O.PAYMENT_PENDING}), _O.CANCELLED, OrderCancelled),
    "refund": (frozenset({_O.COMPLETED}), _O.REFUNDED, OrderRefunded),
}
"""The model's own reading of the order diagram: command → (from, to, event)."""

NEXT_STEP = {_O.CREATED: "start_payment", _O.PAYMENT_PENDING: "complete", _O.COMPLETED: "refund"}


def state_of(aggregate: Aggregate) -> dict[str, Any]:
    """Every attrs field of ``aggregate`` except the pending-event list."""
    return attrs.asdict(aggregate, recurse=False, filter=lambda a, _: a.name != "_pending_events")


class TimeMachine(RuleBasedStateMachine):
    """Base: a clock that moves forward (and a little back) and deterministic ids."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock()
        self.ids = SequentialIdGenerator(seed=0x0DE5)

    @property
    def now(self) -> datetime:
        return self.clock.now()

    def new_id(self) -> UUID:
        return self.ids.new_id()

    @rule(milliseconds=st.integers(0, 60_000))
    def time_passes(self, milliseconds: int) -> None:
        self.clock.advance(timedelta(milliseconds=milliseconds))

    @rule(milliseconds=st.integers(1, 2_000))
    def clock_steps_back(self, milliseconds: int) -> None:
        self.clock.advance(-timedelta(milliseconds=milliseconds))

    def refused(
        self, aggregate: Aggregate, error: type[DomainError], call: Callable[[], object]
    ) -> None:
        """``call`` must raise exactly ``error`` and change nothing of ``aggregate``."""
        before = state_of(aggregate)
        with pytest.raises(error) as info:
            call()
        assert type(info.value) is error
        assert state_of(aggregate) == before
        assert aggregate.collect_events() == []
        event(f"{type(aggregate).__name__}: refused with {error.__name__}")


@attrs.define
class OrderModel:
    """What the model expects of one order."""

    status: OrderStatus
    expires_at: datetime
    payment_id: PaymentId | None = None
    seen: list[OrderStatus] = attrs.Factory(list)
    """Every status the order was observed in, in order."""


class OrderMachine(TimeMachine):
    """Every command on every order, in every status, early and late."""

    orders = Bundle("orders")

    def __init__(self) -> None:
        super().__init__()
        self.orders_by_id: dict[OrderId, Order] = {}
        self.model: dict[OrderId, OrderModel] = {}

    def open_order(self, items: tuple[OrderItem, ...], hold_left_ms: int) -> OrderId:
        order_id = OrderId(self.new_id())
        expires_at = self.now + timedelta(milliseconds=hold_left_ms)
        order = Order.create(
            order_id=order_id,
            user_id=UserId(self.new_id()),
            session_id=SESSION,
            area_id=AreaId("A"),
            hold_id=HoldId(self.new_id()),
            fencing_token=1,
            items=items,
            now=self.now,
            expires_at=expires_at,
            ids=self.new_id,
        )
        [created] = order.collect_events()
        assert isinstance(created, OrderCreated)
        assert (created.order_id, created.occurred_at) == (order_id, self.now)
        assert created.seat_ids == tuple(i.seat_id for i in items)
        assert created.total == order.total
        assert created.expires_at == expires_at
        self.orders_by_id[order_id] = order
        self.model[order_id] = OrderModel(_O.CREATED, expires_at, seen=[_O.CREATED])
        return order_id

    @initialize(
        target=orders,
        first=order_items(SEATS, max_items=4),
        more=st.lists(order_items(SEATS, max_items=2), max_size=2),
    )
    def buyers_open_orders(
        self, first: tuple[OrderItem, ...], more: list[tuple[OrderItem, ...]]
    ) -> MultipleResults[OrderId]:
        return multiple(*(self.open_order(items, 120_000) for items in (first, *more)))

    @rule(
        target=orders, items=order_items(SEATS, max_items=4), hold_left_ms=st.integers(1, 180_000)
    )
    def create(self, items: tuple[OrderItem, ...], hold_left_ms: int) -> OrderId:
        return self.open_order(items, hold_left_ms)

    @rule(items=order_items(SEATS, max_items=2), late_by_ms=st.integers(0, 5_000))
    def create_for_a_hold_that_has_expired(
        self, items: tuple[OrderItem, ...], late_by_ms: int
    ) -> None:
        with pytest.raises(HoldExpired):
            Order.create(
                order_id=OrderId(self.new_id()),
                user_id=UserId(self.new_id()),
                session_id=SESSION,
                area_id=AreaId("A"),
                hold_id=HoldId(self.new_id()),
                fencing_token=1,
                items=items,
                now=self.now,
                expires_at=self.now - timedelta(milliseconds=late_by_ms),
                ids=self.new_id,
            )

    def attempt(
        self,
        order_id: OrderId,
        command: str,
        call: Callable[[Order], object],
        error_if_status_allows: type[DomainError] | None = None,
    ) -> None:
        """Run ``command``; the model says whether it must succeed or which error it raises."""
        order, model = self.orders_by_id[order_id], self.model[order_id]
        allowed_from, target, event_type = ORDER_MOVES[command]
        if model.status not in allowed_from:
            self.refused(order, InvalidTransition, lambda: call(order))
            return
        if error_if_status_allows is not None:
            self.refused(order, error_if_status_allows, lambda: call(order))
            return
        call(order)
        assert order.status is target
        [recorded] = order.collect_events()
        assert type(recorded) is event_type
        assert isinstance(recorded, OrderEvent)
        assert (recorded.order_id, recorded.user_id, recorded.session_id) == (
            order.order_id,
            order.user_id,
            order.session_id,
        )
        assert recorded.occurred_at == self.now
        model.status = target
        event(f"order: {command} done")

    @rule(order_id=orders)
    def start_payment(self, order_id: OrderId) -> None:
        payment_id = PaymentId(self.new_id())
        model = self.model[order_id]
        late = self.now >= model.expires_at
        self.attempt(
            order_id,
            "start_payment",
            lambda o: o.start_payment(payment_id, now=self.now, ids=self.new_id),
            HoldExpired if late else None,
        )
        if model.status is _O.PAYMENT_PENDING and model.payment_id is None:
            model.payment_id = payment_id

    @rule(order_id=orders, right_payment=st.booleans())
    def complete(self, order_id: OrderId, right_payment: bool) -> None:
        model = self.model[order_id]
        expected = model.payment_id if right_payment else None
        payment_id = expected if expected is not None else PaymentId(self.new_id())
        self.attempt(
            order_id,
            "complete",
            lambda o: o.complete(payment_id, now=self.now, ids=self.new_id),
            None if payment_id == model.payment_id else PaymentMismatch,
        )

    @rule(order_id=orders, reason=st.sampled_from(["declined", "timeout"]))
    def fail(self, order_id: OrderId, reason: str) -> None:
        self.attempt(order_id, "fail", lambda o: o.fail(reason, now=self.now, ids=self.new_id))

    @rule(order_id=orders)
    def expire(self, order_id: OrderId) -> None:
        early = self.now < self.model[order_id].expires_at
        self.attempt(
            order_id,
            "expire",
            lambda o: o.expire(now=self.now, ids=self.new_id),
            OrderNotYetDue if early else None,
        )

    @rule(order_id=orders)
    def cancel(self, order_id: OrderId) -> None:
        self.attempt(order_id, "cancel", lambda o: o.cancel(now=self.now, ids=self.new_id))

    @rule(order_id=orders)
    def refund(self, order_id: OrderId) -> None:
        self.attempt(order_id, "refund", lambda o: o.refund(now=self.now, ids=self.new_id))

    @rule(order_id=orders, microseconds=st.sampled_from([-1, 0, 1]))
    def clock_reaches_the_due_time_of(self, order_id: OrderId, microseconds: int) -> None:
        self.clock.set(self.model[order_id].expires_at + timedelta(microseconds=microseconds))

    @precondition(lambda self: any(m.status in NEXT_STEP for m in self.model.values()))
    @rule(pick=st.integers(0, 10), right_payment=st.booleans())
    def a_buyer_carries_on_with_an_order(self, pick: int, right_payment: bool) -> None:
        # the natural next step of a live order, so that deep statuses are reached often
        ongoing = [oid for oid, m in self.model.items() if m.status in NEXT_STEP]
        order_id = ongoing[pick % len(ongoing)]
        step = NEXT_STEP[self.model[order_id].status]
        if step == "start_payment":
            self.start_payment(order_id)
        elif step == "complete":
            self.complete(order_id, right_payment)
        else:
            self.refund(order_id)

    @invariant()
    def only_legal_moves_ever_happened(self) -> None:
        for order_id, order in self.orders_by_id.items():
            # every status change the order made on its own, checked against the published table
            seen = self.model[order_id].seen
            if order.status is not seen[-1]:
                assert order.status in LEGAL_TRANSITIONS[seen[-1]], f"{seen[-1]} -> {order.status}"
                seen.append(order.status)
            assert order.status is self.model[order_id].status

    @invariant()
    def total_is_the_sum_of_the_item_prices(self) -> None:
        for order in self.orders_by_id.values():
            currency = order.items[0].price.currency
            assert order.total == total_of((i.price for i in order.items), currency)
            assert order.total.amount == sum((i.price.amount for i in order.items), Decimal(0))
            assert order.total.currency == currency

    @invariant()
    def paid_orders_know_their_payment_and_closed_orders_their_end(self) -> None:
        for order_id, order in self.orders_by_id.items():
            model = self.model[order_id]
            assert order.payment_id == model.payment_id
            if order.status in (_O.COMPLETED, _O.REFUNDED):
                assert order.payment_id is not None
                assert order.payment_id == model.payment_id
                assert order.completed_at is not None
            else:
                assert order.completed_at is None
            assert (order.closed_at is None) == order.is_open
            assert (order.failure_reason is not None) == (order.status is _O.FAILED)
            assert order.is_due(self.now) == (order.is_open and self.now >= model.expires_at)


@attrs.define
class PaymentModel:
    """What the model expects of one payment."""

    status: PaymentStatus
    amount: Money
    seen: list[PaymentStatus] = attrs.Factory(list)
    """Every status the payment was observed in, in order."""


_P = PaymentStatus
PAYMENT_MOVES: dict[
    str, tuple[frozenset[PaymentStatus], PaymentStatus, type[DomainEvent] | None]
] = {
    "mark_pending": (frozenset({_P.INITIATED}), _P.PENDING, None),
    "succeed": (frozenset({_P.PENDING}), _P.SUCCEEDED, PaymentSucceeded),
    "fail": (frozenset({_P.INITIATED, _P.PENDING}), _P.FAILED, PaymentFailed),
    "refund": (frozenset({_P.SUCCEEDED}), _P.REFUNDED, PaymentRefunded),
}
"""The model's reading of the payment diagram (``mark_pending`` records no event)."""


class PaymentMachine(TimeMachine):
    """Every provider answer on every payment, in every status."""

    payments = Bundle("payments")

    def __init__(self) -> None:
        super().__init__()
        self.by_id: dict[PaymentId, Payment] = {}
        self.model: dict[PaymentId, PaymentModel] = {}

    @rule(target=payments, amount=money("TWD", max_amount=100_000))
    def initiate(self, amount: Money) -> PaymentId:
        payment_id = PaymentId(self.new_id())
        payment = Payment.initiate(
            payment_id=payment_id,
            order_id=OrderId(self.new_id()),
            user_id=UserId(self.new_id()),
            provider="mock",
            amount=amount,
            idempotency_key=f"pay-{payment_id}",
            now=self.now,
            ids=self.new_id,
        )
        [initiated] = payment.collect_events()
        assert isinstance(initiated, PaymentInitiated)
        assert (initiated.payment_id, initiated.amount) == (payment_id, amount)
        self.by_id[payment_id] = payment
        self.model[payment_id] = PaymentModel(_P.INITIATED, amount, [_P.INITIATED])
        return payment_id

    def attempt(
        self, payment_id: PaymentId, command: str, call: Callable[[Payment], object]
    ) -> None:
        payment, model = self.by_id[payment_id], self.model[payment_id]
        allowed_from, target, event_type = PAYMENT_MOVES[command]
        if model.status not in allowed_from:
            self.refused(payment, InvalidTransition, lambda: call(payment))
            return
        call(payment)
        assert payment.status is target
        recorded = payment.collect_events()
        assert [type(e) for e in recorded] == ([] if event_type is None else [event_type])
        for e in recorded:
            assert isinstance(e, PaymentEvent)
            assert (e.payment_id, e.order_id, e.amount) == (
                payment.payment_id,
                payment.order_id,
                model.amount,
            )
            assert e.occurred_at == self.now
        model.status = target
        event(f"payment: {command} done")

    @rule(payment_id=payments, transaction=st.none() | st.just("tx-1"))
    def provider_accepts(self, payment_id: PaymentId, transaction: str | None) -> None:
        self.attempt(payment_id, "mark_pending", lambda p: p.mark_pending(transaction))

    @rule(payment_id=payments)
    def provider_captures(self, payment_id: PaymentId) -> None:
        self.attempt(payment_id, "succeed", lambda p: p.succeed(now=self.now, ids=self.new_id))

    @rule(payment_id=payments)
    def provider_declines(self, payment_id: PaymentId) -> None:
        self.attempt(
            payment_id, "fail", lambda p: p.fail("declined", now=self.now, ids=self.new_id)
        )

    @rule(payment_id=payments)
    def money_is_paid_back(self, payment_id: PaymentId) -> None:
        self.attempt(
            payment_id, "refund", lambda p: p.refund("refund", now=self.now, ids=self.new_id)
        )

    @invariant()
    def payments_follow_their_diagram(self) -> None:
        for payment_id, payment in self.by_id.items():
            model = self.model[payment_id]
            if payment.status is not model.seen[-1]:
                assert payment.status in LEGAL_PAYMENT_TRANSITIONS[model.seen[-1]]
                model.seen.append(payment.status)
            assert payment.status is model.status
            assert payment.amount == model.amount
            settled = payment.status in (_P.SUCCEEDED, _P.FAILED, _P.REFUNDED)
            assert (payment.processed_at is not None) == settled
            assert (payment.refunded_at is not None) == (payment.status is _P.REFUNDED)
            assert payment.is_captured == (payment.status is _P.SUCCEEDED)


class TicketMachine(TimeMachine):
    """Gate scans and refunds on tickets: nobody gets in twice, a void ticket admits no one."""

    tickets = Bundle("tickets")

    def __init__(self) -> None:
        super().__init__()
        self.codes = SequentialTicketCodes(seed=7)
        self.by_id: dict[TicketId, Ticket] = {}
        self.status: dict[TicketId, TicketStatus] = {}

    @rule(target=tickets, seat=st.sampled_from(SEATS), price=money("TWD", max_amount=5_000))
    def issue(self, seat: str, price: Money) -> TicketId:
        ticket_id = TicketId(self.new_id())
        ticket = Ticket.issue(
            ticket_id=ticket_id,
            order_id=OrderId(self.new_id()),
            session_id=SESSION,
            area_id=AreaId("A"),
            seat_id=SeatId(seat),
            user_id=UserId(self.new_id()),
            price=price,
            qr_code=self.codes.new_code(),
            now=self.now,
            ids=self.new_id,
        )
        assert [type(e) for e in ticket.collect_events()] == [TicketIssued]
        self.by_id[ticket_id] = ticket
        self.status[ticket_id] = TicketStatus.ISSUED
        return ticket_id

    @rule(ticket_id=tickets)
    def gate_scans(self, ticket_id: TicketId) -> None:
        ticket = self.by_id[ticket_id]

        def call() -> None:
            ticket.check_in(now=self.now, ids=self.new_id)

        if self.status[ticket_id] is TicketStatus.USED:
            self.refused(ticket, AlreadyUsed, call)
            return
        if self.status[ticket_id] is TicketStatus.VOIDED:
            self.refused(ticket, TicketVoided, call)
            return
        call()
        [checked_in] = ticket.collect_events()
        assert isinstance(checked_in, TicketCheckedIn)
        assert checked_in.ticket_id == ticket_id
        assert ticket.used_at == self.now
        self.status[ticket_id] = TicketStatus.USED

    @rule(ticket_id=tickets)
    def refund_voids(self, ticket_id: TicketId) -> None:
        ticket = self.by_id[ticket_id]

        def call() -> None:
            ticket.void(now=self.now, ids=self.new_id)

        if self.status[ticket_id] is TicketStatus.VOIDED:
            self.refused(ticket, InvalidTransition, call)
            return
        call()
        [voided] = ticket.collect_events()
        assert isinstance(voided, TicketVoidedEvent)
        assert isinstance(voided, TicketEvent)
        assert (voided.ticket_id, voided.seat_id) == (ticket_id, ticket.seat_id)
        self.status[ticket_id] = TicketStatus.VOIDED

    @invariant()
    def tickets_agree_with_the_model(self) -> None:
        for ticket_id, ticket in self.by_id.items():
            assert ticket.status is self.status[ticket_id]
            assert ticket.is_live == (ticket.status is not TicketStatus.VOIDED)
            assert (ticket.voided_at is not None) == (ticket.status is TicketStatus.VOIDED)
            assert len(ticket.qr_code) >= 16


TestOrderMachine = OrderMachine.TestCase
TestPaymentMachine = PaymentMachine.TestCase
TestTicketMachine = TicketMachine.TestCase
