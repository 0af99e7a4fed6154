"""The books of a sale read from a ``MemoryDatabase``'s committed rows."""

from __future__ import annotations

from datetime import datetime

from openticket.adapters.memory.database import MemoryDatabase
from openticket.application.ports.ledger import (
    OrderRecord,
    PaymentRecord,
    SessionBooks,
    TicketRecord,
)
from openticket.domain.shared import SessionId


class MemorySaleLedger:
    """``SaleLedger`` over the committed rows of one in-process database."""

    def __init__(self, database: MemoryDatabase) -> None:
        self._database = database

    async def session_books(self, session_id: SessionId) -> SessionBooks:
        """Every order, payment and ticket of ``session_id``."""
        db = self._database
        orders = [o for o in db.orders.rows.values() if o.session_id == session_id]
        ids = {o.order_id for o in orders}
        return SessionBooks(
            session_id=session_id,
            orders=[
                OrderRecord(
                    order_id=o.order_id,
                    status=o.status,
                    seat_ids=o.seat_ids,
                    total=o.total,
                    expires_at=o.expires_at,
                    payment_id=o.payment_id,
                )
                for o in orders
            ],
            payments=[
                PaymentRecord(
                    payment_id=p.payment_id,
                    order_id=p.order_id,
                    provider=p.provider,
                    status=p.status,
                    amount=p.amount,
                    created_at=p.created_at,
                    processed_at=p.refunded_at or p.processed_at,
                )
                for p in db.payments.rows.values()
                if p.order_id in ids
            ],
            tickets=[
                TicketRecord(
                    ticket_id=t.ticket_id, order_id=t.order_id, seat_id=t.seat_id, status=t.status
                )
                for t in db.tickets.rows.values()
                if t.session_id == session_id
            ],
        )

    async def unpublished_events(self, stored_before: datetime) -> int:
        """None: in one process a commit hands its events to the bus before it returns."""
        return 0
