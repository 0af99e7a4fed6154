"""Ticketing use cases: a buyer's tickets, and check-in at the door."""

from __future__ import annotations

from openticket.application.access import Requester
from openticket.application.errors import NotFound
from openticket.application.ports.clock import Clock, IdGenerator
from openticket.application.ports.repositories import DEFAULT_PAGE_SIZE, Page
from openticket.application.ports.unit_of_work import UnitOfWork
from openticket.application.transactions import Transactions
from openticket.domain.identity import Role
from openticket.domain.shared import TicketId
from openticket.domain.ticketing import Ticket


class TicketingService:
    """Tickets as their holders and the door staff see them."""

    def __init__(self, *, transactions: Transactions, clock: Clock, ids: IdGenerator) -> None:
        self._tx = transactions
        self._clock = clock
        self._ids = ids

    async def list_tickets(
        self, by: Requester, *, limit: int = DEFAULT_PAGE_SIZE, cursor: str | None = None
    ) -> Page[Ticket]:
        """The caller's tickets (voided ones too), oldest first."""
        async with self._tx.unit() as uow:
            return await uow.tickets.list_for_user(by.user_id, limit=limit, cursor=cursor)

    async def get_ticket(self, by: Requester, ticket_id: TicketId) -> Ticket:
        """A ticket of the caller's (admins: anyone's); ``NotFound`` otherwise."""
        async with self._tx.unit() as uow:
            ticket = await uow.tickets.get(ticket_id)
        if ticket is None or not (by.is_admin or ticket.user_id == by.user_id):
            raise NotFound(f"no ticket {ticket_id} of yours")
        return ticket

    async def check_in(self, by: Requester, qr_code: str) -> Ticket:
        """Let a ticket's holder in, once (staff and admins).

        Raises ``NotFound`` for an unknown code, ``AlreadyUsed`` the second time and
        ``TicketVoided`` for a refunded ticket.
        """
        by.require(Role.STAFF)

        async def check(uow: UnitOfWork) -> Ticket:
            ticket = await uow.tickets.get_by_qr_code(qr_code)
            if ticket is None:
                raise NotFound("no ticket with this code")
            ticket.check_in(now=self._clock.now(), ids=self._ids.new_id)
            await uow.tickets.save(ticket)
            return ticket

        return await self._tx.run(check)
