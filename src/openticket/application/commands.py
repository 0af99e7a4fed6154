"""The commands that change state, handled through the message bus.

Each names who asks (``by``) and what they want; the bus routes it to its one
handler and hands back the handler's answer — or raises its error. The catalog's
commands live beside the catalog service (:mod:`openticket.application.catalog.commands`),
which takes them as they are; they are listed here too.
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from openticket.application.access import Requester
from openticket.application.catalog.commands import (
    AddPriceCategory,
    CreateEvent,
    CreateSession,
    CreateVenue,
)
from openticket.application.gate.waiting_room import Client
from openticket.application.messagebus import Command
from openticket.application.payments.service import StartedPayment
from openticket.domain.ordering import Order
from openticket.domain.payment import Payment
from openticket.domain.shared import OrderId, SessionId
from openticket.domain.ticketing import Ticket


@attrs.frozen
class PlaceOrder(Command[Order]):
    """Hold these seats of a session (all or nothing) and open an order for them."""

    by: Requester
    session_id: SessionId
    seat_ids: tuple[str, ...]
    admission_token: str | None = None
    """The waiting room's admission token, for a session sold through a queue."""
    client: Client | None = None
    """Where the request came from, for the bot defence."""


@attrs.frozen
class StartPayment(Command[StartedPayment]):
    """Pay an order through a provider, with the buyer's provider options."""

    by: Requester
    order_id: OrderId
    provider: str
    options: Mapping[str, str] = attrs.field(factory=dict)


@attrs.frozen
class CancelOrder(Command[Order]):
    """The buyer gives up an unpaid order."""

    by: Requester
    order_id: OrderId


@attrs.frozen
class RefundOrder(Command[Order]):
    """An organizer (or admin) refunds a completed order."""

    by: Requester
    order_id: OrderId


@attrs.frozen
class CheckIn(Command[Ticket]):
    """Door staff let a ticket's holder in."""

    by: Requester
    qr_code: str


@attrs.frozen
class ReturnFromProvider(Command[Payment]):
    """The buyer came back from the provider's page, approving or cancelling there."""

    provider: str
    provider_transaction_id: str
    reference: str
    approved: bool


@attrs.frozen
class HandleWebhook(Command[Payment | None]):
    """A provider's webhook, as it came: verified, then applied to the payment it names."""

    provider: str
    headers: Mapping[str, str]
    body: bytes


__all__ = [
    "AddPriceCategory",
    "CancelOrder",
    "CheckIn",
    "CreateEvent",
    "CreateSession",
    "CreateVenue",
    "HandleWebhook",
    "PlaceOrder",
    "RefundOrder",
    "ReturnFromProvider",
    "StartPayment",
]
