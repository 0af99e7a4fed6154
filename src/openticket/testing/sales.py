"""A sale set up over the HTTP API, as an organizer would: for load tests and benchmarks.

:class:`SaleSetup` signs the demo organizer in, makes a venue of identical rows in every
area, one event priced the same everywhere, and as many sessions on sale now as asked.
It speaks only the public API (``shared/docs/api.md``), so it works against any
deployment: ``openticket serve --demo`` embedded, or the production profile.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import attrs
import httpx

DEMO_ORGANIZER = "organizer@openticket.local"


@attrs.define
class SaleSetup:
    """An organizer's venue and event, made over ``client`` (base URL set)."""

    client: httpx.AsyncClient
    areas: Sequence[str]
    rows: int
    seats_per_row: int
    price: str = "1000.00"
    currency: str = "TWD"
    organizer: dict[str, str] = attrs.field(factory=dict)
    event_id: str = ""

    @property
    def seats(self) -> int:
        """How many seats the venue has."""
        return len(self.areas) * self.rows * self.seats_per_row

    async def sign_in(self, password: str, email: str = DEMO_ORGANIZER) -> None:
        """Sign the organizer in."""
        answer = await self.client.post(
            "/api/auth/token", json={"email": email, "password": password}
        )
        answer.raise_for_status()
        self.organizer = {"Authorization": f"Bearer {answer.json()['access_token']}"}

    async def make_event(self, name: str = "Flash Sale Live") -> str:
        """The venue and one event priced alike in every area; the event's id."""
        venue = await self.client.post(
            "/api/venues",
            headers=self.organizer,
            json={
                "name": f"{name} Arena",
                "address": {"city": "Taipei"},
                "seat_map": {
                    "areas": [
                        {
                            "area_id": area,
                            "name": f"Area {area}",
                            "rows": [
                                {"row": str(r), "seats": list(range(1, self.seats_per_row + 1))}
                                for r in range(1, self.rows + 1)
                            ],
                        }
                        for area in self.areas
                    ]
                },
            },
        )
        venue.raise_for_status()
        event = await self.client.post(
            "/api/events",
            headers=self.organizer,
            json={"venue_id": venue.json()["venue_id"], "name": name},
        )
        event.raise_for_status()
        self.event_id = str(event.json()["event_id"])
        priced = await self.client.post(
            f"/api/events/{self.event_id}/price-categories",
            headers=self.organizer,
            json={
                "name": "All",
                "area_ids": list(self.areas),
                "price": {"amount": self.price, "currency": self.currency},
            },
        )
        priced.raise_for_status()
        return self.event_id

    async def open_session(
        self, *, max_seats_per_order: int = 10, max_seats_per_user: int | None = None
    ) -> str:
        """A session of the event, on sale from a minute ago for a day; its id.

        ``max_seats_per_user`` defaults to the per-order cap, as a session's does.
        """
        now = datetime.now(UTC)
        session = await self.client.post(
            f"/api/events/{self.event_id}/sessions",
            headers=self.organizer,
            json={
                "start_time": (now + timedelta(days=2)).isoformat(),
                "end_time": (now + timedelta(days=2, hours=3)).isoformat(),
                "sale_start_time": (now - timedelta(minutes=1)).isoformat(),
                "sale_end_time": (now + timedelta(days=1)).isoformat(),
                "max_seats_per_order": max_seats_per_order,
                **(
                    {} if max_seats_per_user is None else {"max_seats_per_user": max_seats_per_user}
                ),
            },
        )
        session.raise_for_status()
        return str(session.json()["session_id"])
