from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest

from openticket.domain.shared import AreaId, SeatId, ValidationError, VenueId
from openticket.domain.venue import (
    MAX_SEATS_PER_VENUE,
    Area,
    Row,
    SeatMap,
    SeatPosition,
    UnknownSeats,
    Venue,
    make_seat_id,
    parse_seat_id,
)


def small_map() -> SeatMap:
    return SeatMap(
        [
            Area("A", "Stalls", [Row("1", [1, 2, 3]), Row("2", [1, 2])]),
            Area("VIP_1", "Box", [Row("R", [10])]),
        ]
    )


# --- seat ids -----------------------------------------------------------------------


def test_a_seat_id_is_area_row_and_number_joined_by_dashes() -> None:
    assert make_seat_id("A", "3", 12) == "A-3-12"
    assert parse_seat_id("A-3-12") == SeatPosition(AreaId("A"), "3", 12)


def test_a_seat_id_parses_back_into_the_parts_it_was_made_of() -> None:
    seat = make_seat_id("Upper_2", "AA", 99_999)
    position = parse_seat_id(seat)
    assert (position.area_id, position.row, position.number) == ("Upper_2", "AA", 99_999)
    assert position.seat_id == seat


@pytest.mark.parametrize(
    "seat_id",
    [
        "",
        "A",
        "A-1",
        "A-1-1-1",
        "A--1",
        "-1-1",
        "A-1-",
        "A-1-x",
        "A-1-01",
        "A-1-0",
        "A-1-+1",
        "A-1- 1",
        "A-1-100000",
        "A-1-١",
        "A b-1-1",
        "A\n-1-1",
        "A-1\n-1",
        "A-1-1\n",
        "A" * 17 + "-1-1",
        "A-" + "1" * 17 + "-1",
        "A-1-" + "9" * 5000,
    ],
)
def test_malformed_seat_ids_are_refused(seat_id: str) -> None:
    with pytest.raises(ValidationError):
        parse_seat_id(seat_id)


def test_a_seat_id_must_be_a_string() -> None:
    not_a_string: Any = 12
    with pytest.raises(ValidationError):
        parse_seat_id(not_a_string)


@pytest.mark.parametrize(
    ("area", "row", "number"),
    [("A-B", "1", 1), ("A", "1-2", 1), ("", "1", 1), ("A", "", 1), ("A", "1", 0), ("A", "1", True)],
)
def test_seat_ids_are_not_made_from_invalid_parts(area: str, row: str, number: Any) -> None:
    with pytest.raises(ValidationError):
        make_seat_id(area, row, number)


# --- seat maps ----------------------------------------------------------------------


def test_capacity_counts_every_seat_of_every_area() -> None:
    seat_map = small_map()
    assert seat_map.area("A").capacity == 5
    assert seat_map.capacity == 6
    assert len(list(seat_map.seat_ids())) == 6


def test_every_seat_on_the_map_knows_its_area() -> None:
    seat_map = small_map()
    assert seat_map.area_of(SeatId("A-2-2")) == "A"
    assert "VIP_1-R-10" in seat_map
    assert "A-3-1" not in seat_map


def test_a_seat_not_on_the_map_is_unknown() -> None:
    with pytest.raises(UnknownSeats) as info:
        small_map().area_of(SeatId("A-1-4"))
    assert info.value.seat_ids == ("A-1-4",)


def test_require_seats_names_every_unknown_seat_and_only_those() -> None:
    with pytest.raises(UnknownSeats) as info:
        small_map().require_seats(tuple(map(SeatId, ("A-1-1", "A-9-9", "B-1-1"))))
    assert info.value.seat_ids == ("A-9-9", "B-1-1")


def test_an_area_that_is_not_on_the_map_is_refused() -> None:
    with pytest.raises(ValidationError):
        small_map().area("B")


def test_area_ids_may_not_repeat_within_a_map() -> None:
    with pytest.raises(ValidationError, match="area ids repeat"):
        SeatMap([Area("A", "one", [Row("1", [1])]), Area("A", "two", [Row("1", [2])])])


def test_row_labels_may_not_repeat_within_an_area() -> None:
    with pytest.raises(ValidationError, match="row labels repeat"):
        Area("A", "Stalls", [Row("1", [1]), Row("1", [2])])


def test_seat_numbers_may_not_repeat_within_a_row() -> None:
    with pytest.raises(ValidationError, match="repeat within a row"):
        Row("1", [1, 2, 1])


def test_the_same_row_label_and_number_may_appear_in_two_areas() -> None:
    seat_map = SeatMap([Area("A", "a", [Row("1", [1])]), Area("B", "b", [Row("1", [1])])])
    assert seat_map.capacity == 2


@pytest.mark.parametrize(
    "build",
    [
        lambda: SeatMap([]),
        lambda: Area("A", "empty", []),
        lambda: Row("1", []),
        lambda: Row("1-2", [1]),
        lambda: Area("A-1", "dash", [Row("1", [1])]),
    ],
)
def test_empty_or_badly_named_parts_are_refused(build: Any) -> None:
    with pytest.raises(ValidationError):
        build()


def test_a_map_larger_than_the_venue_limit_is_refused() -> None:
    full_row = list(range(1, 100_000))
    rows = [Row(str(i), full_row) for i in range(MAX_SEATS_PER_VENUE // len(full_row) + 1)]
    with pytest.raises(ValidationError, match="at most"):
        SeatMap([Area("A", "huge", rows)])


def test_a_venue_holds_as_many_people_as_its_map_has_seats() -> None:
    venue = Venue(
        venue_id=VenueId(UUID(int=1)),
        name="Arena",
        address={"city": "Taipei"},
        seat_map=small_map(),
    )
    assert venue.capacity == 6


def test_a_venue_needs_a_name() -> None:
    with pytest.raises(ValidationError):
        Venue(venue_id=VenueId(UUID(int=1)), name="  ", address={}, seat_map=small_map())
