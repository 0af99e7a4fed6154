"""Door staff's page: checking tickets in."""

from __future__ import annotations

from litestar import Controller, get
from litestar.response import Template

from openticket.entrypoints.http.pages import page


class StaffPages(Controller):
    """Door staff's pages; shells the scripts fill over the API, which checks roles."""

    include_in_schema = False

    @get("/staff/check-in")
    async def check_in(self) -> Template:
        """Type or scan a ticket's QR code; see at once whether it lets its holder in."""
        return page("checkin.html", title="Check tickets in")
