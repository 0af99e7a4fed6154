from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from openticket.adapters.memory.clock import SequentialIdGenerator, SequentialTicketCodes
from openticket.domain.payment import (
    Payment,
    PaymentFailed,
    PaymentInitiated,
    PaymentRefunded,
    PaymentStatus,
    PaymentSucceeded,
)
from openticket.domain.shared import (
    AreaId,
    InvalidTransition,
    Money,
    OrderId,
    PaymentId,
    SeatId,
    SessionId,
    TicketId,
    UserId,
    ValidationError,
)
from openticket.domain.ticketing import (
    AlreadyUsed,
    Ticket,
    TicketCheckedIn,
    TicketIssued,
    TicketStatus,
    TicketVoided,
    TicketVoidedEvent,
)


def start_payment(now: datetime, ids: SequentialIdGenerator, **changes: Any) -> Payment:
    fields: dict[str, Any] = {
        "payment_id": PaymentId(ids.new_id()),
        "order_id": OrderId(ids.new_id()),
        "user_id": UserId(ids.new_id()),
        "provider": "mock",
        "amount": Money("2000.50", "TWD"),
        "idempotency_key": "order-1-attempt-1",
        "now": now,
        "ids": ids.new_id,
    }
    fields.update(changes)
    return Payment.initiate(**fields)


def issue_ticket(now: datetime, ids: SequentialIdGenerator, qr_code: str | None = None) -> Ticket:
    return Ticket.issue(
        ticket_id=TicketId(ids.new_id()),
        order_id=OrderId(ids.new_id()),
        session_id=SessionId(ids.new_id()),
        area_id=AreaId("A"),
        seat_id=SeatId("A-1-1"),
        user_id=UserId(ids.new_id()),
        price=Money("1200", "TWD"),
        qr_code=SequentialTicketCodes().new_code() if qr_code is None else qr_code,
        now=now,
        ids=ids.new_id,
    )


# --- payments -----------------------------------------------------------------------


def test_a_payment_starts_initiated_with_its_idempotency_key(
    now: datetime, ids: SequentialIdGenerator
) -> None:
    payment = start_payment(now, ids)
    assert payment.status is PaymentStatus.INITIATED
    assert payment.idempotency_key == "order-1-attempt-1"
    [initiated] = payment.collect_events()
    assert isinstance(initiated, PaymentInitiated)
    assert initiated.amount == Money("2000.50", "TWD")


@pytest.mark.parametrize(
    "changes",
    [{"amount": Money("-1", "TWD")}, {"provider": ""}, {"idempotency_key": ""}],
    ids=["negative-amount", "no-provider", "no-idempotency-key"],
)
def test_invalid_payments_are_refused(
    now: datetime, ids: SequentialIdGenerator, changes: dict[str, Any]
) -> None:
    with pytest.raises(ValidationError):
        start_payment(now, ids, **changes)


def test_a_provider_that_accepts_and_later_captures_succeeds_the_payment(
    now: datetime, ids: SequentialIdGenerator
) -> None:
    payment = start_payment(now, ids)
    payment.collect_events()
    payment.mark_pending("tx-1")
    assert payment.status is PaymentStatus.PENDING
    assert payment.collect_events() == []  # pending is not news to anyone
    captured_at = now + timedelta(seconds=5)
    payment.succeed(now=captured_at, ids=ids.new_id)
    assert payment.is_captured
    assert (payment.processed_at, payment.provider_transaction_id) == (captured_at, "tx-1")
    [succeeded] = payment.collect_events()
    assert isinstance(succeeded, PaymentSucceeded)
    assert succeeded.provider_transaction_id == "tx-1"


def test_a_payment_cannot_succeed_before_the_provider_accepted_it(
    now: datetime, ids: SequentialIdGenerator
) -> None:
    payment = start_payment(now, ids)
    with pytest.raises(InvalidTransition):
        payment.succeed(now=now, ids=ids.new_id)
    assert payment.status is PaymentStatus.INITIATED


