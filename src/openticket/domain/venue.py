"""Venue context: venues and their seat maps (areas → rows → seats).

A seat is named ``"{area_id}-{row}-{number}"``; area ids and row labels are short
strings without ``-`` so a seat id always splits back into its three parts.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from enum import StrEnum
from types import MappingProxyType

import attrs

from openticket.domain.shared import (
    Aggregate,
    AreaId,
    SeatId,
    ValidationError,
    VenueId,
    human_text,
)

# ASCII only: labels are part of seat ids, so no lookalike or invisible character fits
_LABEL = re.compile(r"[A-Za-z0-9_]{1,16}")
MAX_SEAT_NUMBER = 99_999
MAX_SEATS_PER_VENUE = 500_000
MAX_NAME_LENGTH = 200
"""Of a venue and of an area."""
MAX_ADDRESS_FIELDS = 20
MAX_ADDRESS_TEXT_LENGTH = 200
"""Of each key and each value of an address."""


class UnknownSeats(ValidationError):
    """Seat ids that are not on the seat map."""

    code = "unknown_seats"

    def __init__(self, seat_ids: tuple[str, ...]) -> None:
        super().__init__(f"not on the seat map: {', '.join(seat_ids)}")
        self.seat_ids = seat_ids


def _check_label(kind: str, value: object) -> str:
    if not isinstance(value, str) or not _LABEL.fullmatch(value):
        raise ValidationError(f"{kind} {value!r} must be 1-16 letters, digits or '_' (no '-')")
    return value


@attrs.frozen
class SeatPosition:
    """Where a seat is: its area, row label and number within the row."""

    area_id: AreaId
    row: str
    number: int

    @property
    def seat_id(self) -> SeatId:
        """The canonical seat id ``"{area}-{row}-{number}"``."""
        return SeatId(f"{self.area_id}-{self.row}-{self.number}")


def _check_number(number: object) -> int:
    if (
        isinstance(number, bool)
        or not isinstance(number, int)
        or not 1 <= number <= MAX_SEAT_NUMBER
    ):
        raise ValidationError(f"seat number {number!r} must be 1..{MAX_SEAT_NUMBER}")
    return number


def make_seat_id(area_id: str, row: str, number: int) -> SeatId:
    """Build and validate a seat id from its parts."""
    _check_label("area id", area_id)
    _check_label("row", row)
    _check_number(number)
    return SeatId(f"{area_id}-{row}-{number}")


def parse_seat_id(seat_id: str) -> SeatPosition:
    """Split ``"A-3-12"`` into area ``A``, row ``3``, number ``12``; refuse malformed ids."""
    if not isinstance(seat_id, str):
        raise ValidationError("a seat id must be a string")
    parts = seat_id.split("-")
    # the length check keeps int() away from huge digit strings (it raises ValueError there)
    if (
        len(parts) != 3
        or not parts[2].isdecimal()
        or len(parts[2]) > len(str(MAX_SEAT_NUMBER))
        or parts[2] != str(int(parts[2]))
    ):
        raise ValidationError(f"seat id {seat_id!r} is not of the form AREA-ROW-NUMBER")
    area, row, number = parts[0], parts[1], int(parts[2])
    make_seat_id(area, row, number)
    return SeatPosition(AreaId(area), row, number)


def area_of(seat_id: str) -> AreaId:
    """The area of a seat id already checked (``"A-3-12"`` -> ``A``), without checking it again.

    With :func:`make_seat_id` and :func:`parse_seat_id`, the one place that knows how a
    seat id is built. Orders, tickets and lock operations carry their area as data;
    this serves readers that hold only seat ids (a seat-status snapshot).
    """
    return AreaId(seat_id.partition("-")[0])


def _seat_numbers(value: Iterable[int]) -> tuple[int, ...]:
    numbers = tuple(_check_number(n) for n in value)
    if not numbers:
        raise ValidationError("a row needs at least one seat")
    if len(set(numbers)) != len(numbers):
        raise ValidationError("seat numbers repeat within a row")
    return numbers


def _row_label(value: str) -> str:
    return _check_label("row", value)


def area_id_of(value: object) -> AreaId:
    """``value`` as an area id: 1-16 ASCII letters, digits or ``_`` (``ValidationError``)."""
    return AreaId(_check_label("area id", value))


def _area_name(value: object) -> str:
    return human_text(value, "an area name", max_length=MAX_NAME_LENGTH)


@attrs.frozen
class Row:
    """One row of an area: a label and its seat numbers."""

    row: str = attrs.field(converter=_row_label)
    seats: tuple[int, ...] = attrs.field(converter=_seat_numbers)


def _rows(value: Iterable[Row]) -> tuple[Row, ...]:
    rows = tuple(value)
    if not rows:
        raise ValidationError("an area needs at least one row")
    labels = [r.row for r in rows]
    if len(set(labels)) != len(labels):
        raise ValidationError("row labels repeat within an area")
    return rows


@attrs.frozen
class Area:
    """A section of the venue (one seat-hold partition per session)."""

    area_id: AreaId = attrs.field(converter=area_id_of)
    name: str = attrs.field(converter=_area_name)
    rows: tuple[Row, ...] = attrs.field(converter=_rows)

    def seat_ids(self) -> Iterator[SeatId]:
        """Every seat of the area, row by row."""
        for row in self.rows:
            for number in row.seats:
                yield SeatId(f"{self.area_id}-{row.row}-{number}")

    @property
    def capacity(self) -> int:
        """How many seats the area has."""
        return sum(len(row.seats) for row in self.rows)


def _areas(value: Iterable[Area]) -> tuple[Area, ...]:
    areas = tuple(value)
    if not areas:
        raise ValidationError("a seat map needs at least one area")
    ids = [a.area_id for a in areas]
    if len(set(ids)) != len(ids):
        raise ValidationError("area ids repeat within a seat map")
    if sum(a.capacity for a in areas) > MAX_SEATS_PER_VENUE:
        raise ValidationError(f"a seat map holds at most {MAX_SEATS_PER_VENUE} seats")
    return areas


@attrs.frozen
class SeatMap:
    """The seats of a venue, by area and row. Immutable once built."""

    areas: tuple[Area, ...] = attrs.field(converter=_areas)
    _index: Mapping[SeatId, AreaId] = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        index = {seat: area.area_id for area in self.areas for seat in area.seat_ids()}
        object.__setattr__(self, "_index", MappingProxyType(index))

    @property
    def capacity(self) -> int:
        """How many seats the venue has."""
        return len(self._index)

    def __contains__(self, seat_id: object) -> bool:
        return seat_id in self._index

    def area(self, area_id: str) -> Area:
        """The area called ``area_id``; a ``ValidationError`` if there is none."""
        for area in self.areas:
            if area.area_id == area_id:
                return area
        raise ValidationError(f"no area {area_id!r} on the seat map")

    def area_of(self, seat_id: SeatId) -> AreaId:
        """The area a seat belongs to; ``UnknownSeats`` if it is not on the map."""
        try:
            return self._index[seat_id]
        except KeyError:
            raise UnknownSeats((seat_id,)) from None

    def seat_ids(self) -> Iterator[SeatId]:
        """Every seat of the venue."""
        return iter(self._index)

    def require_seats(self, seat_ids: tuple[SeatId, ...]) -> None:
        """Refuse (``UnknownSeats``) any id not on the map."""
        unknown = tuple(s for s in seat_ids if s not in self._index)
        if unknown:
            raise UnknownSeats(unknown)


class VenueStatus(StrEnum):
    """Whether a venue can host new events."""

    ACTIVE = "active"
    ARCHIVED = "archived"


def _address(value: Mapping[str, str]) -> Mapping[str, str]:
    if not isinstance(value, Mapping):
        raise ValidationError("an address is a mapping of fields to values")
    if len(value) > MAX_ADDRESS_FIELDS:
        raise ValidationError(f"an address has at most {MAX_ADDRESS_FIELDS} fields")
    for key, text in value.items():
        for part, what in ((key, "an address field"), (text, f"address field {key!r}")):
            human_text(part, what, max_length=MAX_ADDRESS_TEXT_LENGTH, required=False)
    return MappingProxyType(dict(value))


def _venue_name(value: object) -> str:
    return human_text(value, "a venue name", max_length=MAX_NAME_LENGTH)


@attrs.define(kw_only=True)
class Venue(Aggregate):
    """A place with a seat map. Capacity is the number of seats on the map."""

    venue_id: VenueId
    name: str = attrs.field(converter=_venue_name)
    address: Mapping[str, str] = attrs.field(converter=_address)
    seat_map: SeatMap
    status: VenueStatus = VenueStatus.ACTIVE

    @property
    def capacity(self) -> int:
        """How many seats the venue has."""
        return self.seat_map.capacity
