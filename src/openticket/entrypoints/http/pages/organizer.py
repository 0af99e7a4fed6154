"""The organizer's pages: setting up a sale, and watching it live."""

from __future__ import annotations

from uuid import UUID

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Template

from openticket.application.facade import OpenTicket
from openticket.application.ports.clock import Clock
from openticket.domain.shared import SessionId
from openticket.entrypoints.http.pages import on_sale_view, page


class OrganizerPages(Controller):
    """The organizer's pages; shells the scripts fill over the API, which checks roles.

    The bearer token lives in the browser tab, so the server cannot tell who opens a
    page: each is the same for everyone, and its script shows a signed-in organizer
    (or admin) the forms and the figures, and anyone else a way to sign in as one.
    """

    include_in_schema = False

    @get("/organizer")
    async def organizer(self) -> Template:
        """Create venues (from a seat-map JSON), events, price categories, sessions."""
        return page("organizer.html", title="Set up a sale")

    @get("/organizer/sessions/{session_id:uuid}")
    async def dashboard(
        self,
        session_id: FromPath[UUID],
        tickets: NamedDependency[OpenTicket],
        clock: NamedDependency[Clock],
    ) -> Template:
        """A session's sales, live: sold, held, available, queue depth, orders per minute.

        What it names (the event, the session's times) is public; the figures come
        from the API, to the session's organizer only.
        """
        session = await tickets.get_session(SessionId(session_id))
        details = await tickets.get_event(session.event_id)
        return page(
            "dashboard.html",
            title=f"Sales of {details.event.name}",
            event=details.event,
            session=on_sale_view(session, clock),
        )
