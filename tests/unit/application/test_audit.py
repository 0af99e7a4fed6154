"""The audit's checks over hand-made books: each promise, kept and broken."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import uuid4

import attrs
import pytest

from openticket.adapters.memory import FakeClock
from openticket.application.audit import SaleAuditor, check_books
from openticket.application.ports.ledger import (
    OrderRecord,
    PaymentRecord,
    SessionBooks,
    TicketRecord,
)
from openticket.domain.ordering import OrderStatus
from openticket.domain.payment import PaymentStatus
from openticket.domain.shared import Money, OrderId, PaymentId, SeatId, SessionId, TicketId
from openticket.domain.ticketing import TicketStatus

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
GRACE = timedelta(seconds=60)
LONG_AGO = NOW - timedelta(minutes=10)
PRICE = Money(Decimal("1200.00"), "TWD")


def order(status: OrderStatus, *seats: str, paid_by: PaymentId | None = None) -> OrderRecord:
    return OrderRecord(
        order_id=OrderId(uuid4()),
        status=status,
        seat_ids=tuple(SeatId(s) for s in seats),
        total=Money(PRICE.amount * len(seats), "TWD"),
        expires_at=LONG_AGO,
        payment_id=paid_by,
    )


def payment(
    of: OrderRecord, status: PaymentStatus, payment_id: PaymentId | None = None
) -> PaymentRecord:
    return PaymentRecord(
        payment_id=payment_id or PaymentId(uuid4()),
        order_id=of.order_id,
        provider="mock",
        status=status,
        amount=of.total,
        created_at=LONG_AGO,
        processed_at=LONG_AGO,
    )


def tickets(of: OrderRecord, status: TicketStatus = TicketStatus.ISSUED) -> list[TicketRecord]:
    return [
        TicketRecord(ticket_id=TicketId(uuid4()), order_id=of.order_id, seat_id=s, status=status)
        for s in of.seat_ids
    ]


def purchase(*seats: str) -> tuple[OrderRecord, PaymentRecord, list[TicketRecord]]:
    paid_by = PaymentId(uuid4())
    bought = order(OrderStatus.COMPLETED, *seats, paid_by=paid_by)
    return bought, payment(bought, PaymentStatus.SUCCEEDED, paid_by), tickets(bought)


def books(
    orders: list[OrderRecord], payments: list[PaymentRecord], issued: list[TicketRecord]
) -> SessionBooks:
    return SessionBooks(
        session_id=SessionId(uuid4()), orders=orders, payments=payments, tickets=issued
    )


def checks(session: SessionBooks) -> list[str]:
    return [f.check for f in check_books(session, now=NOW, grace=GRACE)]


def test_a_clean_sale_breaks_no_promise() -> None:
    bought, paid, issued = purchase("A-1-1", "A-1-2")
    late = order(OrderStatus.EXPIRED, "A-1-3")  # a late payer, refunded once
    declined = order(OrderStatus.FAILED, "A-1-4")
    paid_back = PaymentId(uuid4())
    refunded = order(OrderStatus.REFUNDED, "A-1-5", paid_by=paid_back)
    session = books(
        [bought, late, declined, refunded],
        [
            paid,
            payment(late, PaymentStatus.REFUNDED),
            payment(declined, PaymentStatus.FAILED),
            payment(refunded, PaymentStatus.REFUNDED, paid_back),
        ],
        [*issued, *tickets(refunded, TicketStatus.VOIDED)],
    )
    assert checks(session) == []


def test_a_seat_with_two_live_tickets_is_sold_twice() -> None:
    first, first_pay, first_tickets = purchase("A-1-1")
    second, second_pay, second_tickets = purchase("A-1-1")
    assert checks(
        books([first, second], [first_pay, second_pay], [*first_tickets, *second_tickets])
    ) == ["seat_sold_twice"]


def test_a_paid_order_that_expired_without_tickets_or_refund_is_money_kept() -> None:
    """What issue 14 saw after Redis restarted: paid, expired, nothing given back."""
    lost = order(OrderStatus.EXPIRED, "A-1-1")
    paid = payment(lost, PaymentStatus.SUCCEEDED)
    found = check_books(books([lost], [paid], []), now=NOW, grace=GRACE)
    assert [f.check for f in found] == ["captured_payment_unsettled"]
    assert found[0].subject == str(paid.payment_id)
    assert str(lost.order_id) in found[0].detail


def test_a_payment_just_captured_is_given_the_grace_to_become_tickets() -> None:
    pending = order(OrderStatus.PAYMENT_PENDING, "A-1-1")
    pending = OrderRecord(**{**attrs_dict(pending), "expires_at": NOW + timedelta(minutes=1)})
    paid = PaymentRecord(
        **{**attrs_dict(payment(pending, PaymentStatus.SUCCEEDED)), "processed_at": NOW}
    )
    assert checks(books([pending], [paid], [])) == []
    later = NOW + GRACE + timedelta(seconds=1)
    assert [f.check for f in check_books(books([pending], [paid], []), now=later, grace=GRACE)] == [
        "captured_payment_unsettled"
    ]


def test_tickets_must_belong_to_completed_orders_and_cover_them() -> None:
    cancelled = order(OrderStatus.CANCELLED, "A-1-1")
    half, half_pay, half_tickets = purchase("A-1-2", "A-1-3")
    assert sorted(
        checks(books([cancelled, half], [half_pay], [*tickets(cancelled), half_tickets[0]]))
    ) == [
        "completed_order_missing_tickets",
        "ticket_without_completed_order",
    ]


def test_money_given_back_while_the_tickets_stay_is_a_problem() -> None:
    bought, paid, issued = purchase("A-1-1")
    refunded = payment(bought, PaymentStatus.REFUNDED, paid.payment_id)
    assert checks(books([bought], [refunded], issued)) == ["refunded_payment_with_live_tickets"]


def test_orders_open_and_payments_waiting_long_after_expiry_are_stuck() -> None:
    stuck = order(OrderStatus.PAYMENT_PENDING, "A-1-1")
    closed = order(OrderStatus.EXPIRED, "A-1-2")
    assert sorted(checks(books([stuck, closed], [payment(closed, PaymentStatus.PENDING)], []))) == [
        "order_past_expiry",
        "payment_never_settled",
    ]


def attrs_dict(record: OrderRecord | PaymentRecord) -> dict[str, object]:
    return attrs.asdict(record, recurse=False)


class Books:
    def __init__(self, session: SessionBooks, backlog: int = 0) -> None:
        self.session, self.backlog = session, backlog

    async def session_books(self, session_id: SessionId) -> SessionBooks:
        return self.session

    async def unpublished_events(self, stored_before: datetime) -> int:
        return self.backlog


class Parked:
    def __init__(self, count: int) -> None:
        self.count = count

    async def parked(self) -> int:
        return self.count


async def test_the_report_counts_the_sale_and_names_backlog_and_parked_messages() -> None:
    bought, paid, issued = purchase("A-1-1", "A-1-2")
    auditor = SaleAuditor(
        ledger=Books(books([bought], [paid], issued), backlog=3),
        clock=FakeClock(NOW),
        parked=Parked(2),
    )
    report = await auditor.audit(SessionId(uuid4()))
    assert (report.purchases, report.seats_sold, report.captured) == (1, 2, {"TWD": "2400.00"})
    assert [f.check for f in report.findings] == ["events_not_published", "messages_parked"]
    assert not report.holds
    clean = SaleAuditor(ledger=Books(books([bought], [paid], issued)), clock=FakeClock(NOW))
    assert (await clean.audit(SessionId(uuid4()))).holds


@pytest.mark.parametrize("grace", [timedelta(0), timedelta(hours=1)])
def test_the_grace_decides_what_is_still_under_way(grace: timedelta) -> None:
    stuck = order(OrderStatus.CREATED, "A-1-1")
    found = check_books(books([stuck], [], []), now=NOW, grace=grace)
    assert bool(found) is (grace == timedelta(0))
