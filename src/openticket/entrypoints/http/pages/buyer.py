"""The buyer's pages: sessions on sale, signing in, seat maps, tickets and orders.

A session's live seat map (holding, the countdown, paying, its waiting room), the
buyer's tickets with their QR codes, and one order's live status.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Controller, Request, get
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Template

from openticket.application.facade import OpenTicket
from openticket.application.ports.clock import Clock
from openticket.domain.shared import Money, SessionId
from openticket.entrypoints.http.auth import POLICY
from openticket.entrypoints.http.pages import (
    MAX_LISTED_EVENTS,
    on_sale_view,
    page,
    page_csp,
)

PROVIDER_LABELS = {"mock": "Test payment (mock)", "linepay": "LINE Pay", "stripe": "Card (Stripe)"}
"""How the checkout names each payment provider; one missing here shows its own name."""

PAGE_PROVIDERS = ("mock", "stripe", "linepay")
"""The providers the checkout can take a buyer through, in the order it lists them.

Stripe only with its publishable key (``OPENTICKET_STRIPE_PUBLISHABLE_KEY``): its card
form is Stripe.js, which needs it.
"""


def checkout_providers(
    configured: tuple[str, ...], *, stripe_key: str = ""
) -> list[dict[str, str]]:
    """The configured providers the page offers, in ``PAGE_PROVIDERS`` order."""
    return [
        {"name": name, "label": PROVIDER_LABELS.get(name, name)}
        for name in PAGE_PROVIDERS
        if name in configured and (name != "stripe" or stripe_key)
    ]


def price_text(price: Money) -> str:
    """A price as the seat map's labels say it: ``TWD 1,200.00``."""
    return f"{price.currency} {price.amount:,.2f}"


class BuyerPages(Controller):
    """The buyer's pages; ``include_in_schema=False``: they are not the API."""

    include_in_schema = False

    @get("/")
    async def home(
        self, tickets: NamedDependency[OpenTicket], clock: NamedDependency[Clock]
    ) -> Template:
        """The events and their sessions, those on sale first."""
        page_of_events = await tickets.list_events(limit=MAX_LISTED_EVENTS)
        listed: list[dict[str, Any]] = []
        for event in page_of_events.items:
            details = await tickets.get_event(event.event_id)
            sessions = sorted(
                (on_sale_view(s, clock) for s in details.sessions),
                key=lambda s: (not s["on_sale"], s["start_time"]),
            )
            listed.append({"event": event, "sessions": sessions})
        listed.sort(key=lambda e: not any(s["on_sale"] for s in e["sessions"]))
        return page("home.html", title="Sessions on sale", events=listed)

    @get("/signin")
    async def sign_in(self) -> Template:
        """Sign in with email and password."""
        return page("signin.html", title="Sign in")

    @get("/signup")
    async def sign_up(self) -> Template:
        """Create a buyer's account."""
        return page("signup.html", title="Create an account")

    @get("/sessions/{session_id:uuid}")
    async def session(
        self,
        session_id: FromPath[UUID],
        tickets: NamedDependency[OpenTicket],
        clock: NamedDependency[Clock],
        request: Request[Any, Any, Any],
    ) -> Template:
        """A session's seat map, live; holding seats, the countdown, paying.

        With Stripe offered, the page carries the publishable key and a policy that lets
        Stripe.js and its frames in; a session with ``challenge_required``, Turnstile's
        site key and widget (``page_csp``).
        """
        session = await tickets.get_session(SessionId(session_id))
        details = await tickets.get_event(session.event_id)
        venue = await tickets.get_venue(details.event.venue_id)
        area_names = {area.area_id: area.name for area in venue.seat_map.areas}
        categories = [
            {
                "name": category.name,
                "price": price_text(category.price),
                "areas": [area_names.get(a, a) for a in sorted(category.area_ids)],
            }
            for category in sorted(details.categories, key=lambda c: c.price.amount)
        ]
        policy = request.app.state[POLICY]
        stripe_key: str = policy.stripe_publishable_key
        providers = checkout_providers(tickets.payments.provider_names, stripe_key=stripe_key)
        stripe = any(p["name"] == "stripe" for p in providers)
        challenge_key: str = policy.turnstile_site_key if session.challenge_required else ""
        return page(
            "session.html",
            csp=page_csp(stripe=stripe, turnstile=bool(challenge_key)),
            stripe_key=stripe_key if stripe else "",
            challenge_required=session.challenge_required,
            challenge_key=challenge_key,
            title=f"{details.event.name}: choose your seats",
            event=details.event,
            venue=venue,
            areas=[{"area_id": a, "name": n} for a, n in area_names.items()],
            categories=categories,
            session=on_sale_view(session, clock),
            max_seats_per_order=session.max_seats_per_order,
            providers=providers,
        )

    @get("/tickets")
    async def my_tickets(self) -> Template:
        """The signed-in buyer's tickets with their QR codes, ready to print."""
        return page("tickets.html", title="My tickets")

    @get("/orders/{order_id:uuid}")
    async def order(self, order_id: FromPath[UUID]) -> Template:
        """One of the buyer's orders, its status live (where LINE Pay sends the buyer back)."""
        return page("order.html", title="Your order", order_id=str(order_id))
