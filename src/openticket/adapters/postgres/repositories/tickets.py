"""Tickets in PostgreSQL: live ones in ``tickets``, voided ones in ``voided_tickets``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final, LiteralString

import attrs

from openticket.adapters.paging import decode_cursor
from openticket.adapters.postgres.executor import Executor, Row
from openticket.adapters.postgres.repositories.shared import (
    Table,
    checked_limit,
    page,
    storable,
    versioned,
)
from openticket.application.ports.errors import ConcurrencyError, DuplicateError
from openticket.application.ports.repositories import DEFAULT_PAGE_SIZE, Page
from openticket.domain.shared import AreaId, Money, OrderId, SeatId, SessionId, TicketId, UserId
from openticket.domain.ticketing import Ticket, TicketStatus

# SQL text is built here only from the tables' own column and table names; every value
# is a bound parameter.

TICKETS: Final = Table(
    "tickets",
    (
        "ticket_id",
        "order_id",
        "session_id",
        "area_id",
        "seat_id",
        "user_id",
        "price",
        "currency",
        "qr_code",
        "status",
        "issued_at",
        "used_at",
        "voided_at",
        "version",
    ),
)
VOIDED_TICKETS: Final = attrs.evolve(TICKETS, name="voided_tickets")
ALL_TICKETS: Final = attrs.evolve(TICKETS, name="all_tickets")
"""The view of both."""

_INSERT_LIVE: Final[LiteralString] = versioned(
    "INSERT INTO tickets (" + TICKETS.names() + ", seq)"
    " SELECT " + TICKETS.placeholders() + ", nextval('tickets_seq_seq')"
    " WHERE NOT EXISTS (SELECT 1 FROM voided_tickets WHERE ticket_id = %(ticket_id)s)"
)
"""A live ticket, unless a voided one has its id (then it fails: ``ConcurrencyError``)."""
_INSERT_VOIDED: Final[LiteralString] = (
    "INSERT INTO voided_tickets (" + TICKETS.names() + ", seq)"
    " SELECT " + TICKETS.placeholders() + ", nextval('tickets_seq_seq')"
    " WHERE NOT EXISTS (SELECT 1 FROM tickets WHERE ticket_id = %(ticket_id)s)"
)
_UPDATE_LIVE: Final[LiteralString] = TICKETS.update("status", "used_at", "voided_at")
_VOID: Final[LiteralString] = (
    "WITH gone AS (DELETE FROM tickets WHERE ticket_id = %(ticket_id)s"
    " AND version = %(expected)s RETURNING seq)"
    " INSERT INTO voided_tickets (" + TICKETS.names() + ", seq)"
    " SELECT " + TICKETS.placeholders() + ", gone.seq FROM gone RETURNING 1"
)
"""A live ticket at the version loaded moved to ``voided_tickets``, its ``seq`` kept."""
_UPDATE_VOIDED: Final[LiteralString] = VOIDED_TICKETS.update("used_at", "voided_at")

_BY_ID: Final[LiteralString] = ALL_TICKETS.select("seq") + " WHERE ticket_id = %(ticket_id)s"
_BY_QR_CODE: Final[LiteralString] = ALL_TICKETS.select("seq") + " WHERE qr_code = %(qr_code)s"
_OF_USER_AFTER: Final[LiteralString] = (
    ALL_TICKETS.select("seq")
    + " WHERE user_id = %(user_id)s AND seq > %(after)s ORDER BY seq LIMIT %(limit)s"
)
_OF_ORDER: Final[LiteralString] = (
    ALL_TICKETS.select("seq") + " WHERE order_id = %(order_id)s ORDER BY seq"
)
_SOLD: Final[LiteralString] = (
    "SELECT seat_id, order_id FROM tickets WHERE session_id = %(session_id)s"
)
_SOLD_IN_AREA: Final[LiteralString] = _SOLD + " AND area_id = %(area_id)s"


def _ticket(row: Row) -> Ticket:
    return Ticket(
        ticket_id=TicketId(row.ticket_id),
        order_id=OrderId(row.order_id),
        session_id=SessionId(row.session_id),
        area_id=AreaId(row.area_id),
        seat_id=SeatId(row.seat_id),
        user_id=UserId(row.user_id),
        price=Money(row.price, row.currency),
        qr_code=row.qr_code,
        status=TicketStatus(row.status),
        issued_at=row.issued_at,
        used_at=row.used_at,
        voided_at=row.voided_at,
        version=row.version,
    )


def _ticket_params(ticket: Ticket) -> dict[str, Any]:
    return {
        "ticket_id": ticket.ticket_id,
        "order_id": ticket.order_id,
        "session_id": ticket.session_id,
        "area_id": ticket.area_id,
        "seat_id": ticket.seat_id,
        "user_id": ticket.user_id,
        "price": ticket.price.amount,
        "currency": ticket.price.currency,
        "qr_code": ticket.qr_code,
        "status": ticket.status.value,
        "issued_at": ticket.issued_at,
        "used_at": ticket.used_at,
        "voided_at": ticket.voided_at,
    }


class PostgresTicketRepository:
    """Tickets in PostgreSQL.

    Live tickets are in ``tickets``, whose ``UNIQUE(session_id, seat_id)`` refuses a
    second ticket for a seat (``SeatAlreadyTicketed``); voiding a ticket moves it to
    ``voided_tickets``, which frees the seat for a new sale.
    """

    def __init__(self, uow: Executor) -> None:
        self._uow = uow

    async def add(self, ticket: Ticket) -> None:
        """Store a new ticket; the seat's unique key is the final double-sale fence.

        A live ticket travels with the unit's next statement or its commit, which
        raises ``SeatAlreadyTicketed`` when the seat has a live ticket, ``DuplicateError``
        when a live ticket has its id, and ``ConcurrencyError`` when a voided one has
        (ids are random: the same ticket stored twice).
        """
        version = self._uow.version_to_add(TICKETS.name, ticket.ticket_id, ticket)
        params = {**_ticket_params(ticket), "version": version}
        if ticket.is_live:
            self._uow.defer(_INSERT_LIVE, params)
        else:
            touched = await self._uow.write(_INSERT_VOIDED, params)
            if touched != 1:
                raise DuplicateError(f"Ticket {ticket.ticket_id} exists already")
        self._uow.wrote(TICKETS.name, ticket.ticket_id, ticket, 0, version)

    async def get(self, ticket_id: TicketId) -> Ticket | None:
        """The ticket with this id, if any (voided ones too)."""
        row = await self._uow.fetch_one(_BY_ID, {"ticket_id": ticket_id})
        return None if row is None else _ticket(row)

    async def save(self, ticket: Ticket) -> None:
        """Store changes to a loaded ticket; a voided one moves to ``voided_tickets``."""
        expected, version = self._uow.versions_to_save(TICKETS.name, ticket.ticket_id, ticket)
        params = {**_ticket_params(ticket), "expected": expected, "version": version}
        if ticket.is_live:
            touched = await self._uow.write(_UPDATE_LIVE, params)
        else:
            moved = await self._uow.write_returning(_VOID, params)
            touched = 1 if moved is not None else 0
            if not touched:
                touched = await self._uow.write(_UPDATE_VOIDED, params)
        if touched != 1:
            raise ConcurrencyError(
                f"Ticket {ticket.ticket_id} changed meanwhile or was never stored"
            )
        self._uow.wrote(TICKETS.name, ticket.ticket_id, ticket, ticket.version, version)

    async def get_by_qr_code(self, qr_code: str) -> Ticket | None:
        """The ticket showing this QR code, if any."""
        if not storable(qr_code):
            return None
        row = await self._uow.fetch_one(_BY_QR_CODE, {"qr_code": qr_code})
        return None if row is None else _ticket(row)

    async def list_for_user(
        self, user_id: UserId, *, limit: int = DEFAULT_PAGE_SIZE, cursor: str | None = None
    ) -> Page[Ticket]:
        """A user's tickets (voided ones too), oldest first."""
        rows = await self._uow.fetch_all(
            _OF_USER_AFTER,
            {"user_id": user_id, "after": decode_cursor(cursor), "limit": checked_limit(limit) + 1},
        )
        return page(rows, limit, _ticket)

    async def list_for_order(self, order_id: OrderId) -> Sequence[Ticket]:
        """The tickets of one order."""
        rows = await self._uow.fetch_all(_OF_ORDER, {"order_id": order_id})
        return [_ticket(row) for row in rows]

    async def sold_seats(
        self, session_id: SessionId, area_id: AreaId | None = None
    ) -> Mapping[SeatId, OrderId]:
        """Seats with a live ticket in a session (optionally one area), and their orders."""
        if area_id is None:
            rows = await self._uow.fetch_all(_SOLD, {"session_id": session_id})
        else:
            rows = await self._uow.fetch_all(
                _SOLD_IN_AREA, {"session_id": session_id, "area_id": area_id}
            )
        return {SeatId(row.seat_id): OrderId(row.order_id) for row in rows}
