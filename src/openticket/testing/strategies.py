"""Hypothesis strategies for OpenTicket's domain values, for integrators' own tests.

Every strategy builds values the domain accepts (a valid seat map, a hold request
inside one area, a non-negative price with two decimal places), so a test can spend
its examples on behaviour instead of on rejected input. They shrink towards small,
readable examples: area ``"0"``, row ``"0"``, seat 1, an amount of ``0.00``.

This module imports hypothesis, so it belongs to tests, never to production code::

    from hypothesis import given, strategies as st
    from openticket.testing.strategies import hold_requests, seat_maps

    @given(seat_maps().flatmap(lambda m: st.tuples(st.just(m), hold_requests(m))))
    def test_a_request_stays_in_one_area(map_and_request): ...
"""

from __future__ import annotations

import string
from collections.abc import Iterable
from datetime import UTC, datetime, tzinfo
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, InvalidOperation

from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from openticket.domain.identity import (
    MAX_PASSWORD_LENGTH,
    MIN_PASSWORD_LENGTH,
)
from openticket.domain.ordering import OrderItem
from openticket.domain.shared import (
    AreaId,
    HoldId,
    Money,
    OrderId,
    PaymentId,
    SeatId,
    SessionId,
    TicketId,
    UserId,
    ValidationError,
)
from openticket.domain.venue import (
    MAX_SEAT_NUMBER,
    MAX_SEATS_PER_VENUE,
    Area,
    Row,
    SeatMap,
    make_seat_id,
    parse_seat_id,
)

__all__ = [
    "area_ids",
    "areas",
    "aware_datetimes",
    "currencies",
    "emails",
    "hold_ids",
    "hold_requests",
    "money",
    "order_ids",
    "order_items",
    "passwords",
    "payment_ids",
    "row_labels",
    "rows",
    "sampled_seats",
    "seat_ids",
    "seat_maps",
    "seat_numbers",
    "session_ids",
    "ticket_ids",
    "user_ids",
]

LABEL_ALPHABET = string.digits + string.ascii_uppercase + string.ascii_lowercase + "_"
"""The characters of an area id or a row label (never ``-``, which separates a seat id)."""

MAX_LABEL_LENGTH = 16
DEFAULT_MAX_AMOUNT = Decimal("1000000.00")
_EARLIEST = datetime(2000, 1, 1)  # noqa: DTZ001 - hypothesis bounds are naive by contract
_LATEST = datetime(2100, 1, 1)  # noqa: DTZ001 - hypothesis bounds are naive by contract