@pytest.mark.parametrize("accepted_first", [False, True])
def test_a_declined_payment_fails_with_its_reason(
    now: datetime, ids: SequentialIdGenerator, accepted_first: bool
) -> None:
    payment = start_payment(now, ids)
    if accepted_first:
        payment.mark_pending(None)
    payment.collect_events()
    payment.fail("insufficient funds", now=now, ids=ids.new_id)
    assert (payment.status, payment.failure_reason) == (PaymentStatus.FAILED, "insufficient funds")
    assert [type(e) for e in payment.collect_events()] == [PaymentFailed]
    with pytest.raises(InvalidTransition):
        payment.succeed(now=now, ids=ids.new_id)


def test_only_captured_money_is_refunded_and_only_once(
    now: datetime, ids: SequentialIdGenerator
) -> None:
    payment = start_payment(now, ids)
    with pytest.raises(InvalidTransition):
        payment.refund("too early", now=now, ids=ids.new_id)
    payment.mark_pending(None)
    payment.succeed(now=now, ids=ids.new_id)
    payment.collect_events()
    payment.refund("event cancelled", now=now, ids=ids.new_id)
    assert (payment.status, payment.refunded_at, payment.refund_reason) == (
        PaymentStatus.REFUNDED,
        now,
        "event cancelled",
    )
    assert not payment.is_captured
    assert [type(e) for e in payment.collect_events()] == [PaymentRefunded]
    with pytest.raises(InvalidTransition):
        payment.refund("again", now=now, ids=ids.new_id)


# --- tickets ------------------------------------------------------------------------


def test_a_ticket_is_issued_live_with_its_qr_code(
    now: datetime, ids: SequentialIdGenerator
) -> None:
    ticket = issue_ticket(now, ids)
    assert ticket.is_live
    assert ticket.status is TicketStatus.ISSUED
    assert [type(e) for e in ticket.collect_events()] == [TicketIssued]


def test_a_short_qr_code_is_refused(now: datetime, ids: SequentialIdGenerator) -> None:
    with pytest.raises(ValidationError):
        issue_ticket(now, ids, qr_code="x" * 15)


def test_a_ticket_lets_one_person_in_once(now: datetime, ids: SequentialIdGenerator) -> None:
    ticket = issue_ticket(now, ids)
    ticket.collect_events()
    ticket.check_in(now=now, ids=ids.new_id)
    assert (ticket.status, ticket.used_at) == (TicketStatus.USED, now)
    assert [type(e) for e in ticket.collect_events()] == [TicketCheckedIn]
    with pytest.raises(AlreadyUsed):
        ticket.check_in(now=now + timedelta(minutes=1), ids=ids.new_id)
    assert ticket.used_at == now
    assert ticket.collect_events() == []


@pytest.mark.parametrize("used_first", [False, True])
def test_a_voided_ticket_admits_nobody(
    now: datetime, ids: SequentialIdGenerator, used_first: bool
) -> None:
    ticket = issue_ticket(now, ids)
    if used_first:
        ticket.check_in(now=now, ids=ids.new_id)
    ticket.collect_events()
    ticket.void(now=now, ids=ids.new_id)
    assert not ticket.is_live
    assert ticket.voided_at == now
    assert [type(e) for e in ticket.collect_events()] == [TicketVoidedEvent]
    with pytest.raises(TicketVoided):
        ticket.check_in(now=now, ids=ids.new_id)


def test_a_ticket_cannot_be_voided_twice(now: datetime, ids: SequentialIdGenerator) -> None:
    ticket = issue_ticket(now, ids)
    ticket.void(now=now, ids=ids.new_id)
    with pytest.raises(InvalidTransition):
        ticket.void(now=now, ids=ids.new_id)


def test_ticket_events_name_the_seat_and_the_buyer(
    now: datetime, ids: SequentialIdGenerator
) -> None:
    ticket = issue_ticket(now, ids)
    [issued] = ticket.collect_events()
    assert isinstance(issued, TicketIssued)
    assert (issued.ticket_id, issued.seat_id, issued.user_id) == (
        ticket.ticket_id,
        "A-1-1",
        ticket.user_id,
    )
