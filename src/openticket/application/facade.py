"""``OpenTicket``: the one object an embedding application talks to.

Build it with ``openticket.bootstrap()`` (in-memory adapters, mock payments) and use
it as an async context manager: entering starts the partition actors and the expiry
sweeper, leaving stops them. Every method is a use case; ``by`` says who asks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from types import TracebackType
from typing import Self

import attrs
import structlog

from openticket.application.access import Requester
from openticket.application.catalog.service import CatalogService, EventDetails
from openticket.application.commands import (
    AddPriceCategory,
    CancelOrder,
    CheckIn,
    CreateEvent,
    CreateSession,
    CreateVenue,
    HandleWebhook,
    PlaceOrder,
    RefundOrder,
    ReturnFromProvider,
    StartPayment,
)
from openticket.application.gate.waiting_room import Client, WaitingRoom
from openticket.application.messagebus import MessageBus
from openticket.application.notifications import LiveNotifications
from openticket.application.ordering.service import OrderingService
from openticket.application.payments.service import PaymentService, StartedPayment
from openticket.application.ports.lifecycle import Component, HealthCheck, stop_task
from openticket.application.ports.messaging import Notifier
from openticket.application.ports.repositories import DEFAULT_PAGE_SIZE, Page
from openticket.application.roles import EventRole
from openticket.application.saga import PurchaseSaga
from openticket.application.sales import SalesFigures, SalesReader
from openticket.application.seating.api import Seating
from openticket.application.seating.board import SeatBoard, SeatView
from openticket.application.ticketing.service import TicketingService
from openticket.domain.catalog import Event, PriceCategory, Session
from openticket.domain.ordering import Order
from openticket.domain.payment import Payment
from openticket.domain.shared import (
    EventId,
    Money,
    OrderId,
    SessionId,
    TicketId,
    VenueId,
)
from openticket.domain.ticketing import Ticket
from openticket.domain.venue import SeatMap, Venue

READINESS_TIMEOUT = 1.0
"""Seconds a readiness probe waits for one dependency before calling it down."""

_log = structlog.get_logger("openticket.sweeper")


@attrs.frozen
class SweepReport:
    """What one pass of the expiry sweeper did."""

    orders_expired: int
    payments_reconciled: int
    handler_retries: int


class OpenTicket:
    """Every use case of the platform behind one async API.

    A facade: it holds the services the composition root (the container) built and
    wired, starts and stops them, and answers each use case by one call. What changes
    state goes through the command bus (the catalog's writes, ``place_order``, ``pay``,
    ``cancel_order``, ``refund_order``, ``check_in``, a provider's return and webhook:
    one handler each, see
    :mod:`~openticket.application.handlers`); what only reads calls its service.
    """

    def __init__(
        self,
        *,
        catalog: CatalogService,
        seating: Seating,
        ordering: OrderingService,
        payments: PaymentService,
        ticketing: TicketingService,
        saga: PurchaseSaga,
        notifications: LiveNotifications,
        notifier: Notifier,
        bus: MessageBus,
        roles: Sequence[EventRole] = (),
        board: SeatBoard,
        sales: SalesReader,
        gate: WaitingRoom | None = None,
        sweep_interval: timedelta = timedelta(seconds=1),
        components: Sequence[Component] = (),
        health_checks: Mapping[str, HealthCheck] | None = None,
    ) -> None:
        self.catalog = catalog
        self.seating = seating
        self.ordering = ordering
        self.payments = payments
        self.ticketing = ticketing
        self.saga = saga
        self.notifications = notifications
        self.notifier = notifier
        self.bus = bus
        self.roles = tuple(roles)
        """The saga's roles, which workers run as durable consumers."""
        self.board = board
        """Seats of a session with their statuses, and its stock."""
        self.gate = gate
        """The waiting rooms of sessions sold through a queue (``None``: no waiting room)."""
        self.sales_reader = sales
        """A session's sale as its organizer watches it."""
        self._sweep_interval = sweep_interval
        self._components = tuple(components)
        self._health_checks = dict(health_checks or {})
        self._sweeper: asyncio.Task[None] | None = None
        self._admitter: asyncio.Task[None] | None = None

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self, *, sweeper: bool = True) -> None:
        """Start the adapters' components, the partition actors and the expiry sweeper.

        ``sweeper=False`` leaves the sweeper and the waiting room's admitter out (tests
        and benchmarks sweep and admit by hand).
        """
        for component in self._components:
            await component.start()
        await self.seating.start()
        if sweeper and self._sweeper is None:
            self._sweeper = asyncio.create_task(self._sweep_forever(), name="expiry-sweeper")
        if sweeper and self.gate is not None and self._admitter is None:
            self._admitter = asyncio.create_task(self.gate.run(), name="waiting-room-admitter")

    async def stop(self) -> None:
        """Stop the sweeper and the actors; events already decided are still published."""
        sweeper, self._sweeper = self._sweeper, None
        admitter, self._admitter = self._admitter, None
        await stop_task(sweeper)
        await stop_task(admitter)
        if admitter is not None and self.gate is not None:
            await self.gate.stop_admitting()
        await self.seating.stop()
        for component in reversed(self._components):
            await component.stop()

    async def readiness(self) -> dict[str, str]:
        """``ok`` or ``down`` for the partition actors and each dependency (storage...).

        The dependencies are asked at once, each for at most ``READINESS_TIMEOUT``
        seconds: a server that hangs (a cut connection, a full pool) reads ``down``
        in bounded time instead of holding the probe until its own timeout.
        """

        async def ask(check: HealthCheck) -> str:
            try:
                healthy = await asyncio.wait_for(check(), READINESS_TIMEOUT)
            except Exception:  # a check that raises or hangs says "down", not 500
                healthy = False
            return "ok" if healthy else "down"

        names = list(self._health_checks)
        answers = await asyncio.gather(*(ask(self._health_checks[name]) for name in names))
        seating = "ok" if self.seating.ready() else "down"
        return {"seating": seating, **dict(zip(names, answers, strict=True))}

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def sweep(self) -> SweepReport:
        """Run the housekeeping of a sale once.

        Expires due holds and orders, asks providers about payments still waiting on
        them, and retries failed event handlers whose time came.
        """
        await self.seating.expire_due()
        expired = await self.ordering.expire_due()
        reconciled = await self.payments.reconcile_unsettled()
        retried = await self.bus.retry_due()
        await self.seating.flush_events()
        return SweepReport(
            orders_expired=expired, payments_reconciled=reconciled, handler_retries=retried
        )

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self._sweep_interval.total_seconds())
            try:
                await self.sweep()
            except Exception:  # a failed sweep is retried by the next one
                _log.exception("sweep_failed")

    # --- catalog ----------------------------------------------------------------------------

    async def create_venue(
        self, by: Requester, *, name: str, address: Mapping[str, str], seat_map: SeatMap
    ) -> Venue:
        """A new venue (organizers, admins)."""
        return await self.bus.execute(CreateVenue(by, name, address, seat_map))

    async def create_event(
        self, by: Requester, *, venue_id: VenueId, name: str, description: str = ""
    ) -> Event:
        """A new event at a venue, organized by the caller."""
        return await self.bus.execute(CreateEvent(by, venue_id, name, description))

    async def add_price_category(
        self,
        by: Requester,
        event_id: EventId,
        *,
        name: str,
        area_ids: Sequence[str],
        price: Money,
        quota: int | None = None,
    ) -> PriceCategory:
        """Price some areas of one of the caller's events."""
        return await self.bus.execute(
            AddPriceCategory(by, event_id, name, tuple(area_ids), price, quota)
        )

    async def create_session(
        self,
        by: Requester,
        event_id: EventId,
        *,
        start_time: datetime,
        end_time: datetime,
        sale_start_time: datetime,
        sale_end_time: datetime,
        queue_enabled: bool = False,
        max_seats_per_order: int | None = None,
        max_seats_per_user: int | None = None,
        challenge_required: bool = False,
    ) -> Session:
        """A performance of one of the caller's events."""
        return await self.bus.execute(
            CreateSession(
                by,
                event_id,
                start_time,
                end_time,
                sale_start_time,
                sale_end_time,
                queue_enabled,
                max_seats_per_order,
                max_seats_per_user,
                challenge_required,
            )
        )

    async def get_venue(self, venue_id: VenueId) -> Venue:
        """A venue with its seat map."""
        return await self.catalog.get_venue(venue_id)

    async def get_event(self, event_id: EventId) -> EventDetails:
        """An event with its sessions and price categories."""
        return await self.catalog.get_event(event_id)

    async def list_events(
        self, *, limit: int = DEFAULT_PAGE_SIZE, cursor: str | None = None
    ) -> Page[Event]:
        """Events, oldest first."""
        return await self.catalog.list_events(limit=limit, cursor=cursor)

    async def get_session(self, session_id: SessionId) -> Session:
        """A session."""
        return await self.catalog.get_session(session_id)

    async def seats(self, session_id: SessionId) -> list[SeatView]:
        """Every seat of a session with its status now and its price."""
        return await self.board.seats(session_id)

    async def sales(self, by: Requester, session_id: SessionId, at: datetime) -> SalesFigures:
        """A session's stock, queue depth and orders of the last minute, at ``at`` (now).

        For the organizer of the session's event and admins (another organizer:
        ``NotFound``); see :mod:`~openticket.application.sales`.
        """
        return await self.sales_reader.sales(by, session_id, at)

    # --- buying -----------------------------------------------------------------------------

    async def place_order(
        self,
        by: Requester,
        session_id: SessionId,
        seat_ids: Sequence[str],
        admission_token: str | None = None,
        client: Client | None = None,
    ) -> Order:
        """Hold the seats (all or nothing) and open an order that expires with the hold.

        A session sold through a waiting room needs the buyer's ``admission_token``;
        ``client`` (where the request came from) is what the bot defence judges.
        """
        return await self.bus.execute(
            PlaceOrder(by, session_id, tuple(seat_ids), admission_token, client)
        )

    async def pay(
        self, by: Requester, order_id: OrderId, provider: str = "mock", **options: str
    ) -> Payment:
        """Start paying an order; with the mock provider it settles before this returns.

        Where the saga runs only in workers (``OPENTICKET_SAGA_INLINE=false``) the payment
        has settled by then and the order completes a moment later.
        """
        return (await self.start_payment(by, order_id, provider, **options)).payment

    async def start_payment(
        self, by: Requester, order_id: OrderId, provider: str = "mock", **options: str
    ) -> StartedPayment:
        """:meth:`pay`, with what the buyer needs next at the provider.

        Stripe answers a ``client_secret`` for the buyer's browser to confirm with, LINE
        Pay a ``redirect_url`` to send the buyer to. Asking again while the order awaits
        that payment answers the same payment.
        """
        return await self.bus.execute(StartPayment(by, order_id, provider, options))

    async def return_from_provider(
        self, provider: str, provider_transaction_id: str, reference: str, *, approved: bool
    ) -> Payment:
        """The buyer came back from the provider's page; see ``PaymentService``."""
        return await self.bus.execute(
            ReturnFromProvider(provider, provider_transaction_id, reference, approved)
        )

    async def get_order(self, by: Requester, order_id: OrderId) -> Order:
        """One of the caller's orders (admins: any)."""
        return await self.ordering.get_order(by, order_id)

    async def list_orders(
        self, by: Requester, *, limit: int = DEFAULT_PAGE_SIZE, cursor: str | None = None
    ) -> Page[Order]:
        """The caller's orders."""
        return await self.ordering.list_orders(by, limit=limit, cursor=cursor)

    async def cancel_order(self, by: Requester, order_id: OrderId) -> Order:
        """Cancel an unpaid order; its seats are released."""
        return await self.bus.execute(CancelOrder(by, order_id))

    async def refund_order(self, by: Requester, order_id: OrderId) -> Order:
        """Refund a completed order (organizer of its event, admin)."""
        return await self.bus.execute(RefundOrder(by, order_id))

    async def handle_webhook(
        self, provider: str, headers: Mapping[str, str], body: bytes
    ) -> Payment | None:
        """Verify and apply a provider's webhook (raises ``InvalidWebhookSignature``)."""
        return await self.bus.execute(HandleWebhook(provider, headers, body))

    # --- tickets ----------------------------------------------------------------------------

    async def list_tickets(
        self, by: Requester, *, limit: int = DEFAULT_PAGE_SIZE, cursor: str | None = None
    ) -> Page[Ticket]:
        """The caller's tickets."""
        return await self.ticketing.list_tickets(by, limit=limit, cursor=cursor)

    async def get_ticket(self, by: Requester, ticket_id: TicketId) -> Ticket:
        """One of the caller's tickets (admins: any)."""
        return await self.ticketing.get_ticket(by, ticket_id)

    async def check_in(self, by: Requester, qr_code: str) -> Ticket:
        """Let a ticket's holder in, once (staff, admins)."""
        return await self.bus.execute(CheckIn(by, qr_code))
