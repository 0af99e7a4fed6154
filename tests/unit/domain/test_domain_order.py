from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import attrs
import pytest

from openticket.adapters.memory.clock import SequentialIdGenerator
from openticket.domain.ordering import (
    Order,
    OrderCancelled,
    OrderCompleted,
    OrderCreated,
    OrderExpired,
    OrderFailed,
    OrderItem,
    OrderNotYetDue,
    OrderPaymentStarted,
    OrderRefunded,
    OrderStatus,
    PaymentMismatch,
)
from openticket.domain.seating import HoldExpired, SeatsSpanAreas
from openticket.domain.shared import (
    AreaId,
    HoldId,
    InvalidTransition,
    Money,
    OrderId,
    PaymentId,
    SeatId,
    SessionId,
    UserId,
    ValidationError,
)

HOLD_LEFT = timedelta(minutes=2)
PAYMENT = PaymentId(UUID(int=77))


def item(seat: str, price: str, currency: str = "TWD") -> OrderItem:
    return OrderItem(SeatId(seat), Money(price, currency))


def open_order(
    now: datetime, ids: SequentialIdGenerator, items: list[OrderItem] | None = None, **changes: Any
) -> Order:
    fields: dict[str, Any] = {
        "order_id": OrderId(ids.new_id()),
        "user_id": UserId(ids.new_id()),
        "session_id": SessionId(ids.new_id()),
        "area_id": AreaId("A"),
        "hold_id": HoldId(ids.new_id()),
        "fencing_token": 3,
        "items": items or [item("A-1-1", "1200"), item("A-1-2", "800.50")],
        "now": now,
        "expires_at": now + HOLD_LEFT,
        "ids": ids.new_id,
    }
    fields.update(changes)
    return Order.create(**fields)


def state(order: Order) -> dict[str, Any]:
    return attrs.asdict(order, recurse=False, filter=lambda a, _: a.name != "_pending_events")


def test_a_new_order_totals_its_items_and_announces_itself(
    now: datetime, ids: SequentialIdGenerator
) -> None:
    order = open_order(now, ids)
    assert order.status is OrderStatus.CREATED
    assert order.total == Money("2000.50", "TWD")
    assert order.seat_ids == ("A-1-1", "A-1-2")
    [created] = order.collect_events()
    assert isinstance(created, OrderCreated)
    assert (created.total, created.expires_at, created.hold_id) == (
        order.total,
        now + HOLD_LEFT,
        order.hold_id,
    )


def test_no_order_for_a_hold_that_has_expired(now: datetime, ids: SequentialIdGenerator) -> None:
    with pytest.raises(HoldExpired):
        open_order(now, ids, expires_at=now)


@pytest.mark.parametrize(
    "items",
    [
        [item("A-1-1", "10"), item("A-1-1", "10")],
        [item("A-1-1", "10"), item("A-1-2", "10", "USD")],
        [item("A-1-1", "-1")],
    ],
    ids=["seat-twice", "two-currencies", "negative-price"],
)
def test_orders_with_invalid_items_are_refused(
    now: datetime, ids: SequentialIdGenerator, items: list[OrderItem]
) -> None:
    with pytest.raises(ValidationError):
        open_order(now, ids, items=items)


def test_an_order_needs_at_least_one_seat(now: datetime, ids: SequentialIdGenerator) -> None:
    with pytest.raises(ValidationError):
        Order.create(
            order_id=OrderId(ids.new_id()),
            user_id=UserId(ids.new_id()),
            session_id=SessionId(ids.new_id()),
            area_id=AreaId("A"),
            hold_id=HoldId(ids.new_id()),
            fencing_token=1,
            items=[],
            now=now,
            expires_at=now + HOLD_LEFT,
            ids=ids.new_id,
        )


def test_an_order_keeps_its_area_and_refuses_seats_of_another(
    now: datetime, ids: SequentialIdGenerator
) -> None:
    assert open_order(now, ids, area_id=AreaId("A")).area_id == "A"
    with pytest.raises(SeatsSpanAreas):
        open_order(now, ids, area_id=AreaId("B"))
    with pytest.raises(SeatsSpanAreas):
        open_order(now, ids, items=[item("A-1-1", "1200"), item("B-1-1", "1200")])


