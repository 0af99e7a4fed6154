"""Demo data: staff accounts with a published password, and one sale open right now.

Only the embedded profile (nothing is kept) and ``openticket serve --demo`` seed it. On
persistent storage without ``--demo``, ``retire_demo_accounts`` disables demo accounts
an older release left there with the published password.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import attrs

from openticket.application.access import Requester
from openticket.application.facade import OpenTicket
from openticket.application.identity.service import IdentityService
from openticket.application.ports.clock import Clock
from openticket.domain.identity import Role, User, UserStatus
from openticket.domain.shared import Money, SessionId
from openticket.domain.venue import Area, Row, SeatMap
from openticket.entrypoints.settings import Settings

DEMO_ACCOUNTS = (
    ("admin@openticket.local", "Demo Admin", Role.ADMIN),
    ("organizer@openticket.local", "Demo Organizer", Role.ORGANIZER),
    ("staff@openticket.local", "Demo Door Staff", Role.STAFF),
)
PUBLISHED_PASSWORD = str(attrs.fields(Settings).demo_password.default)
"""The demo accounts' default password, printed in the README and by every older serve."""


@attrs.frozen
class Demo:
    """What the demo set up."""

    session_id: SessionId
    seats: int
    queued_session_id: SessionId | None = None
    """A second session on sale now, sold through a waiting room."""


async def seed_demo(
    tickets: OpenTicket, identity: IdentityService, clock: Clock, password: str
) -> Demo | None:
    """Create the demo accounts, and a venue with two sessions on sale, unless events exist.

    The second session sells through a waiting room.

    Returns what it created, or None when the catalog already had events.
    """
    users = await ensure_demo_accounts(identity, password)
    if (await tickets.list_events(limit=1)).items:
        return None
    organizer = Requester(users[Role.ORGANIZER].user_id, frozenset({Role.ORGANIZER}))
    seat_map = SeatMap(
        [
            Area("A", "Floor", [Row(str(r), range(1, 21)) for r in range(1, 11)]),
            Area("B", "Balcony", [Row(str(r), range(1, 16)) for r in range(1, 6)]),
        ]
    )
    venue = await tickets.create_venue(
        organizer, name="OpenTicket Arena", address={"city": "Taipei"}, seat_map=seat_map
    )
    event = await tickets.create_event(
        organizer, venue_id=venue.venue_id, name="OpenTicket Live", description="The demo sale"
    )
    for area, amount in (("A", "2800.00"), ("B", "1200.00")):
        await tickets.add_price_category(
            organizer,
            event.event_id,
            name=f"Area {area}",
            area_ids=[area],
            price=Money(Decimal(amount), "TWD"),
        )
    now = clock.now()
    session = await tickets.create_session(
        organizer,
        event.event_id,
        start_time=now + timedelta(days=31),
        end_time=now + timedelta(days=31, hours=3),
        sale_start_time=now - timedelta(minutes=1),
        sale_end_time=now + timedelta(days=30),
    )
    queued = await tickets.create_session(
        organizer,
        event.event_id,
        start_time=now + timedelta(days=32),
        end_time=now + timedelta(days=32, hours=3),
        sale_start_time=now - timedelta(minutes=1),
        sale_end_time=now + timedelta(days=30),
        queue_enabled=True,
    )
    return Demo(session.session_id, seat_map.capacity, queued.session_id)


async def ensure_demo_accounts(identity: IdentityService, password: str) -> dict[Role, User]:
    """The demo accounts by role, made with ``password`` where they do not exist yet."""
    return {
        role: await identity.ensure_user(
            email=email, password=password, display_name=name, roles=(role,)
        )
        for email, name, role in DEMO_ACCOUNTS
    }


def disabled(users: dict[Role, User]) -> list[str]:
    """The e-mails of the demo accounts that may not sign in."""
    return [user.email for user in users.values() if user.status is not UserStatus.ACTIVE]


async def retire_demo_accounts(identity: IdentityService, demo_password: str) -> list[str]:
    """Disable every demo account that the published or configured password opens.

    Returns their e-mails. Accounts with another password, or disabled already, are
    left as they are.
    """
    known = (PUBLISHED_PASSWORD, demo_password)
    retired = [await identity.retire_known_password(email, known) for email, _, _ in DEMO_ACCOUNTS]
    return [user.email for user in retired if user is not None]
