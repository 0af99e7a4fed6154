"""The catalog's commands: what an organizer asks to set up a sale.

:class:`~openticket.application.catalog.service.CatalogService` handles each as it
comes from the message bus.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import attrs

from openticket.application.access import Requester
from openticket.application.messagebus import Command
from openticket.domain.catalog import Event, PriceCategory, Session
from openticket.domain.shared import EventId, Money, VenueId
from openticket.domain.venue import SeatMap, Venue


@attrs.frozen
class CreateVenue(Command[Venue]):
    """An organizer (or admin) adds a venue with its seat map."""

    by: Requester
    name: str
    address: Mapping[str, str]
    seat_map: SeatMap


@attrs.frozen
class CreateEvent(Command[Event]):
    """An organizer adds an event at a venue."""

    by: Requester
    venue_id: VenueId
    name: str
    description: str = ""


@attrs.frozen
class AddPriceCategory(Command[PriceCategory]):
    """An organizer prices some areas of one of their events."""

    by: Requester
    event_id: EventId
    name: str
    area_ids: tuple[str, ...]
    price: Money
    quota: int | None = None


@attrs.frozen
class CreateSession(Command[Session]):
    """An organizer adds a performance of one of their events, with its sale's rules.

    ``max_seats_per_order`` None: the platform's default. ``max_seats_per_user`` (None:
    the same as ``max_seats_per_order``) caps the seats one buyer has in live and
    completed orders of the session; it may be below, equal to or above the per-order
    cap. ``challenge_required`` asks each buyer to pass a human check before joining
    the waiting room, so it needs ``queue_enabled``.
    """

    by: Requester
    event_id: EventId
    start_time: datetime
    end_time: datetime
    sale_start_time: datetime
    sale_end_time: datetime
    queue_enabled: bool = False
    max_seats_per_order: int | None = None
    max_seats_per_user: int | None = None
    challenge_required: bool = False
