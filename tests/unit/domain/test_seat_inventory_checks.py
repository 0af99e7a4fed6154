"""The checks a partition actor makes before it decides: can these seats be held, is
this hold still live, may this sale go through, which seats did an order buy.

They only read the inventory. ``check_hold`` also takes the seats that decisions
earlier in the same batch took (``claimed``) or gave back (``freed``), which the
inventory does not know yet.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from uuid import UUID

import pytest

from openticket.adapters.memory.clock import SequentialIdGenerator
from openticket.domain.seating import (
    HoldExpired,
    NotHolder,
    SeatHold,
    SeatInventory,
    SeatStatus,
    StaleFencingToken,
    TooManySeats,
)
from openticket.domain.shared import (
    AreaId,
    HoldId,
    OrderId,
    SeatId,
    SessionId,
    UserId,
    ValidationError,
)
from openticket.domain.venue import UnknownSeats

SESSION = SessionId(UUID(int=100))
AREA = AreaId("A")
SEATS = tuple(SeatId(f"A-1-{n}") for n in range(1, 7))
TTL = timedelta(seconds=120)


def seats(*numbers: int) -> tuple[SeatId, ...]:
    return tuple(SeatId(f"A-1-{n}") for n in numbers)


class Buyers:
    """Makes holds and sales with fresh ids and ever-growing tokens, as the application would."""

    def __init__(self, inventory: SeatInventory, ids: SequentialIdGenerator) -> None:
        self.inventory = inventory
        self.ids = ids
        self.token = 0

    def hold(self, seat_ids: Sequence[SeatId], now: datetime) -> SeatHold:
        self.token += 1
        return self.inventory.hold(
            hold_id=HoldId(self.ids.new_id()),
            holder_id=UserId(self.ids.new_id()),
            order_id=OrderId(self.ids.new_id()),
            seat_ids=seat_ids,
            fencing_token=self.token,
            now=now,
            ids=self.ids.new_id,
        )

    def buy(self, seat_ids: Sequence[SeatId], now: datetime) -> SeatHold:
        hold = self.hold(seat_ids, now)
        self.inventory.confirm_sale(hold.hold_id, hold.fencing_token, now=now, ids=self.ids.new_id)
        return hold


@pytest.fixture
def inventory() -> SeatInventory:
    return SeatInventory(session_id=SESSION, area_id=AREA, seat_ids=frozenset(SEATS), hold_ttl=TTL)


@pytest.fixture
def buyers(inventory: SeatInventory, ids: SequentialIdGenerator) -> Buyers:
    return Buyers(inventory, ids)


# --- can these seats be held ----------------------------------------------------------


def test_free_seats_have_nothing_in_the_way_and_checking_changes_nothing(
    inventory: SeatInventory, buyers: Buyers, now: datetime
) -> None:
    buyers.hold(seats(1), now)
    inventory.collect_events()
    assert inventory.check_hold(seats(2, 3), None, now) == ()
    assert inventory.status(SeatId("A-1-2"), now) is SeatStatus.AVAILABLE
    assert len(inventory.live_holds(now)) == 1
    assert inventory.collect_events() == []


def test_held_and_sold_seats_are_named_in_the_order_they_were_asked_for(
    inventory: SeatInventory, buyers: Buyers, now: datetime
) -> None:
    buyers.buy(seats(2), now)
    buyers.hold(seats(4), now)
    assert inventory.check_hold(seats(4, 1, 2, 3), None, now) == seats(4, 2)


def test_a_hold_past_its_expiry_is_not_in_the_way_even_before_it_is_swept(
    inventory: SeatInventory, buyers: Buyers, now: datetime
) -> None:
    hold = buyers.hold(seats(1), now)
    just_before = hold.expires_at - timedelta(microseconds=1)
    assert inventory.check_hold(seats(1), None, just_before) == seats(1)
    assert inventory.check_hold(seats(1), None, hold.expires_at) == ()


@pytest.mark.parametrize(
    ("request_", "max_seats", "error"),
    [
        ((), None, ValidationError),
        (seats(1, 1), None, ValidationError),
        (seats(1, 2, 3), 2, TooManySeats),
        ((SeatId("A-1-1"), SeatId("A-9-9")), None, UnknownSeats),
    ],
    ids=["empty", "repeated-seat", "too-many", "unknown-seat"],
)
def test_a_request_that_could_never_succeed_is_refused_rather_than_answered(
    inventory: SeatInventory,
    now: datetime,
    request_: tuple[SeatId, ...],
    max_seats: int | None,
    error: type[Exception],
) -> None:
    with pytest.raises(error):
        inventory.check_hold(request_, max_seats, now)


def test_a_seat_claimed_earlier_in_the_batch_is_in_the_way_though_not_yet_recorded(
    inventory: SeatInventory, buyers: Buyers, now: datetime
) -> None:
    buyers.hold(seats(3), now)
    taken = inventory.check_hold(seats(3, 1, 2), None, now, claimed=frozenset(seats(2)))
    assert taken == seats(3, 2)
    assert inventory.status(SeatId("A-1-2"), now) is SeatStatus.AVAILABLE


def test_a_seat_freed_earlier_in_the_batch_is_not_in_the_way(
    inventory: SeatInventory, buyers: Buyers, now: datetime
) -> None:
    buyers.hold(seats(1, 2), now)
    buyers.hold(seats(3), now)
    assert inventory.check_hold(seats(1, 2, 3), None, now, freed=frozenset(seats(1, 2))) == seats(3)


def test_a_seat_freed_and_then_claimed_again_in_the_same_batch_is_in_the_way(
    inventory: SeatInventory, buyers: Buyers, now: datetime
) -> None:
    buyers.hold(seats(1), now)
    taken = inventory.check_hold(
        seats(1, 2), None, now, claimed=frozenset(seats(1)), freed=frozenset(seats(1))
    )
    assert taken == seats(1)


# --- is this hold still live ------------------------------------------------------------


def test_a_live_hold_is_found_until_the_moment_it_expires(
    inventory: SeatInventory, buyers: Buyers, now: datetime, ids: SequentialIdGenerator
) -> None:
    hold = buyers.hold(seats(1), now)
    assert inventory.live_hold(hold.hold_id, hold.expires_at - timedelta(microseconds=1)) == hold
    with pytest.raises(HoldExpired):
        inventory.live_hold(hold.hold_id, hold.expires_at)
    with pytest.raises(NotHolder):
        inventory.live_hold(HoldId(ids.new_id()), now)
    inventory.release(hold.hold_id, now=now, ids=ids.new_id)
    with pytest.raises(NotHolder):
        inventory.live_hold(hold.hold_id, now)


# --- may this sale go through -----------------------------------------------------------


def test_a_sale_of_a_live_hold_with_its_own_token_may_go_through_and_nothing_is_sold_yet(
    inventory: SeatInventory, buyers: Buyers, now: datetime
) -> None:
    hold = buyers.hold(seats(1, 2), now)
    inventory.collect_events()
    checked = inventory.check_sale(
        hold.hold_id, hold.fencing_token, hold.order_id, hold.seat_ids, now
    )
    assert checked == hold
    assert inventory.sold_seats == frozenset()
    assert inventory.status(SeatId("A-1-1"), now) is SeatStatus.HELD
    assert inventory.collect_events() == []


def test_a_sale_with_another_token_is_refused_as_stale(
    inventory: SeatInventory, buyers: Buyers, now: datetime
) -> None:
    hold = buyers.hold(seats(1), now)
    with pytest.raises(StaleFencingToken):
        inventory.check_sale(
            hold.hold_id, hold.fencing_token + 1, hold.order_id, hold.seat_ids, now
        )


def test_a_sale_of_an_expired_or_unknown_hold_is_refused(
    inventory: SeatInventory, buyers: Buyers, now: datetime, ids: SequentialIdGenerator
) -> None:
    hold = buyers.hold(seats(1), now)
    with pytest.raises(HoldExpired):
        inventory.check_sale(
            hold.hold_id, hold.fencing_token, hold.order_id, hold.seat_ids, hold.expires_at
        )
    with pytest.raises(NotHolder):
        inventory.check_sale(HoldId(ids.new_id()), 1, hold.order_id, hold.seat_ids, now)


def test_a_sale_already_made_to_the_same_order_is_a_replay_that_changes_nothing(
    inventory: SeatInventory, buyers: Buyers, now: datetime
) -> None:
    sold = buyers.buy(seats(1, 2), now)
    inventory.collect_events()
    much_later = now + timedelta(days=1)
    replay = inventory.check_sale(
        sold.hold_id, sold.fencing_token, sold.order_id, sold.seat_ids, much_later
    )
    assert replay is None
    assert inventory.sold_to(SeatId("A-1-1")) == sold.order_id
    assert inventory.collect_events() == []


def test_seats_sold_to_another_order_are_no_replay_of_this_sale(
    inventory: SeatInventory, buyers: Buyers, now: datetime, ids: SequentialIdGenerator
) -> None:
    sold = buyers.buy(seats(1), now)
    other_order = OrderId(ids.new_id())
    with pytest.raises(NotHolder):
        inventory.check_sale(sold.hold_id, sold.fencing_token, other_order, sold.seat_ids, now)


# --- which seats an order bought --------------------------------------------------------


def test_only_the_seats_sold_to_the_order_are_the_ones_it_may_return(
    inventory: SeatInventory, buyers: Buyers, now: datetime, ids: SequentialIdGenerator
) -> None:
    mine = buyers.buy(seats(3, 1), now)
    buyers.buy(seats(2), now)  # someone else's order
    buyers.hold(seats(4), now)  # held, not sold
    asked = seats(5, 1, 2, 3, 4)
    assert inventory.sold_to_order(mine.order_id, asked) == seats(1, 3)
    assert inventory.sold_to_order(OrderId(ids.new_id()), asked) == ()
