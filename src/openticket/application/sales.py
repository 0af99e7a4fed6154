"""A session's sale as its organizer watches it: the stock, the queue, the pace of orders.

``SalesReader.sales`` answers one reading (``SalesFigures``) to the organizer of the
session's event or an admin. The stock is the seat board's count now; the queue depth
the waiting room's length (0 for a session sold without one); the pace the orders
placed in the last minute, counted by ``OrderPace`` from the ``OrderCreated`` events
this process publishes. No store keeps orders by session and time, so the pace is what
this process saw: every order in the embedded profile, this API process's share where
several serve one sale behind a load balancer.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Protocol
from uuid import UUID

import attrs

from openticket.application.access import Requester
from openticket.application.catalog.service import CatalogService
from openticket.application.errors import NotFound
from openticket.application.seating.board import SeatBoard
from openticket.domain.identity import Role
from openticket.domain.ordering import OrderCreated
from openticket.domain.shared import SessionId

PACE_WINDOW = timedelta(seconds=60)
"""The orders of this last stretch of time make the pace."""


@attrs.frozen
class SalesFigures:
    """One reading of a session's sale, taken ``at``.

    ``sellable``, ``held`` and ``sold`` count the priced seats (the seat board's
    ``Stock``); ``queue_depth`` the buyers waiting to be let in; ``orders_last_minute``
    the orders placed in the minute up to ``at`` (see ``OrderPace``).
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


class OrderPace:
    """Orders placed per session in a sliding window, from the events this process sees.

    Subscribe ``placed`` to ``OrderCreated``. An event delivered twice counts once;
    what is older than the window is forgotten as new orders come and on every read,
    so a session keeps at most one window of orders in memory.
    """

    def __init__(self, window: timedelta = PACE_WINDOW) -> None:
        self.window = window
        self._placed: dict[SessionId, dict[UUID, datetime]] = {}

    async def placed(self, event: OrderCreated) -> None:
        """An order was placed (the bus's handler of ``OrderCreated``)."""
        orders = self._placed.setdefault(event.session_id, {})
        orders[event.event_id] = event.occurred_at
        self._forget_before(event.session_id, event.occurred_at - self.window)

    def count(self, session_id: SessionId, at: datetime) -> int:
        """The orders of the session placed in the window that ends at ``at``."""
        since = at - self.window
        self._forget_before(session_id, since)
        orders = self._placed.get(session_id, {})
        return sum(1 for placed_at in orders.values() if since < placed_at <= at)

    def _forget_before(self, session_id: SessionId, since: datetime) -> None:
        orders = self._placed.get(session_id)
        if orders is None:
            return
        while orders:  # placed in about the order they came: the oldest first
            event_id, placed_at = next(iter(orders.items()))
            if placed_at > since:
                break
            del orders[event_id]
        if not orders:
            del self._placed[session_id]


class SalesReader:
    """Reads a session's sale for its organizer: ``sales``."""

    def __init__(
        self,
        *,
        catalog: CatalogService,
        board: SeatBoard,
        pace: OrderPace,
        queue: QueueDepth | None = None,
    ) -> None:
        self._catalog = catalog
        self._board = board
        self._pace = pace
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
        return SalesFigures(
            session_id=session_id,
            sellable=stock.sellable,
            held=stock.held,
            sold=stock.sold,
            queue_depth=depth,
            orders_last_minute=self._pace.count(session_id, at),
            at=at,
        )
