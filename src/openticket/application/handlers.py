"""What the message bus runs: each command's use case, the saga's roles, the live feeds.

Called once by the composition root (the container) when it builds a process: the
facade and the services wire nothing themselves.
"""

from __future__ import annotations

from openticket.application.catalog.service import CatalogService
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
from openticket.application.messagebus import MessageBus
from openticket.application.notifications import LiveNotifications
from openticket.application.ordering.service import OrderingService
from openticket.application.payments.service import PaymentService
from openticket.application.roles import EventRole, SagaPlacement
from openticket.application.saga import PurchaseSaga
from openticket.application.ticketing.service import TicketingService


def register_handlers(  # noqa: PLR0917  # one argument per service it wires
    bus: MessageBus,
    catalog: CatalogService,
    ordering: OrderingService,
    payments: PaymentService,
    saga: PurchaseSaga,
    ticketing: TicketingService,
    notifications: LiveNotifications,
    *,
    placement: SagaPlacement = SagaPlacement.LOCAL,
    live_feeds_on_bus: bool = True,
) -> tuple[EventRole, ...]:
    """Register the commands' handlers and subscribe the event handlers; the saga's roles.

    The roles (the saga's steps and the payments' own) run on the bus unless
    ``placement`` is ``ELSEWHERE`` (only workers run them), retried here if ``LOCAL``,
    tried once if ``INLINE`` (a worker's durable consumer makes sure). The live feeds
    hear the bus unless ``live_feeds_on_bus`` is false (API processes of the
    production profile follow the streams instead).
    """
    roles: tuple[EventRole, ...] = (*saga.roles(), payments.role())
    if placement is not SagaPlacement.ELSEWHERE:
        for role in roles:
            role.subscribe(bus, retry=placement is SagaPlacement.LOCAL)
    if live_feeds_on_bus:
        notifications.register(bus)
    bus.register(CreateVenue, catalog.create_venue)
    bus.register(CreateEvent, catalog.create_event)
    bus.register(AddPriceCategory, catalog.add_price_category)
    bus.register(CreateSession, catalog.create_session)
    bus.register(
        PlaceOrder,
        lambda c: ordering.place_order(c.by, c.session_id, c.seat_ids, c.admission_token, c.client),
    )
    bus.register(
        StartPayment, lambda c: payments.start_payment(c.by, c.order_id, c.provider, c.options)
    )
    bus.register(
        ReturnFromProvider,
        lambda c: payments.return_from_provider(
            c.provider, c.provider_transaction_id, c.reference, approved=c.approved
        ),
    )
    bus.register(HandleWebhook, lambda c: payments.handle_webhook(c.provider, c.headers, c.body))
    bus.register(CancelOrder, lambda c: ordering.cancel_order(c.by, c.order_id))
    bus.register(RefundOrder, lambda c: saga.refund_order(c.by, c.order_id))
    bus.register(CheckIn, lambda c: ticketing.check_in(c.by, c.qr_code))
    return roles
