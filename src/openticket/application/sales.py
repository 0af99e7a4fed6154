"""A session's sale as its organizer watches it: the stock, the queue, the pace of orders.

``SalesReader.sales`` answers one reading (``SalesFigures``) to the organizer of the
session's event or an admin. The stock is the seat board's count now; the queue depth
the waiting room's length (0 for a session sold without one); the pace the orders
placed in the last minute, counted in the order store (by session and creation time),
so every API process answers the same whichever placed them.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Protocol

import attrs

from openticket.application.access import Requester
from openticket.application.catalog.service import CatalogService
from openticket.application.errors import NotFound
from openticket.application.seating.board import SeatBoard
from openticket.application.transactions import Transactions
from openticket.domain.identity import Role
from openticket.domain.shared import SessionId

PACE_WINDOW = timedelta(seconds=60)
"""The orders placed in this last stretch of time make the pace."""


@attrs.frozen
class SalesFigures:
    """One reading of a session's sale, taken ``at``.

    ``sellable``, ``held`` and ``sold`` count the priced seats (the seat board's
    ``Stock``); ``queue_depth`` the buyers waiting to be let in; ``orders_last_minute``
    the orders placed in the minute up to ``at``, whatever became of them since.
    """

    session_id: SessionId
    sellable: int
    held: int
    sold: int
    queue_depth: int
    orders_last_minute: int
    at: datetime


class QueueDepth(Protocol):
    """Where the buyers waiting in a session's queue are counted (the waiting room)."""

    async def waiting(self, session_id: SessionId) -> int:
        """How many buyers wait in the session's queue now (admitted ones not counted)."""
        ...


class SalesReader:
    """Reads a session's sale for its organizer: ``sales``."""

    def __init__(
        self,
        *,
        catalog: CatalogService,
        board: SeatBoard,
        transactions: Transactions,
        queue: QueueDepth | None = None,
    ) -> None:
        self._catalog = catalog
        self._board = board
        self._tx = transactions
        self._queue = queue

    async def sales(self, by: Requester, session_id: SessionId, at: datetime) -> SalesFigures:
        """The session's stock, queue depth and pace of orders at ``at`` (now).

        Organizers of the session's event and admins only: ``Forbidden`` for a caller
        who is neither organizer nor admin, ``NotFound`` for another organizer's
        session (as for one that does not exist).
        """
        by.require(Role.ORGANIZER)
        context = await self._catalog.sale_context(session_id)
        if not (by.is_admin or context.event.is_managed_by(by.user_id)):
            raise NotFound(f"no session {session_id} of yours")
        stock = await self._board.stock(session_id)
        depth = 0
        if context.session.queue_enabled and self._queue is not None:
            depth = await self._queue.waiting(session_id)
        async with self._tx.unit() as uow:
            placed = await uow.orders.placed_since(session_id, at - PACE_WINDOW)
        return SalesFigures(
            session_id=session_id,
            sellable=stock.sellable,
            held=stock.held,
            sold=stock.sold,
            queue_depth=depth,
            orders_last_minute=placed,
            at=at,
        )