def _require_positive(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidArgument(f"{name}={value!r} must be a positive int")


def _require_label(name: str, value: str | None) -> None:
    """Refuse a fixed area id or row label now, not at the first draw."""
    if value is None:
        return
    area, row = (value, "1") if name == "area_id" else ("A", value)
    try:
        make_seat_id(area, row, 1)
    except ValidationError as e:
        raise InvalidArgument(f"{name}={value!r}: {e.message}") from e


# --- venue: area ids, rows, seat ids, seat maps -----------------------------------


def area_ids() -> st.SearchStrategy[AreaId]:
    """Valid area ids: 1-16 characters of ``[A-Za-z0-9_]``, never a ``-``."""
    return st.text(LABEL_ALPHABET, min_size=1, max_size=MAX_LABEL_LENGTH).map(AreaId)


def row_labels() -> st.SearchStrategy[str]:
    """Valid row labels: 1-16 characters of ``[A-Za-z0-9_]``, never a ``-``."""
    return st.text(LABEL_ALPHABET, min_size=1, max_size=MAX_LABEL_LENGTH)


def seat_numbers(max_value: int = MAX_SEAT_NUMBER) -> st.SearchStrategy[int]:
    """Seat numbers within a row: ``1..max_value`` (at most ``MAX_SEAT_NUMBER``)."""
    _require_positive("max_value", max_value)
    if max_value > MAX_SEAT_NUMBER:
        raise InvalidArgument(f"max_value={max_value} is above MAX_SEAT_NUMBER={MAX_SEAT_NUMBER}")
    return st.integers(min_value=1, max_value=max_value)


def seat_ids(area_id: str | None = None) -> st.SearchStrategy[SeatId]:
    """Well-formed seat ids ``"{area}-{row}-{number}"``, in ``area_id`` if one is given.

    Well-formed is not the same as *on a seat map*: draw from a map's own seats (see
    :func:`hold_requests`) when the seat has to exist.
    """
    _require_label("area_id", area_id)
    areas_st = area_ids() if area_id is None else st.just(AreaId(area_id))
    return st.builds(make_seat_id, areas_st, row_labels(), seat_numbers())


def rows(*, max_seats_per_row: int = 8, label: str | None = None) -> st.SearchStrategy[Row]:
    """A valid ``Row``: a label and 1..``max_seats_per_row`` distinct seat numbers.

    Numbers are usually a run ``1..n`` (the common venue), sometimes scattered.
    """
    _require_positive("max_seats_per_row", max_seats_per_row)
    _require_label("label", label)
    labels = row_labels() if label is None else st.just(label)
    return st.builds(Row, labels, _row_seats(max_seats_per_row))


def _row_seats(max_seats_per_row: int) -> st.SearchStrategy[list[int]]:
    run = st.integers(1, max_seats_per_row).map(lambda n: list(range(1, n + 1)))
    scattered = st.lists(seat_numbers(), min_size=1, max_size=max_seats_per_row, unique=True)
    return run | scattered


@st.composite
def _area(
    draw: st.DrawFn, area_id: str | None, max_rows: int, row_seats: st.SearchStrategy[list[int]]
) -> Area:
    the_id = draw(area_ids()) if area_id is None else area_id
    labels = draw(st.lists(row_labels(), min_size=1, max_size=max_rows, unique=True))
    the_rows = [Row(label, draw(row_seats)) for label in labels]
    name = draw(st.sampled_from([f"Area {the_id}", f"Section {the_id}", the_id]))
    return Area(the_id, name, the_rows)


def areas(
    *, area_id: str | None = None, max_rows: int = 4, max_seats_per_row: int = 8
) -> st.SearchStrategy[Area]:
    """A valid ``Area`` (called ``area_id`` if given) of 1..``max_rows`` distinct rows."""
    _require_positive("max_rows", max_rows)
    _require_positive("max_seats_per_row", max_seats_per_row)
    _require_label("area_id", area_id)
    return _area(area_id, max_rows, _row_seats(max_seats_per_row))


@st.composite
def _seat_map(draw: st.DrawFn, max_areas: int, max_rows: int, max_seats_per_row: int) -> SeatMap:
    ids = draw(st.lists(area_ids(), min_size=1, max_size=max_areas, unique=True))
    row_seats = _row_seats(max_seats_per_row)  # built once: strategies are costly to build
    return SeatMap([draw(_area(the_id, max_rows, row_seats)) for the_id in ids])


def seat_maps(
    *, max_areas: int = 3, max_rows: int = 4, max_seats_per_row: int = 8
) -> st.SearchStrategy[SeatMap]:
    """Valid ``SeatMap``s: 1..``max_areas`` areas → 1..``max_rows`` rows → 1..n seats.

    Area ids are distinct within the map, row labels within an area, seat numbers
    within a row. The bounds' product may not pass ``MAX_SEATS_PER_VENUE``.
    """
    for name, value in (
        ("max_areas", max_areas),
        ("max_rows", max_rows),
        ("max_seats_per_row", max_seats_per_row),
    ):
        _require_positive(name, value)
    if max_areas * max_rows * max_seats_per_row > MAX_SEATS_PER_VENUE:
        raise InvalidArgument(f"these bounds allow more than {MAX_SEATS_PER_VENUE} seats")
    return _seat_map(max_areas, max_rows, max_seats_per_row)


def _seats_by_area(seats: SeatMap | Iterable[str]) -> dict[AreaId, list[SeatId]]:
    if isinstance(seats, SeatMap):
        return {a.area_id: list(a.seat_ids()) for a in seats.areas}
    by_area: dict[AreaId, list[SeatId]] = {}
    for seat in seats:
        try:
            area_id = parse_seat_id(seat).area_id
        except ValidationError as e:
            raise InvalidArgument(f"not a seat id: {seat!r}") from e
        area = by_area.setdefault(area_id, [])
        if seat not in area:
            area.append(SeatId(seat))
    return by_area


@st.composite
def _hold_request(
    draw: st.DrawFn, requests_by_area: dict[AreaId, st.SearchStrategy[list[SeatId]]]
) -> tuple[SeatId, ...]:
    area = draw(st.sampled_from(sorted(requests_by_area)))
    return tuple(draw(requests_by_area[area]))


def hold_requests(
    seat_map_or_seat_ids: SeatMap | Iterable[str], *, max_seats: int = 10
) -> st.SearchStrategy[tuple[SeatId, ...]]:
    """Seats one buyer asks to hold: 1..``max_seats`` distinct seats of ONE area.

    ``seat_map_or_seat_ids`` is a ``SeatMap`` or any collection of valid seat ids (they
    may span areas; each request picks one area and stays in it, as a partition's
    request must). The collection is read once, when the strategy is made.
    """
    _require_positive("max_seats", max_seats)
    by_area = _seats_by_area(seat_map_or_seat_ids)
    if not by_area:
        raise InvalidArgument("hold_requests needs at least one seat to choose from")
    requests_by_area = {
        area: st.lists(
            st.sampled_from(seats), min_size=1, max_size=min(max_seats, len(seats)), unique=True
        )
        for area, seats in by_area.items()
    }
    return _hold_request(requests_by_area)


# --- money and time ---------------------------------------------------------------


def currencies() -> st.SearchStrategy[str]:
    """Currency codes the domain accepts (three capital letters), common ones first."""
    common = st.sampled_from(["TWD", "USD", "EUR", "JPY"])
    return common | st.text(string.ascii_uppercase, min_size=3, max_size=3)


def money(
    currency: str = "TWD",
    *,
    min_amount: Decimal | int | str = 0,
    max_amount: Decimal | int | str = DEFAULT_MAX_AMOUNT,
) -> st.SearchStrategy[Money]:
    """Non-negative ``Money`` in ``currency`` with exactly two decimal places.

    Amounts are decimals like ``Decimal("12.30")``, never floats; ``min_amount`` and
    ``max_amount`` bound them (inclusive, rounded inwards to a whole cent).
    """
    try:
        low, high = Decimal(min_amount), Decimal(max_amount)
    except InvalidOperation as e:
        raise InvalidArgument(f"bounds {min_amount!r}, {max_amount!r} are not numbers") from e
    if not low.is_finite() or not high.is_finite() or low < 0 or high < low:
        raise InvalidArgument(f"need 0 <= min_amount <= max_amount, got {low} and {high}")
    try:
        Money.zero(currency)
    except ValidationError as e:
        raise InvalidArgument(f"currency={currency!r}: {e.message}") from e
    low_cents = int((low * 100).to_integral_value(rounding=ROUND_CEILING))
    high_cents = int((high * 100).to_integral_value(rounding=ROUND_FLOOR))
    if high_cents < low_cents:
        raise InvalidArgument(f"no whole cent between {low} and {high}")
    amounts = st.decimals(
        min_value=Decimal(low_cents).scaleb(-2),
        max_value=Decimal(high_cents).scaleb(-2),
        places=2,
        allow_nan=False,
        allow_infinity=False,
    )
    # builds() keeps a failing example readable: Money(Decimal('12.30'), 'TWD')
    return st.builds(Money, amounts, st.just(currency))


def aware_datetimes(
    *,
    min_value: datetime | None = None,
    max_value: datetime | None = None,
    timezones: st.SearchStrategy[tzinfo] | None = None,
) -> st.SearchStrategy[datetime]:
    """Timezone-aware datetimes (UTC unless ``timezones`` is given), as the domain requires.

    ``min_value``/``max_value`` may be aware (they are converted to UTC wall time) or
    naive (read as UTC); by default the years 2000-2100.
    """

    def naive_utc(when: datetime | None, default: datetime) -> datetime:
        if when is None:
            return default
        if when.tzinfo is None:
            return when
        return when.astimezone(UTC).replace(tzinfo=None)

    low, high = naive_utc(min_value, _EARLIEST), naive_utc(max_value, _LATEST)
    if high < low:
        raise InvalidArgument(f"max_value={max_value} is before min_value={min_value}")
    if timezones is None:
        return st.datetimes(min_value=low, max_value=high, timezones=st.just(UTC))
    # bounds are UTC wall times: draw in UTC, then show the moment in another zone
    zones = timezones

    @st.composite
    def in_zone(draw: st.DrawFn) -> datetime:
        moment = draw(st.datetimes(min_value=low, max_value=high, timezones=st.just(UTC)))
        return moment.astimezone(draw(zones))

    return in_zone()


# --- ids --------------------------------------------------------------------------


def user_ids() -> st.SearchStrategy[UserId]:
    """Random ``UserId``s."""
    return st.uuids().map(UserId)


def session_ids() -> st.SearchStrategy[SessionId]:
    """Random ``SessionId``s."""
    return st.uuids().map(SessionId)


def hold_ids() -> st.SearchStrategy[HoldId]:
    """Random ``HoldId``s."""
    return st.uuids().map(HoldId)


def order_ids() -> st.SearchStrategy[OrderId]:
    """Random ``OrderId``s."""
    return st.uuids().map(OrderId)


def payment_ids() -> st.SearchStrategy[PaymentId]:
    """Random ``PaymentId``s."""
    return st.uuids().map(PaymentId)


def ticket_ids() -> st.SearchStrategy[TicketId]:
    """Random ``TicketId``s."""
    return st.uuids().map(TicketId)


# --- ordering and identity ----------------------------------------------------------


@st.composite
def _order_items(
    draw: st.DrawFn,
    seats: list[SeatId],
    prices: st.SearchStrategy[Money],
    max_items: int,
) -> tuple[OrderItem, ...]:
    chosen = draw(
        st.lists(
            st.sampled_from(seats), min_size=1, max_size=min(max_items, len(seats)), unique=True
        )
    )
    return tuple(OrderItem(seat, draw(prices)) for seat in chosen)


def order_items(
    seats: Iterable[str], *, currency: str = "TWD", max_items: int = 10
) -> st.SearchStrategy[tuple[OrderItem, ...]]:
    """The items of a valid order: 1..``max_items`` distinct ``seats``, each with a price.

    Every price is in ``currency``, as an order requires. Use :func:`hold_requests`
    first when the seats must also share an area.
    """
    _require_positive("max_items", max_items)
    prices = money(currency)
    distinct = list(dict.fromkeys(SeatId(s) for s in seats))
    if not distinct:
        raise InvalidArgument("order_items needs at least one seat to choose from")
    return _order_items(distinct, prices, max_items)


def emails() -> st.SearchStrategy[str]:
    """E-mail addresses the identity context accepts (already in normalised form)."""
    local = st.text(string.ascii_lowercase + string.digits + "._+", min_size=1, max_size=20)
    label = st.text(string.ascii_lowercase + string.digits, min_size=1, max_size=12)
    domain = st.lists(label, min_size=2, max_size=3).map(".".join)
    return st.builds(lambda lo, do: f"{lo}@{do}", local, domain)


def passwords() -> st.SearchStrategy[str]:
    """Passwords the policy accepts: 8-128 characters of text.

    No control, invisible or separator characters; the joiners U+200C/U+200D are text.
    """
    return st.text(
        st.characters(
            codec="utf-8",
            exclude_categories=("Cs", "Cc", "Cf", "Zl", "Zp"),
            include_characters="\u200c\u200d",
        ),
        min_size=MIN_PASSWORD_LENGTH,
        max_size=MAX_PASSWORD_LENGTH,
    )


def sampled_seats(seat_map: SeatMap, *, area_id: str | None = None) -> st.SearchStrategy[SeatId]:
    """One seat that is on ``seat_map`` (in ``area_id`` if given)."""
    if area_id is None:
        return st.sampled_from(list(seat_map.seat_ids()))
    try:
        area = seat_map.area(area_id)
    except ValidationError as e:
        raise InvalidArgument(e.message) from e
    return st.sampled_from(list(area.seat_ids()))
