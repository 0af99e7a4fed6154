"""The audit of a sale: what storage says, held against the promises of the platform.

After a sale — and after any incident — an operator wants proof, not belief, that:

- no seat was sold twice (``seat_sold_twice``);
- every live ticket belongs to a completed order (``ticket_without_completed_order``) and
  every completed order has a live ticket for each of its seats
  (``completed_order_missing_tickets``);
- every captured payment ended as the tickets of the order it completed or as exactly
  one refund (``captured_payment_unsettled``; ``refunded_payment_with_live_tickets``
  when the money went back but the tickets stayed);
- no order is still open well past its expiry (``order_past_expiry``), no payment is
  still waiting for its provider well after its order closed
  (``payment_never_settled``);
- every stored event was published (``events_not_published``) and no message waits
  in the parked stream for an operator (``messages_parked``).

"Well past" is a grace given to the audit: a step the saga is taking right now is not
a problem. The report counts what the sale did (orders by status, seats sold, money
captured and refunded) and lists each problem with the ids to look at; it holds when
the list is empty.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal

import attrs

from openticket.application.ports.clock import Clock
from openticket.application.ports.ledger import (
    OrderRecord,
    ParkedMessages,
    PaymentRecord,
    SaleLedger,
    SessionBooks,
)
from openticket.domain.ordering import OrderStatus
from openticket.domain.payment import PaymentStatus
from openticket.domain.shared import OrderId, SessionId
from openticket.domain.ticketing import TicketStatus

DEFAULT_GRACE = timedelta(seconds=60)
"""How long a step may still be under way before the audit calls it a problem."""

_OPEN = frozenset({OrderStatus.CREATED, OrderStatus.PAYMENT_PENDING})
_WAITING = frozenset({PaymentStatus.INITIATED, PaymentStatus.PENDING})


@attrs.frozen(kw_only=True)
class AuditFinding:
    """One broken promise: which check, about what, and what storage says."""

    check: str
    subject: str
    """The id (order, payment, ticket, seat) to look at."""
    detail: str


@attrs.frozen(kw_only=True)
class AuditReport:
    """What a sale did and every promise it broke (none: the audit holds)."""

    session_id: SessionId
    audited_at: datetime
    grace_seconds: float
    orders: Mapping[str, int]
    """Orders by status."""
    payments: Mapping[str, int]
    """Payments by status."""
    seats_sold: int
    """Live tickets (issued or used)."""
    tickets_voided: int
    captured: Mapping[str, str]
    """Money that came in (succeeded and later refunded payments), by currency."""
    refunded: Mapping[str, str]
    """Money given back, by currency."""
    events_not_published: int
    messages_parked: int | None
    """None when the deployment has no NATS (nothing is parked without it)."""
    findings: tuple[AuditFinding, ...]

    @property
    def holds(self) -> bool:
        """Whether every promise holds."""
        return not self.findings

    @property
    def purchases(self) -> int:
        """Completed orders."""
        return self.orders.get(OrderStatus.COMPLETED.value, 0)


class SaleAuditor:
    """Audits a session from the stored books (``openticket audit``)."""

    def __init__(
        self, *, ledger: SaleLedger, clock: Clock, parked: ParkedMessages | None = None
    ) -> None:
        self._ledger = ledger
        self._clock = clock
        self._parked = parked

    async def audit(
        self, session_id: SessionId, *, grace: timedelta = DEFAULT_GRACE
    ) -> AuditReport:
        """Read the books of ``session_id`` and check every promise against them."""
        now = self._clock.now()
        books = await self._ledger.session_books(session_id)
        backlog = await self._ledger.unpublished_events(now - grace)
        parked = None if self._parked is None else await self._parked.parked()
        findings = [*check_books(books, now=now, grace=grace)]
        if backlog:
            findings.append(
                AuditFinding(
                    check="events_not_published",
                    subject="outbox",
                    detail=f"{backlog} events stored more than {_seconds(grace)} ago were never"
                    " published (is every process's outbox relay running?)",
                )
            )
        if parked:
            findings.append(
                AuditFinding(
                    check="messages_parked",
                    subject="PARKED",
                    detail=f"{parked} messages wait in the parked stream for an operator",
                )
            )
        return AuditReport(
            session_id=session_id,
            audited_at=now,
            grace_seconds=grace.total_seconds(),
            orders=dict(Counter(o.status.value for o in books.orders)),
            payments=dict(Counter(p.status.value for p in books.payments)),
            seats_sold=sum(1 for t in books.tickets if t.status is not TicketStatus.VOIDED),
            tickets_voided=sum(1 for t in books.tickets if t.status is TicketStatus.VOIDED),
            captured=_sums(p for p in books.payments if p.status in _CAPTURED),
            refunded=_sums(p for p in books.payments if p.status is PaymentStatus.REFUNDED),
            events_not_published=backlog,
            messages_parked=parked,
            findings=tuple(findings),
        )


_CAPTURED = frozenset({PaymentStatus.SUCCEEDED, PaymentStatus.REFUNDED})


def check_books(books: SessionBooks, *, now: datetime, grace: timedelta) -> list[AuditFinding]:
    """Every promise the stored books of one session break (a pure function)."""
    orders = {o.order_id: o for o in books.orders}
    live = [t for t in books.tickets if t.status is not TicketStatus.VOIDED]
    findings: list[AuditFinding] = []

    holders: defaultdict[str, list[str]] = defaultdict(list)
    tickets_of_seat: Counter[str] = Counter()
    orders_of_seat: Counter[str] = Counter()
    for ticket in live:
        tickets_of_seat[ticket.seat_id] += 1
        holders[ticket.seat_id].append(f"ticket {ticket.ticket_id} of order {ticket.order_id}")
    for order in books.orders:
        if order.status is OrderStatus.COMPLETED:
            for seat in order.seat_ids:
                orders_of_seat[seat] += 1
                holders[seat].append(f"order {order.order_id}")
    for seat_id in sorted(holders):
        if tickets_of_seat[seat_id] > 1 or orders_of_seat[seat_id] > 1:
            findings.append(
                AuditFinding(
                    check="seat_sold_twice",
                    subject=seat_id,
                    detail=f"{tickets_of_seat[seat_id]} live tickets, {orders_of_seat[seat_id]}"
                    " completed orders: " + ", ".join(sorted(holders[seat_id])),
                )
            )

    for ticket in live:
        owner = orders.get(ticket.order_id)
        if owner is None or owner.status is not OrderStatus.COMPLETED:
            findings.append(
                AuditFinding(
                    check="ticket_without_completed_order",
                    subject=str(ticket.ticket_id),
                    detail=f"live ticket for {ticket.seat_id} of order {ticket.order_id}, which is"
                    f" {'missing' if owner is None else owner.status.value}",
                )
            )
    ticketed: defaultdict[str, set[str]] = defaultdict(set)
    for ticket in live:
        ticketed[str(ticket.order_id)].add(ticket.seat_id)
    for order in books.orders:
        missing = set(order.seat_ids) - ticketed[str(order.order_id)]
        if order.status is OrderStatus.COMPLETED and missing:
            findings.append(
                AuditFinding(
                    check="completed_order_missing_tickets",
                    subject=str(order.order_id),
                    detail=f"completed, but no live ticket for {', '.join(sorted(missing))}",
                )
            )

    findings += _payment_findings(books.payments, orders, ticketed, now=now, grace=grace)
    for order in books.orders:
        if order.status in _OPEN and order.expires_at + grace < now:
            findings.append(
                AuditFinding(
                    check="order_past_expiry",
                    subject=str(order.order_id),
                    detail=f"still {order.status.value}, expired at {order.expires_at.isoformat()}",
                )
            )
    return findings


def _payment_findings(
    payments: Sequence[PaymentRecord],
    orders: Mapping[OrderId, OrderRecord],
    ticketed: Mapping[str, set[str]],
    *,
    now: datetime,
    grace: timedelta,
) -> list[AuditFinding]:
    findings: list[AuditFinding] = []
    for payment in payments:
        order = orders.get(payment.order_id)
        settled_at = payment.processed_at or payment.created_at
        settled_long_ago = settled_at + grace < now
        completed_by_it = (
            order is not None
            and order.status is OrderStatus.COMPLETED
            and order.payment_id == payment.payment_id
        )
        if payment.status is PaymentStatus.SUCCEEDED and not completed_by_it and settled_long_ago:
            state = "missing" if order is None else order.status.value
            findings.append(
                AuditFinding(
                    check="captured_payment_unsettled",
                    subject=str(payment.payment_id),
                    detail=f"{payment.amount.amount} {payment.amount.currency} captured by"
                    f" {payment.provider} at {settled_at.isoformat()} for order"
                    f" {payment.order_id} ({state}): neither its tickets nor a refund",
                )
            )
        if (
            payment.status is PaymentStatus.REFUNDED
            and ticketed.get(str(payment.order_id))
            and order is not None
            and order.payment_id == payment.payment_id
            and settled_long_ago
        ):
            findings.append(
                AuditFinding(
                    check="refunded_payment_with_live_tickets",
                    subject=str(payment.payment_id),
                    detail=f"refunded, but order {payment.order_id} ({order.status.value}) still"
                    " has live tickets",
                )
            )
        if (
            payment.status in _WAITING
            and (order is None or order.status not in _OPEN)
            and payment.created_at + grace < now
        ):
            findings.append(
                AuditFinding(
                    check="payment_never_settled",
                    subject=str(payment.payment_id),
                    detail=f"still {payment.status.value} at {payment.provider} since"
                    f" {payment.created_at.isoformat()}; its order is"
                    f" {'missing' if order is None else order.status.value}",
                )
            )
    return findings


def _sums(payments: Iterable[PaymentRecord]) -> dict[str, str]:
    totals: defaultdict[str, Decimal] = defaultdict(Decimal)
    for payment in payments:
        totals[payment.amount.currency] += payment.amount.amount
    return {currency: f"{amount:.2f}" for currency, amount in sorted(totals.items())}


def _seconds(span: timedelta) -> str:
    return f"{span.total_seconds():g} s"
