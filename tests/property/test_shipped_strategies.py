"""The shipped strategies only ever build values the domain accepts, within their bounds."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from openticket.adapters.memory.clock import SequentialIdGenerator
from openticket.domain.identity import check_password_policy, normalise_email
from openticket.domain.ordering import Order, OrderItem
from openticket.domain.seating import SeatInventory
from openticket.domain.shared import AreaId, HoldId, Money, OrderId, SessionId, UserId, total_of
from openticket.domain.venue import Area, Row, SeatMap, make_seat_id, parse_seat_id
from openticket.testing import strategies as ots

LABEL = re.compile(r"[A-Za-z0-9_]{1,16}")
NOW = datetime(2030, 1, 1, tzinfo=UTC)


@given(ots.area_ids(), ots.row_labels(), ots.seat_numbers())
def test_area_ids_and_row_labels_make_seat_ids_that_parse_back(
    area: str, row: str, number: int
) -> None:
    assert LABEL.fullmatch(area)
    assert LABEL.fullmatch(row)
    position = parse_seat_id(make_seat_id(area, row, number))
    assert (position.area_id, position.row, position.number) == (area, row, number)


@given(ots.seat_ids(area_id="Stalls"))
def test_seat_ids_in_a_given_area_stay_in_it(seat_id: str) -> None:
    assert parse_seat_id(seat_id).area_id == "Stalls"


@given(ots.seat_maps(max_areas=2, max_rows=2, max_seats_per_row=3), st.data())
def test_sampled_seats_are_on_the_map_and_in_the_area_asked_for(
    seat_map: SeatMap, data: st.DataObject
) -> None:
    assert data.draw(ots.sampled_seats(seat_map)) in seat_map
    area = seat_map.areas[-1]
    seat = data.draw(ots.sampled_seats(seat_map, area_id=area.area_id))
    assert seat_map.area_of(seat) == area.area_id


@given(ots.seat_maps(max_areas=3, max_rows=2, max_seats_per_row=5))
def test_seat_maps_are_valid_and_within_their_bounds(seat_map: SeatMap) -> None:
    assert 1 <= len(seat_map.areas) <= 3
    for area in seat_map.areas:
        assert 1 <= len(area.rows) <= 2
        assert all(1 <= len(row.seats) <= 5 for row in area.rows)
        for seat in area.seat_ids():
            assert seat_map.area_of(seat) == area.area_id
            assert "-" not in area.area_id
    assert seat_map.capacity == sum(a.capacity for a in seat_map.areas)
    assert SeatMap(seat_map.areas) == seat_map


@given(
    ots.seat_maps(max_areas=3, max_rows=3, max_seats_per_row=6).flatmap(
        lambda seat_map: st.tuples(st.just(seat_map), ots.hold_requests(seat_map, max_seats=4))
    )
)
def test_hold_requests_are_distinct_seats_of_one_area_on_the_map(
    map_and_request: tuple[SeatMap, tuple[str, ...]],
) -> None:
    seat_map, request = map_and_request
    assert 1 <= len(request) <= 4
    assert len(set(request)) == len(request)
    assert all(seat in seat_map for seat in request)
    assert len({parse_seat_id(seat).area_id for seat in request}) == 1


@given(ots.hold_requests(["A-1-1", "A-1-2", "B-1-1", "B-1-2", "B-1-3"], max_seats=2))
def test_hold_requests_from_seat_ids_that_span_areas_pick_one_area(
    request: tuple[str, ...],
) -> None:
    assert 1 <= len(request) <= 2
    assert len({seat.split("-")[0] for seat in request}) == 1


@given(ots.seat_maps(max_areas=2, max_rows=2, max_seats_per_row=4), st.data())
def test_a_hold_request_from_the_strategy_is_granted_on_an_empty_inventory(
    seat_map: SeatMap, data: st.DataObject
) -> None:
    request = data.draw(ots.hold_requests(seat_map, max_seats=10))
    area = seat_map.area(parse_seat_id(request[0]).area_id)
    ids = SequentialIdGenerator()
    inventory = SeatInventory(
        session_id=SessionId(ids.new_id()),
        area_id=area.area_id,
        seat_ids=frozenset(area.seat_ids()),
    )
    hold = inventory.hold(
        hold_id=HoldId(ids.new_id()),
        holder_id=UserId(ids.new_id()),
        order_id=OrderId(ids.new_id()),
        seat_ids=request,
        fencing_token=1,
        now=NOW,
        ids=ids.new_id,
        max_seats=10,
    )
    assert hold.seat_ids == request


@given(ots.money("JPY", min_amount="0.005", max_amount=3))
def test_money_is_non_negative_with_two_places_within_bounds(amount: Money) -> None:
    assert amount.currency == "JPY"
    assert amount.amount.as_tuple().exponent == -2
    assert Decimal("0.01") <= amount.amount <= Decimal(3)


@given(ots.currencies().flatmap(lambda c: st.lists(ots.money(c), min_size=1, max_size=5)))
def test_money_in_one_currency_adds_up_exactly(amounts: list[Money]) -> None:
    total = total_of(amounts, amounts[0].currency)
    assert total.amount == sum((m.amount for m in amounts), Decimal(0))


@given(ots.aware_datetimes(min_value=NOW, max_value=NOW + timedelta(days=1)))
def test_aware_datetimes_are_utc_and_within_bounds(when: datetime) -> None:
    assert when.utcoffset() == timedelta(0)
    assert NOW <= when <= NOW + timedelta(days=1)


@given(
    ots.aware_datetimes(
        min_value=NOW,
        max_value=NOW + timedelta(hours=1),
        timezones=st.sampled_from([timezone(timedelta(hours=8)), timezone(timedelta(hours=-5))]),
    )
)
def test_aware_datetimes_in_other_zones_are_the_same_moments(when: datetime) -> None:
    assert when.utcoffset() in (timedelta(hours=8), timedelta(hours=-5))
    assert NOW <= when <= NOW + timedelta(hours=1)


@given(ots.order_items(["A-1-1", "A-1-2", "A-1-3"], currency="USD", max_items=2))
def test_order_items_open_a_valid_order(items: tuple[OrderItem, ...]) -> None:
    ids = SequentialIdGenerator()
    order = Order.create(
        order_id=OrderId(ids.new_id()),
        user_id=UserId(ids.new_id()),
        session_id=SessionId(ids.new_id()),
        area_id=AreaId("A"),
        hold_id=HoldId(ids.new_id()),
        fencing_token=1,
        items=items,
        now=NOW,
        expires_at=NOW + timedelta(minutes=2),
        ids=ids.new_id,
    )
    assert 1 <= len(order.items) <= 2
    assert order.total.currency == "USD"


@given(ots.emails(), ots.passwords())
def test_emails_and_passwords_pass_the_identity_rules(email: str, password: str) -> None:
    assert normalise_email(email) == email
    check_password_policy(password)


@pytest.mark.parametrize(
    "make",
    [
        lambda: ots.seat_maps(max_areas=0),
        lambda: ots.seat_maps(max_areas=1000, max_rows=1000, max_seats_per_row=1000),
        lambda: ots.hold_requests([]),
        lambda: ots.hold_requests(["A-1"]),
        lambda: ots.hold_requests(["A-1-1"], max_seats=0),
        lambda: ots.money(min_amount=5, max_amount=1),
        lambda: ots.money(min_amount=-1),
        lambda: ots.money(max_amount="lots"),
        lambda: ots.money(min_amount="0.001", max_amount="0.009"),
        lambda: ots.money(currency="twd"),
        lambda: ots.seat_numbers(max_value=100_000),
        lambda: ots.seat_ids(area_id="A-1"),
        lambda: ots.areas(area_id=""),
        lambda: ots.rows(label="x" * 17),
        lambda: ots.order_items(["A-1-1"], currency="usd"),
        lambda: ots.order_items([]),
        lambda: ots.sampled_seats(SeatMap([Area("A", "a", [Row("1", [1])])]), area_id="B"),
        lambda: ots.aware_datetimes(min_value=NOW, max_value=NOW - timedelta(seconds=1)),
    ],
)
def test_impossible_arguments_are_refused_when_the_strategy_is_made(
    make: Callable[[], object],
) -> None:
    with pytest.raises(InvalidArgument):
        make()
