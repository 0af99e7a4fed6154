"""Catalog context: events, their sessions (performances) and price categories."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum

import attrs

from openticket.domain.shared import (
    Aggregate,
    AreaId,
    CategoryId,
    DomainError,
    EventId,
    InvalidTransition,
    Money,
    SeatId,
    SessionId,
    UserId,
    ValidationError,
    VenueId,
    human_text,
    require_aware,
)
from openticket.domain.venue import SeatMap, area_id_of, parse_seat_id

DEFAULT_MAX_SEATS_PER_ORDER = 10
MAX_SEATS_PER_ORDER_LIMIT = 100
MAX_SEATS_PER_USER_LIMIT = 1000
"""The highest per-buyer cap a session may set (it may be below its per-order cap)."""
MAX_NAME_LENGTH = 200
"""Of an event and of a price category."""
MAX_DESCRIPTION_LENGTH = 5000


class SaleNotOpen(DomainError):
    """The session is not selling now (before its window, after it, or cancelled)."""

    code = "sale_not_open"


class SeatNotPriced(ValidationError):
    """A seat whose area no price category covers: it cannot be sold."""

    code = "seat_not_priced"


class AreaAlreadyPriced(DomainError):
    """An area may belong to one price category of an event only."""

    code = "area_already_priced"


class CurrencyOfEventDiffers(DomainError):
    """A price in another currency than the event's other prices."""

    code = "currency_differs"


class QuotaExhausted(DomainError):
    """More seats of a price category than its quota allows."""

    code = "quota_exhausted"

    @classmethod
    def counted(cls, *, quota: int, taken: int, name: str | None = None) -> QuotaExhausted:
        """The error for a category with ``taken`` of its ``quota`` seats in orders."""
        left = max(quota - taken, 0)
        which = "these seats' price category" if name is None else f"category {name!r}"
        return cls(f"{which} has {left} of its {quota} seats left")


class UserLimitReached(DomainError):
    """More seats for one buyer in one session than the session's per-user cap."""

    code = "user_limit_reached"

    @classmethod
    def counted(cls, *, cap: int, taken: int) -> UserLimitReached:
        """The error for a buyer who holds or bought ``taken`` seats of a ``cap``."""
        left = max(cap - taken, 0)
        return cls(
            f"this session allows {cap} seats per buyer: you have {taken} in live or"
            f" completed orders and may take {left} more"
        )


class EventStatus(StrEnum):
    """Lifecycle of a catalog event."""

    PUBLISHED = "published"
    CANCELLED = "cancelled"


def _event_name(value: object) -> str:
    return human_text(value, "an event name", max_length=MAX_NAME_LENGTH)


def _description(value: object) -> str:
    return human_text(
        value,
        "a description",
        max_length=MAX_DESCRIPTION_LENGTH,
        required=False,
        multiline=True,
    )


@attrs.define(kw_only=True)
class Event(Aggregate):
    """Something people buy tickets for, held at one venue, run by one organizer."""

    event_id: EventId
    venue_id: VenueId
    organizer_id: UserId
    name: str = attrs.field(converter=_event_name)
    description: str = attrs.field(default="", converter=_description)
    status: EventStatus = EventStatus.PUBLISHED
    created_at: datetime

    def __attrs_post_init__(self) -> None:
        require_aware(self.created_at, "created_at")

    def is_managed_by(self, user_id: UserId) -> bool:
        """Whether ``user_id`` organizes this event."""
        return self.organizer_id == user_id

    def cancel(self) -> None:
        """Take the event off sale for good."""
        if self.status is EventStatus.CANCELLED:
            raise InvalidTransition("event", self.status, EventStatus.CANCELLED)
        self.status = EventStatus.CANCELLED


class SessionStatus(StrEnum):
    """Stored status of a session; whether it sells *now* also depends on the clock."""

    SCHEDULED = "scheduled"
    CANCELLED = "cancelled"


class SaleState(StrEnum):
    """Where a session's sale stands at a given moment."""

    UPCOMING = "upcoming"
    ON_SALE = "on_sale"
    ENDED = "ended"
    CANCELLED = "cancelled"


