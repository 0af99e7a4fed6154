"""The buyer's pages: sessions on sale, signing in, a session's live seat map."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Template

from openticket.application.facade import OpenTicket
from openticket.application.ports.clock import Clock
from openticket.domain.shared import SessionId
from openticket.entrypoints.http.pages import MAX_LISTED_EVENTS, on_sale_view, page


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
    ) -> Template:
        """A session's seat map, live; holding seats, the countdown, paying."""
        session = await tickets.get_session(SessionId(session_id))
        details = await tickets.get_event(session.event_id)
        return page(
            "session.html",
            title=f"{details.event.name}: choose your seats",
            event=details.event,
            session=on_sale_view(session, clock),
            max_seats_per_order=session.max_seats_per_order,
        )
