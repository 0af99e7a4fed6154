"""Buying: orders, payments, refunds; the caller's orders and tickets; check-in."""

from __future__ import annotations

import io
from typing import Annotated, Any
from uuid import UUID

import attrs
import segno
from litestar import Controller, Request, Response, delete, get, post
from litestar.di import NamedDependency, Provide
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, HeaderParameter, JSONBody

from openticket.application.access import Requester
from openticket.application.facade import OpenTicket
from openticket.application.gate.waiting_room import Client
from openticket.domain.identity import Role
from openticket.domain.shared import OrderId, SessionId, TicketId
from openticket.domain.ticketing import Ticket
from openticket.entrypoints.http.auth import (
    METRICS,
    POLICY,
    TICKETS,
    authenticated,
    provide_requester,
    role_guard,
)
from openticket.entrypoints.http.observability import Metrics
from openticket.entrypoints.http.openapi import INPUT, READ, SIGNED_IN, problems
from openticket.entrypoints.http.proxies import client_of
from openticket.entrypoints.http.schemas import (
    CheckInBody,
    Cursor,
    Limit,
    OrderBody,
    OrderOut,
    OrderPage,
    PaymentBody,
    PaymentOut,
    TicketOut,
    TicketPage,
    order_out,
    order_page,
    payment_out,
    ticket_out,
    ticket_page,
)

REQUESTER = {"requester": Provide(provide_requester)}

SVG = "image/svg+xml"
QR_SCALE = 8
"""Pixels per QR module: about 300 pixels a side for a ticket's code, sharp when printed."""


def ticket_qr_svg(ticket: Ticket) -> bytes:
    """The ticket's QR code as an SVG document (error correction M, titled by its seat)."""
    out = io.BytesIO()
    segno.make(ticket.qr_code, error="m").save(
        out,
        kind="svg",
        scale=QR_SCALE,
        xmldecl=False,
        svgns=True,
        title=f"Ticket for seat {ticket.seat_id}",
    )
    return out.getvalue()


@attrs.frozen
class Buying:
    """What the purchase handlers work with, as one dependency.

    Litestar resolves two or more dependencies of a handler in an anyio task group: a
    task each, on every request. The two requests of every purchase take this one
    instead, from the application's state.
    """

    tickets: OpenTicket
    requester: Requester
    metrics: Metrics
    client: Client


async def provide_buying(request: Request[Any, Any, Any]) -> Buying:
    """Dependency: the application, the requester, the metrics, the request's client."""
    state = request.app.state
    client = client_of(request, count_loopback=state[POLICY].limit_loopback)
    return Buying(state[TICKETS], await provide_requester(request), state[METRICS], client)


BUYING = {"buying": Provide(provide_buying)}