@attrs.define(kw_only=True)
class Session(Aggregate):
    """One performance of an event, with its own sale window and order rules."""

    session_id: SessionId
    event_id: EventId
    start_time: datetime
    end_time: datetime
    sale_start_time: datetime
    sale_end_time: datetime
    queue_enabled: bool = False
    max_seats_per_order: int = DEFAULT_MAX_SEATS_PER_ORDER
    max_seats_per_user: int | None = None
    """Seats one buyer may have in live and completed orders; None: ``max_seats_per_order``."""
    challenge_required: bool = False
    """A buyer passes a human check (a challenge) before joining the waiting room; needs
    ``queue_enabled``, as the challenge guards the waiting room."""
    status: SessionStatus = SessionStatus.SCHEDULED

    def __attrs_post_init__(self) -> None:
        for name in ("start_time", "end_time", "sale_start_time", "sale_end_time"):
            require_aware(getattr(self, name), name)
        if not self.start_time < self.end_time:
            raise ValidationError("a session must start before it ends")
        if not self.sale_start_time < self.sale_end_time:
            raise ValidationError("a sale must open before it closes")
        if self.sale_end_time > self.end_time:
            raise ValidationError("a sale cannot close after the session has ended")
        limit: object = self.max_seats_per_order
        if (
            isinstance(limit, bool)
            or not isinstance(limit, int)
            or not 1 <= limit <= MAX_SEATS_PER_ORDER_LIMIT
        ):
            raise ValidationError(f"max_seats_per_order must be 1..{MAX_SEATS_PER_ORDER_LIMIT}")
        cap: object = self.max_seats_per_user
        if cap is not None and (
            isinstance(cap, bool)
            or not isinstance(cap, int)
            or not 1 <= cap <= MAX_SEATS_PER_USER_LIMIT
        ):
            raise ValidationError(f"max_seats_per_user must be 1..{MAX_SEATS_PER_USER_LIMIT}")
        if self.challenge_required and not self.queue_enabled:
            raise ValidationError(
                "a challenge guards a waiting room: challenge_required needs queue_enabled"
            )

    @property
    def seat_cap_per_user(self) -> int:
        """The seats one buyer may have in live and completed orders of this session."""
        if self.max_seats_per_user is None:
            return self.max_seats_per_order
        return self.max_seats_per_user

    def check_seats_per_user(self, taken: int, requested: int) -> None:
        """Raise ``UserLimitReached`` if a buyer with ``taken`` seats may not take ``requested``."""
        cap = self.seat_cap_per_user
        if taken + requested > cap:
            raise UserLimitReached.counted(cap=cap, taken=taken)

    def sale_state(self, now: datetime) -> SaleState:
        """Whether the session sells at ``now``."""
        if self.status is SessionStatus.CANCELLED:
            return SaleState.CANCELLED
        if now < self.sale_start_time:
            return SaleState.UPCOMING
        if now >= self.sale_end_time:
            return SaleState.ENDED
        return SaleState.ON_SALE

    def ensure_on_sale(self, now: datetime) -> None:
        """Raise ``SaleNotOpen`` unless seats can be bought at ``now``."""
        state = self.sale_state(now)
        if state is not SaleState.ON_SALE:
            raise SaleNotOpen(f"sale is {state.value} for session {self.session_id}")

    def cancel(self) -> None:
        """Cancel the performance; it no longer sells."""
        if self.status is SessionStatus.CANCELLED:
            raise InvalidTransition("session", self.status, SessionStatus.CANCELLED)
        self.status = SessionStatus.CANCELLED


def _area_ids(value: Iterable[str]) -> frozenset[AreaId]:
    if isinstance(value, str):
        # a bare "AB" would otherwise price areas "A" and "B"
        raise ValidationError("area_ids must be a collection of area ids, not one string")
    given = [area_id_of(a) for a in value]
    areas = frozenset(given)
    if len(areas) != len(given):
        raise ValidationError("an area appears twice in area_ids")
    if not areas:
        raise ValidationError("a price category covers at least one area")
    return areas


def _category_name(value: object) -> str:
    return human_text(value, "a price category name", max_length=MAX_NAME_LENGTH)


@attrs.frozen(kw_only=True)
class PriceCategory:
    """A price for every seat of some areas of an event, optionally capped by a quota."""

    category_id: CategoryId
    event_id: EventId
    name: str = attrs.field(converter=_category_name)
    area_ids: frozenset[AreaId] = attrs.field(converter=_area_ids)
    price: Money
    quota: int | None = None

    def __attrs_post_init__(self) -> None:
        if self.price.is_negative:
            raise ValidationError("a price cannot be negative")
        if self.quota is not None and (isinstance(self.quota, bool) or self.quota < 0):
            raise ValidationError("a quota cannot be negative")

    def check_quota(self, taken: int, requested: int) -> None:
        """Raise ``QuotaExhausted`` if ``requested`` more seats would pass the quota."""
        if self.quota is not None and taken + requested > self.quota:
            raise QuotaExhausted.counted(quota=self.quota, taken=taken, name=self.name)


@attrs.frozen
class PriceList:
    """The price categories of one event: which price every seat sells at."""

    categories: tuple[PriceCategory, ...] = ()

    def with_category(self, category: PriceCategory, seat_map: SeatMap) -> PriceList:
        """A price list that also has ``category``; its areas must exist and be unpriced."""
        for area_id in sorted(category.area_ids):
            seat_map.area(area_id)
            if self.category_of_area(area_id) is not None:
                raise AreaAlreadyPriced(f"area {area_id!r} already has a price category")
        currencies = {c.price.currency for c in self.categories}
        if currencies and category.price.currency not in currencies:
            raise CurrencyOfEventDiffers(
                f"this event's prices are in {', '.join(sorted(currencies))}: all price"
                " categories of an event use one currency"
            )
        return PriceList((*self.categories, category))

    def category_of_area(self, area_id: str) -> PriceCategory | None:
        """The category covering ``area_id``, if any."""
        for category in self.categories:
            if area_id in category.area_ids:
                return category
        return None

    def category_of(self, seat_id: SeatId) -> PriceCategory:
        """The category a seat sells in; ``SeatNotPriced`` if none covers its area."""
        category = self.category_of_area(parse_seat_id(seat_id).area_id)
        if category is None:
            raise SeatNotPriced(f"seat {seat_id} has no price")
        return category

    def price_of(self, seat_id: SeatId) -> Money:
        """What ``seat_id`` costs."""
        return self.category_of(seat_id).price