def test_order_times_must_be_timezone_aware(now: datetime, ids: SequentialIdGenerator) -> None:
    with pytest.raises(ValidationError, match="timezone-aware"):
        open_order(now, ids, expires_at=(now + HOLD_LEFT).replace(tzinfo=None))


def test_paying_completing_and_refunding_each_record_one_event(
    now: datetime, ids: SequentialIdGenerator
) -> None:
    order = open_order(now, ids)
    order.collect_events()
    order.start_payment(PAYMENT, now=now, ids=ids.new_id)
    assert (order.status, order.payment_id) == (OrderStatus.PAYMENT_PENDING, PAYMENT)
    assert [type(e) for e in order.collect_events()] == [OrderPaymentStarted]
    paid_at = now + timedelta(seconds=30)
    order.complete(PAYMENT, now=paid_at, ids=ids.new_id)
    assert (order.status, order.completed_at, order.closed_at) == (
        OrderStatus.COMPLETED,
        paid_at,
        paid_at,
    )
    assert [type(e) for e in order.collect_events()] == [OrderCompleted]
    order.refund(now=paid_at + timedelta(days=1), ids=ids.new_id)
    assert order.status is OrderStatus.REFUNDED
    assert order.payment_id == PAYMENT
    assert [type(e) for e in order.collect_events()] == [OrderRefunded]


def test_starting_a_payment_at_the_holds_expiry_is_too_late_and_changes_nothing(
    now: datetime, ids: SequentialIdGenerator
) -> None:
    order = open_order(now, ids)
    order.collect_events()
    before = state(order)
    with pytest.raises(HoldExpired):
        order.start_payment(PAYMENT, now=now + HOLD_LEFT, ids=ids.new_id)
    assert state(order) == before
    assert not order.has_pending_events


def test_starting_a_payment_does_not_extend_the_order(
    now: datetime, ids: SequentialIdGenerator
) -> None:
    order = open_order(now, ids)
    order.start_payment(PAYMENT, now=now + timedelta(seconds=100), ids=ids.new_id)
    assert order.expires_at == now + HOLD_LEFT
    assert order.is_due(now + HOLD_LEFT)


def test_a_payment_the_order_was_not_waiting_for_does_not_complete_it(
    now: datetime, ids: SequentialIdGenerator
) -> None:
    order = open_order(now, ids)
    order.start_payment(PAYMENT, now=now, ids=ids.new_id)
    order.collect_events()
    with pytest.raises(PaymentMismatch):
        order.complete(PaymentId(UUID(int=78)), now=now, ids=ids.new_id)
    assert order.status is OrderStatus.PAYMENT_PENDING
    assert order.collect_events() == []


def test_an_order_cannot_complete_before_a_payment_started(
    now: datetime, ids: SequentialIdGenerator
) -> None:
    order = open_order(now, ids)
    with pytest.raises(InvalidTransition):
        order.complete(PAYMENT, now=now, ids=ids.new_id)


def test_an_order_expires_at_its_due_time_not_before(
    now: datetime, ids: SequentialIdGenerator
) -> None:
    order = open_order(now, ids)
    order.collect_events()
    with pytest.raises(OrderNotYetDue):
        order.expire(now=now + HOLD_LEFT - timedelta(microseconds=1), ids=ids.new_id)
    assert order.status is OrderStatus.CREATED
    order.expire(now=now + HOLD_LEFT, ids=ids.new_id)
    assert (order.status, order.closed_at) == (OrderStatus.EXPIRED, now + HOLD_LEFT)
    assert [type(e) for e in order.collect_events()] == [OrderExpired]


def test_an_order_awaiting_payment_expires_too(now: datetime, ids: SequentialIdGenerator) -> None:
    order = open_order(now, ids)
    order.start_payment(PAYMENT, now=now, ids=ids.new_id)
    order.expire(now=now + HOLD_LEFT, ids=ids.new_id)
    assert order.status is OrderStatus.EXPIRED


