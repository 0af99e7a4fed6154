"""The sale's books as the audit reads them: what storage holds about one session.

An audit must see what is stored, not what a process believes: every order, payment
and ticket of a session, the events stored but never published, the messages parked
for an operator. Adapters read them in one pass each (PostgreSQL: plain SELECTs; in
memory: the committed rows).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

import attrs

from openticket.domain.ordering import OrderStatus
from openticket.domain.payment import PaymentStatus
from openticket.domain.shared import Money, OrderId, PaymentId, SeatId, SessionId, TicketId
from openticket.domain.ticketing import TicketStatus


@attrs.frozen(kw_only=True)
class OrderRecord:
    """An order as stored."""

    order_id: OrderId
    status: OrderStatus
    seat_ids: tuple[SeatId, ...]
    total: Money
    expires_at: datetime
    payment_id: PaymentId | None


@attrs.frozen(kw_only=True)
class PaymentRecord:
    """A payment as stored."""

    payment_id: PaymentId
    order_id: OrderId
    provider: str
    status: PaymentStatus
    amount: Money
    created_at: datetime
    processed_at: datetime | None
    """When the provider last settled it (succeeded, failed, refunded)."""


@attrs.frozen(kw_only=True)
class TicketRecord:
    """A ticket as stored, live (issued, used) or voided."""

    ticket_id: TicketId
    order_id: OrderId
    seat_id: SeatId
    status: TicketStatus


@attrs.frozen(kw_only=True)
class SessionBooks:
    """Everything stored about the sale of one session."""

    session_id: SessionId
    orders: Sequence[OrderRecord]
    payments: Sequence[PaymentRecord]
    """The payments of the session's orders."""
    tickets: Sequence[TicketRecord]
    """Live and voided tickets of the session."""


class SaleLedger(Protocol):
    """Reads the stored books of a sale (``PortError`` family when storage fails)."""

    async def session_books(self, session_id: SessionId) -> SessionBooks:
        """Every order, payment and ticket of ``session_id`` (empty when there are none)."""
        ...

    async def unpublished_events(self, stored_before: datetime) -> int:
        """How many events were stored before ``stored_before`` and never published."""
        ...


class ParkedMessages(Protocol):
    """Messages consumers gave up on, waiting for an operator (the ``PARKED`` stream)."""

    async def parked(self) -> int:
        """How many messages are parked."""
        ...
