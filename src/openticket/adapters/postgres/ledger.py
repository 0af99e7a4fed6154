"""The books of a sale read from PostgreSQL: three SELECTs by session, one count."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from openticket.adapters.postgres.database import PostgresDatabase
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

_ORDERS = """
SELECT o.order_id, o.status, o.total_amount, o.currency, o.expires_at, o.payment_id,
       array_agg(i.seat_id ORDER BY i.position) AS seat_ids
  FROM orders o JOIN order_items i ON i.order_id = o.order_id
 WHERE o.session_id = %(session_id)s
 GROUP BY o.order_id
"""
_PAYMENTS = """
SELECT p.payment_id, p.order_id, p.provider, p.status, p.amount, p.currency, p.created_at,
       coalesce(p.refunded_at, p.processed_at) AS settled_at
  FROM payments p JOIN orders o ON o.order_id = p.order_id
 WHERE o.session_id = %(session_id)s
"""
_TICKETS = (
    "SELECT ticket_id, order_id, seat_id, status FROM all_tickets WHERE session_id = %(session_id)s"
)
_BACKLOG = (
    "SELECT count(*) FROM outbox WHERE published_at IS NULL AND stored_at < %(stored_before)s"
)


class PostgresSaleLedger:
    """``SaleLedger`` over the tables of a PostgreSQL database (reads only)."""

    def __init__(self, database: PostgresDatabase) -> None:
        self._database = database

    async def session_books(self, session_id: SessionId) -> SessionBooks:
        """Every order, payment and ticket of ``session_id``."""
        query = self._database.query
        session = {"session_id": session_id}
        orders: list[Any] = list(await query(_ORDERS, session))
        payments: list[Any] = list(await query(_PAYMENTS, session))
        tickets: list[Any] = list(await query(_TICKETS, session))
        return SessionBooks(
            session_id=session_id,
            orders=[
                OrderRecord(
                    order_id=OrderId(order_id),
                    status=OrderStatus(status),
                    seat_ids=tuple(SeatId(s) for s in seat_ids),
                    total=_money(amount, currency),
                    expires_at=expires_at,
                    payment_id=None if payment_id is None else PaymentId(payment_id),
                )
                for order_id, status, amount, currency, expires_at, payment_id, seat_ids in orders
            ],
            payments=[
                PaymentRecord(
                    payment_id=PaymentId(payment_id),
                    order_id=OrderId(order_id),
                    provider=provider,
                    status=PaymentStatus(status),
                    amount=_money(amount, currency),
                    created_at=created_at,
                    processed_at=settled_at,
                )
                for (
                    payment_id,
                    order_id,
                    provider,
                    status,
                    amount,
                    currency,
                    created_at,
                    settled_at,
                ) in payments
            ],
            tickets=[
                TicketRecord(
                    ticket_id=TicketId(ticket_id),
                    order_id=OrderId(order_id),
                    seat_id=SeatId(seat_id),
                    status=TicketStatus(status),
                )
                for ticket_id, order_id, seat_id, status in tickets
            ],
        )

    async def unpublished_events(self, stored_before: datetime) -> int:
        """Outbox rows stored before ``stored_before`` and never marked published."""
        ((count,),) = await self._database.query(_BACKLOG, {"stored_before": stored_before})
        return int(count)


def _money(amount: Decimal, currency: str) -> Money:
    return Money(amount, currency.strip())
