"""Ticketing context: one ticket per sold seat, checked in once, voided by a refund.

::

    issued ──► used
       │         │
       └► voided ◄┘
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import TypedDict
from uuid import UUID

import attrs

from openticket.domain.shared import (
    Aggregate,
    AreaId,
    DomainError,
    DomainEvent,
    IdFactory,
    InvalidTransition,
    Money,
    OrderId,
    SeatId,
    SessionId,
    TicketId,
    UserId,
    ValidationError,
)

MIN_QR_CODE_LENGTH = 16


class TicketStatus(StrEnum):
    """Where a ticket stands."""

    ISSUED = "issued"
    USED = "used"
    VOIDED = "voided"


class AlreadyUsed(DomainError):
    """The ticket was checked in before: nobody gets in twice on one ticket."""

    code = "already_used"


class TicketVoided(DomainError):
    """The ticket was refunded and no longer admits anyone."""

    code = "ticket_voided"


@attrs.frozen(kw_only=True)
class TicketEvent(DomainEvent):
    """Base of events about one ticket."""

    ticket_id: TicketId
    order_id: OrderId
    session_id: SessionId
    seat_id: SeatId
    user_id: UserId


@attrs.frozen(kw_only=True)
class TicketIssued(TicketEvent):
    """A ticket was issued for a sold seat."""


@attrs.frozen(kw_only=True)
class TicketCheckedIn(TicketEvent):
    """The ticket's holder was let in."""


@attrs.frozen(kw_only=True)
class TicketVoidedEvent(TicketEvent):
    """The ticket no longer admits anyone (refund)."""


@attrs.define(kw_only=True)
class Ticket(Aggregate):
    """The right of one person to one seat of one session, shown as a QR code."""

    ticket_id: TicketId
    order_id: OrderId
    session_id: SessionId
    area_id: AreaId
    seat_id: SeatId
    user_id: UserId
    price: Money
    qr_code: str
    status: TicketStatus = TicketStatus.ISSUED
    issued_at: datetime
    used_at: datetime | None = None
    voided_at: datetime | None = None

    @classmethod
    def issue(
        cls,
        *,
        ticket_id: TicketId,
        order_id: OrderId,
        session_id: SessionId,
        area_id: AreaId,
        seat_id: SeatId,
        user_id: UserId,
        price: Money,
        qr_code: str,
        now: datetime,
        ids: IdFactory,
    ) -> Ticket:
        """Issue a ticket; ``qr_code`` comes from an unguessable generator outside the domain."""
        if len(qr_code) < MIN_QR_CODE_LENGTH:
            raise ValidationError(f"a QR code needs at least {MIN_QR_CODE_LENGTH} characters")
        ticket = cls(
            ticket_id=ticket_id,
            order_id=order_id,
            session_id=session_id,
            area_id=area_id,
            seat_id=seat_id,
            user_id=user_id,
            price=price,
            qr_code=qr_code,
            issued_at=now,
        )
        ticket.record(TicketIssued(**ticket._fields(now, ids)))
        return ticket

    @property
    def is_live(self) -> bool:
        """Whether the ticket still stands for its seat (issued or used, not voided)."""
        return self.status is not TicketStatus.VOIDED

    def check_in(self, *, now: datetime, ids: IdFactory) -> None:
        """Let the holder in, once."""
        if self.status is TicketStatus.USED:
            raise AlreadyUsed(f"ticket {self.ticket_id} was used at {self.used_at}")
        if self.status is TicketStatus.VOIDED:
            raise TicketVoided(f"ticket {self.ticket_id} is void")
        self.status = TicketStatus.USED
        self.used_at = now
        self.record(TicketCheckedIn(**self._fields(now, ids)))

    def void(self, *, now: datetime, ids: IdFactory) -> None:
        """The ticket stops admitting anyone (its order was refunded)."""
        if self.status is TicketStatus.VOIDED:
            raise InvalidTransition("ticket", self.status.value, TicketStatus.VOIDED.value)
        self.status = TicketStatus.VOIDED
        self.voided_at = now
        self.record(TicketVoidedEvent(**self._fields(now, ids)))

    def _fields(self, now: datetime, ids: IdFactory) -> _TicketEventFields:
        return {
            "event_id": ids(),
            "occurred_at": now,
            "ticket_id": self.ticket_id,
            "order_id": self.order_id,
            "session_id": self.session_id,
            "seat_id": self.seat_id,
            "user_id": self.user_id,
        }


class _TicketEventFields(TypedDict):
    event_id: UUID
    occurred_at: datetime
    ticket_id: TicketId
    order_id: OrderId
    session_id: SessionId
    seat_id: SeatId
    user_id: UserId