def test_a_failed_payment_fails_the_order_with_its_reason(
    now: datetime, ids: SequentialIdGenerator
) -> None:
    order = open_order(now, ids)
    order.start_payment(PAYMENT, now=now, ids=ids.new_id)
    order.collect_events()
    order.fail("card declined", now=now, ids=ids.new_id)
    assert (order.status, order.failure_reason) == (OrderStatus.FAILED, "card declined")
    [failed] = order.collect_events()
    assert isinstance(failed, OrderFailed)
    assert failed.reason == "card declined"


def test_an_order_without_a_payment_cannot_fail(now: datetime, ids: SequentialIdGenerator) -> None:
    order = open_order(now, ids)
    with pytest.raises(InvalidTransition):
        order.fail("no payment", now=now, ids=ids.new_id)


@pytest.mark.parametrize("paying", [False, True])
def test_a_buyer_can_cancel_before_paying(
    now: datetime, ids: SequentialIdGenerator, paying: bool
) -> None:
    order = open_order(now, ids)
    if paying:
        order.start_payment(PAYMENT, now=now, ids=ids.new_id)
    order.collect_events()
    order.cancel(now=now, ids=ids.new_id)
    assert order.status is OrderStatus.CANCELLED
    assert not order.is_open
    assert [type(e) for e in order.collect_events()] == [OrderCancelled]


def test_a_completed_order_cannot_be_cancelled_or_expired(
    now: datetime, ids: SequentialIdGenerator
) -> None:
    order = open_order(now, ids)
    order.start_payment(PAYMENT, now=now, ids=ids.new_id)
    order.complete(PAYMENT, now=now, ids=ids.new_id)
    with pytest.raises(InvalidTransition):
        order.cancel(now=now, ids=ids.new_id)
    with pytest.raises(InvalidTransition):
        order.expire(now=now + HOLD_LEFT, ids=ids.new_id)
    assert not order.is_due(now + HOLD_LEFT)


def _end_in(status: OrderStatus, order: Order, now: datetime, ids: SequentialIdGenerator) -> None:
    if status is OrderStatus.EXPIRED:
        order.expire(now=now + HOLD_LEFT, ids=ids.new_id)
        return
    if status is OrderStatus.CANCELLED:
        order.cancel(now=now, ids=ids.new_id)
        return
    order.start_payment(PAYMENT, now=now, ids=ids.new_id)
    if status is OrderStatus.FAILED:
        order.fail("declined", now=now, ids=ids.new_id)
        return
    order.complete(PAYMENT, now=now, ids=ids.new_id)
    order.refund(now=now, ids=ids.new_id)


COMMANDS: dict[str, Callable[[Order, datetime, SequentialIdGenerator], object]] = {
    "start_payment": lambda o, t, i: o.start_payment(PAYMENT, now=t, ids=i.new_id),
    "complete": lambda o, t, i: o.complete(PAYMENT, now=t, ids=i.new_id),
    "fail": lambda o, t, i: o.fail("x", now=t, ids=i.new_id),
    "expire": lambda o, t, i: o.expire(now=t + HOLD_LEFT, ids=i.new_id),
    "cancel": lambda o, t, i: o.cancel(now=t, ids=i.new_id),
    "refund": lambda o, t, i: o.refund(now=t, ids=i.new_id),
}


@pytest.mark.parametrize(
    "final", [OrderStatus.EXPIRED, OrderStatus.CANCELLED, OrderStatus.FAILED, OrderStatus.REFUNDED]
)
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_finished_order_refuses_every_command_and_stays_as_it_was(
    now: datetime, ids: SequentialIdGenerator, final: OrderStatus, command: str
) -> None:
    order = open_order(now, ids)
    _end_in(final, order, now, ids)
    order.collect_events()
    before = state(order)
    with pytest.raises(InvalidTransition):
        COMMANDS[command](order, now, ids)
    assert state(order) == before
    assert order.collect_events() == []
