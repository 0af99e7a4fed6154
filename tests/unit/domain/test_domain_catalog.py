from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import pytest

from openticket.domain.catalog import (
    AreaAlreadyPriced,
    CurrencyOfEventDiffers,
    Event,
    EventStatus,
    PriceCategory,
    PriceList,
    QuotaExhausted,
    SaleNotOpen,
    SaleState,
    SeatNotPriced,
    Session,
)
from openticket.domain.shared import (
    CategoryId,
    EventId,
    InvalidTransition,
    Money,
    SeatId,
    SessionId,
    UserId,
    ValidationError,
    VenueId,
)
from openticket.domain.venue import Area, Row, SeatMap

EVENT = EventId(UUID(int=7))
SEAT_MAP = SeatMap(
    [
        Area("A", "Stalls", [Row("1", [1, 2])]),
        Area("B", "Balcony", [Row("1", [1])]),
        Area("C", "Gallery", [Row("1", [1])]),
    ]
)


def make_session(now: datetime, **changes: Any) -> Session:
    fields: dict[str, Any] = {
        "session_id": SessionId(UUID(int=1)),
        "event_id": EVENT,
        "start_time": now + timedelta(days=10),
        "end_time": now + timedelta(days=10, hours=3),
        "sale_start_time": now,
        "sale_end_time": now + timedelta(days=9),
    }
    fields.update(changes)
    return Session(**fields)


def category(
    areas: Any, price: str = "1000", currency: str = "TWD", **changes: Any
) -> PriceCategory:
    fields: dict[str, Any] = {
        "category_id": CategoryId(UUID(int=len(areas))),
        "event_id": EVENT,
        "name": "Standard",
        "area_ids": areas,
        "price": Money(price, currency),
    }
    fields.update(changes)
    return PriceCategory(**fields)


# --- sessions -----------------------------------------------------------------------


def test_a_sale_is_upcoming_before_its_window_opens(now: datetime) -> None:
    session = make_session(now)
    assert session.sale_state(now - timedelta(microseconds=1)) is SaleState.UPCOMING
    with pytest.raises(SaleNotOpen):
        session.ensure_on_sale(now - timedelta(seconds=1))


def test_a_sale_is_on_from_the_first_moment_of_its_window(now: datetime) -> None:
    session = make_session(now)
    assert session.sale_state(now) is SaleState.ON_SALE
    session.ensure_on_sale(now)
    assert (
        session.sale_state(session.sale_end_time - timedelta(microseconds=1)) is SaleState.ON_SALE
    )


def test_a_sale_has_ended_at_the_moment_its_window_closes(now: datetime) -> None:
    session = make_session(now)
    assert session.sale_state(session.sale_end_time) is SaleState.ENDED
    with pytest.raises(SaleNotOpen):
        session.ensure_on_sale(session.sale_end_time)


def test_a_cancelled_session_does_not_sell_even_inside_its_window(now: datetime) -> None:
    session = make_session(now)
    session.cancel()
    assert session.sale_state(now + timedelta(hours=1)) is SaleState.CANCELLED
    with pytest.raises(SaleNotOpen):
        session.ensure_on_sale(now + timedelta(hours=1))


def test_a_session_cannot_be_cancelled_twice(now: datetime) -> None:
    session = make_session(now)
    session.cancel()
    with pytest.raises(InvalidTransition):
        session.cancel()


@pytest.mark.parametrize(
    "changes",
    [
        {"end_time_offset": timedelta(0)},
        {"end_time_offset": -timedelta(hours=1)},
        {"sale_end_offset": timedelta(0)},
        {"sale_end_after_session_end": True},
    ],
    ids=["ends-when-it-starts", "ends-before-it-starts", "empty-sale-window", "sale-after-end"],
)
def test_sessions_with_impossible_times_are_refused(now: datetime, changes: dict[str, Any]) -> None:
    start = now + timedelta(days=10)
    fields: dict[str, Any] = {}
    if "end_time_offset" in changes:
        fields["end_time"] = start + changes["end_time_offset"]
    if "sale_end_offset" in changes:
        fields["sale_end_time"] = now + changes["sale_end_offset"]
    if "sale_end_after_session_end" in changes:
        fields["sale_end_time"] = start + timedelta(hours=4)
    with pytest.raises(ValidationError):
        make_session(now, **fields)


def test_session_times_must_be_timezone_aware(now: datetime) -> None:
    with pytest.raises(ValidationError, match="timezone-aware"):
        make_session(now, sale_start_time=now.replace(tzinfo=None))


@pytest.mark.parametrize("limit", [0, -1, 101, True, 2.0])
def test_max_seats_per_order_must_be_1_to_100(now: datetime, limit: Any) -> None:
    with pytest.raises(ValidationError):
        make_session(now, max_seats_per_order=limit)


@pytest.mark.parametrize("limit", [1, 100])
def test_max_seats_per_order_accepts_its_bounds(now: datetime, limit: int) -> None:
    assert make_session(now, max_seats_per_order=limit).max_seats_per_order == limit