class OrderController(Controller):
    """A buyer's orders."""

    path = "/api/orders"
    tags = ["buying"]
    guards = [authenticated]
    security = SIGNED_IN
    dependencies = {**REQUESTER, **BUYING}

    @post(
        "/",
        status_code=201,
        summary="Hold seats and open an order",
        operation_id="placeOrder",
        responses=problems(*READ, *INPUT, 401, 403, 404, 409, 422),
    )
    async def create(
        self,
        data: JSONBody[OrderBody],
        buying: NamedDependency[Buying],
        admission_token: Annotated[
            str | None, HeaderParameter(name="X-Admission-Token", required=False, max_length=1024)
        ] = None,
    ) -> OrderOut:
        """All seats held until ``expires_at``, or none (409 ``seat_unavailable``).

        The seats must be in one area of the session's venue (422 ``seats_span_areas``,
        ``unknown_seats``), at most the session's ``max_seats_per_order`` (422), while the
        sale is open (422 ``sale_not_open``). A session sold through a waiting room needs
        the buyer's admission token in ``X-Admission-Token`` (403 ``queue_required``).
        """
        with buying.metrics.hold_seconds.time():
            order = await buying.tickets.place_order(
                buying.requester,
                SessionId(data.session_id),
                data.seat_ids,
                admission_token,
                buying.client,
            )
        return order_out(order)

    @get(
        "/{order_id:uuid}",
        summary="An order",
        operation_id="readOrder",
        responses=problems(*READ, 401, 404),
    )
    async def read(
        self,
        order_id: FromPath[UUID],
        tickets: NamedDependency[OpenTicket],
        requester: NamedDependency[Requester],
    ) -> OrderOut:
        """One of the caller's orders (admins: any); 404 otherwise."""
        return order_out(await tickets.get_order(requester, OrderId(order_id)))

    @delete(
        "/{order_id:uuid}",
        status_code=200,
        summary="Cancel an unpaid order",
        operation_id="cancelOrder",
        responses=problems(*READ, 401, 404, 409),
    )
    async def cancel(
        self,
        order_id: FromPath[UUID],
        tickets: NamedDependency[OpenTicket],
        requester: NamedDependency[Requester],
    ) -> OrderOut:
        """The order is cancelled and its seats released; 409 once it is paid."""
        return order_out(await tickets.cancel_order(requester, OrderId(order_id)))

    @post(
        "/{order_id:uuid}/payments",
        status_code=201,
        summary="Pay an order",
        operation_id="payOrder",
        responses=problems(*READ, *INPUT, 401, 404, 409, 422, 502),
    )
    async def pay(
        self,
        order_id: FromPath[UUID],
        data: JSONBody[PaymentBody],
        buying: NamedDependency[Buying],
    ) -> PaymentOut:
        """Start paying; the mock provider settles before this answers.

        Stripe answers a ``client_secret`` (the buyer's browser confirms with Stripe.js;
        the webhook settles it), LINE Pay a ``redirect_url`` (the buyer approves there
        and comes back to ``/api/payments/linepay/confirm``). Asking again while the
        order awaits that payment answers the same payment.
        """
        options = {} if data.outcome is None else {"outcome": data.outcome}
        started = await buying.tickets.start_payment(
            buying.requester, OrderId(order_id), data.provider, **options
        )
        return payment_out(
            started.payment,
            redirect_url=started.redirect_url,
            client_secret=started.client_secret,
        )

    @post(
        "/{order_id:uuid}/refund",
        status_code=200,
        guards=[role_guard(Role.ORGANIZER)],
        summary="Refund a completed order",
        operation_id="refundOrder",
        responses=problems(*READ, 401, 403, 404, 409, 502),
    )
    async def refund(
        self,
        order_id: FromPath[UUID],
        tickets: NamedDependency[OpenTicket],
        requester: NamedDependency[Requester],
    ) -> OrderOut:
        """Tickets voided, seats on sale again (the event's organizer, admins)."""
        return order_out(await tickets.refund_order(requester, OrderId(order_id)))


class MyThingsController(Controller):
    """The caller's orders and tickets."""

    path = "/api/me"
    tags = ["buying"]
    guards = [authenticated]
    security = SIGNED_IN
    dependencies = REQUESTER

    @get(
        "/orders",
        summary="My orders",
        operation_id="listMyOrders",
        responses=problems(*READ, 400, 401),
    )
    async def orders(
        self,
        tickets: NamedDependency[OpenTicket],
        requester: NamedDependency[Requester],
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> OrderPage:
        """The caller's orders, oldest first."""
        return order_page(await tickets.list_orders(requester, limit=limit, cursor=cursor))

    @get(
        "/tickets",
        summary="My tickets",
        operation_id="listMyTickets",
        responses=problems(*READ, 400, 401),
    )
    async def tickets(
        self,
        tickets: NamedDependency[OpenTicket],
        requester: NamedDependency[Requester],
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> TicketPage:
        """The caller's tickets (voided ones too)."""
        return ticket_page(await tickets.list_tickets(requester, limit=limit, cursor=cursor))

    @get(
        "/tickets/{ticket_id:uuid}/qr.svg",
        media_type=SVG,
        summary="My ticket's QR code",
        operation_id="readMyTicketQr",
        responses={
            200: ResponseSpec(
                data_container=str,
                media_type=SVG,
                description="The ticket's QR code, an SVG image to show at the door.",
                generate_examples=False,
            ),
            **problems(*READ, 401, 404),
        },
    )
    async def ticket_qr(
        self,
        ticket_id: FromPath[UUID],
        tickets: NamedDependency[OpenTicket],
        requester: NamedDependency[Requester],
    ) -> Response[bytes]:
        """The QR code of one of the caller's tickets as SVG; 404 unknown or not theirs."""
        ticket = await tickets.get_ticket(requester, TicketId(ticket_id))
        return Response(ticket_qr_svg(ticket), media_type=SVG)


class CheckInController(Controller):
    """The door."""

    path = "/api/check-ins"
    tags = ["tickets"]
    guards = [role_guard(Role.STAFF)]
    security = SIGNED_IN
    dependencies = REQUESTER

    @post(
        "/",
        status_code=200,
        summary="Check a ticket in",
        operation_id="checkIn",
        responses=problems(*READ, *INPUT, 401, 403, 404, 409),
    )
    async def check_in(
        self,
        data: JSONBody[CheckInBody],
        tickets: NamedDependency[OpenTicket],
        requester: NamedDependency[Requester],
    ) -> TicketOut:
        """The ticket is used; 409 ``already_used`` the second time; 404 unknown."""
        return ticket_out(await tickets.check_in(requester, data.qr_code))