def test_a_challenge_is_required_only_of_a_session_with_a_waiting_room(now: datetime) -> None:
    with pytest.raises(ValidationError, match="challenge_required needs queue_enabled"):
        make_session(now, challenge_required=True)
    with pytest.raises(ValidationError, match="challenge_required needs queue_enabled"):
        make_session(now, challenge_required=True, queue_enabled=False)
    guarded = make_session(now, challenge_required=True, queue_enabled=True)
    assert (guarded.queue_enabled, guarded.challenge_required) == (True, True)


def test_a_session_requires_no_challenge_unless_asked(now: datetime) -> None:
    assert make_session(now).challenge_required is False
    assert make_session(now, queue_enabled=True).challenge_required is False


# --- events -------------------------------------------------------------------------


def test_an_event_is_managed_by_its_organizer_only(now: datetime) -> None:
    organizer = UserId(UUID(int=5))
    event = Event(
        event_id=EVENT,
        venue_id=VenueId(UUID(int=2)),
        organizer_id=organizer,
        name="Gig",
        created_at=now,
    )
    assert event.is_managed_by(organizer)
    assert not event.is_managed_by(UserId(UUID(int=6)))


def test_a_cancelled_event_stays_cancelled(now: datetime) -> None:
    event = Event(
        event_id=EVENT,
        venue_id=VenueId(UUID(int=2)),
        organizer_id=UserId(UUID(int=5)),
        name="Gig",
        created_at=now,
    )
    event.cancel()
    assert event.status is EventStatus.CANCELLED
    with pytest.raises(InvalidTransition):
        event.cancel()


def test_an_event_needs_a_name(now: datetime) -> None:
    with pytest.raises(ValidationError):
        Event(
            event_id=EVENT,
            venue_id=VenueId(UUID(int=2)),
            organizer_id=UserId(UUID(int=5)),
            name=" ",
            created_at=now,
        )


# --- price categories and price lists ----------------------------------------------


def test_every_seat_sells_at_the_price_of_its_areas_category() -> None:
    prices = (
        PriceList()
        .with_category(category({"A"}, "2800"), SEAT_MAP)
        .with_category(category({"B", "C"}, "800.50"), SEAT_MAP)
    )
    assert prices.price_of(SeatId("A-1-2")) == Money("2800", "TWD")
    assert prices.price_of(SeatId("B-1-1")) == Money("800.50", "TWD")
    assert prices.price_of(SeatId("C-1-1")) == Money("800.50", "TWD")


def test_a_seat_in_an_area_nobody_priced_cannot_be_sold() -> None:
    prices = PriceList().with_category(category({"A"}), SEAT_MAP)
    with pytest.raises(SeatNotPriced):
        prices.price_of(SeatId("B-1-1"))


def test_an_area_may_be_priced_once_only() -> None:
    prices = PriceList().with_category(category({"A", "B"}), SEAT_MAP)
    with pytest.raises(AreaAlreadyPriced):
        prices.with_category(category({"B", "C"}), SEAT_MAP)
    assert prices.category_of_area("C") is None


def test_adding_a_category_leaves_the_old_price_list_alone() -> None:
    empty = PriceList()
    priced = empty.with_category(category({"A"}), SEAT_MAP)
    assert empty.categories == ()
    assert len(priced.categories) == 1


def test_a_category_for_an_area_not_on_the_map_is_refused() -> None:
    with pytest.raises(ValidationError):
        PriceList().with_category(category({"Z"}), SEAT_MAP)


def test_all_categories_of_an_event_use_one_currency() -> None:
    prices = PriceList().with_category(category({"A"}), SEAT_MAP)
    with pytest.raises(CurrencyOfEventDiffers, match="one currency"):
        prices.with_category(category({"B"}, currency="USD"), SEAT_MAP)


@pytest.mark.parametrize(
    "changes",
    [
        {"price": Money("-0.01", "TWD")},
        {"quota": -1},
        {"quota": True},
        {"name": "  "},
        {"area_ids": set()},
        {"area_ids": "AB"},
    ],
    ids=[
        "negative-price",
        "negative-quota",
        "bool-quota",
        "blank-name",
        "no-areas",
        "string-of-areas",
    ],
)
def test_invalid_price_categories_are_refused(changes: dict[str, Any]) -> None:
    areas = changes.pop("area_ids", {"A"})
    with pytest.raises(ValidationError):
        category(areas, **changes)


def test_a_free_category_is_allowed() -> None:
    assert category({"A"}, "0").price == Money.zero("TWD")


def test_a_quota_allows_exactly_its_number_of_seats() -> None:
    limited = category({"A"}, quota=10)
    limited.check_quota(taken=8, requested=2)
    with pytest.raises(QuotaExhausted, match="2 of its 10"):
        limited.check_quota(taken=8, requested=3)


def test_a_zero_quota_sells_nothing_and_no_quota_sells_everything() -> None:
    with pytest.raises(QuotaExhausted):
        category({"A"}, quota=0).check_quota(taken=0, requested=1)
    category({"A"}).check_quota(taken=1_000_000, requested=100)
