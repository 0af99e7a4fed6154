from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from uuid import UUID

import attrs
import pytest

from openticket.adapters.memory.clock import SequentialIdGenerator
from openticket.domain.seating import (
    HoldExpired,
    InventorySnapshot,
    NotHolder,
    SeatHold,
    SeatInventory,
    SeatsExpired,
    SeatsExtended,
    SeatsHeld,
    SeatsReleased,
    SeatsReturned,
    SeatsSold,
    SeatsSpanAreas,
    SeatStatus,
    SeatsUnavailable,
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
SEATS = tuple(SeatId(f"A-1-{n}") for n in range(1, 6))
TTL = timedelta(seconds=120)
SOLD_TO = OrderId(UUID(int=999))


def seats(*numbers: int) -> tuple[SeatId, ...]:
    return tuple(SeatId(f"A-1-{n}") for n in numbers)


class Buyers:
    """Makes holds with fresh ids and ever-growing tokens, as the application would."""

    def __init__(self, inventory: SeatInventory, ids: SequentialIdGenerator) -> None:
        self.inventory = inventory
        self.ids = ids
        self.token = 0

    def hold(
        self, seat_ids: Sequence[SeatId], now: datetime, max_seats: int | None = None
    ) -> SeatHold:
        self.token += 1
        return self.inventory.hold(
            hold_id=HoldId(self.ids.new_id()),
            holder_id=UserId(self.ids.new_id()),
            order_id=OrderId(self.ids.new_id()),
            seat_ids=seat_ids,
            fencing_token=self.token,
            now=now,
            ids=self.ids.new_id,
            max_seats=max_seats,
        )


@pytest.fixture
def inventory() -> SeatInventory:
    return SeatInventory(session_id=SESSION, area_id=AREA, seat_ids=frozenset(SEATS), hold_ttl=TTL)


@pytest.fixture
def buyers(inventory: SeatInventory, ids: SequentialIdGenerator) -> Buyers:
    return Buyers(inventory, ids)


# --- holding ------------------------------------------------------------------------


def test_a_hold_takes_every_seat_for_one_ttl_and_says_so(
    inventory: SeatInventory, buyers: Buyers, now: datetime
) -> None:
    hold = buyers.hold(seats(1, 2), now)
    assert hold.expires_at == now + TTL
    assert [inventory.status(s, now) for s in seats(1, 2, 3)] == [
        SeatStatus.HELD,
        SeatStatus.HELD,
        SeatStatus.AVAILABLE,
    ]
    [held] = inventory.collect_events()
    assert isinstance(held, SeatsHeld)
    assert (held.hold_id, held.seat_ids, held.fencing_token) == (hold.hold_id, seats(1, 2), 1)
    assert inventory.last_fencing_token == 1


def test_a_hold_is_all_or_nothing(inventory: SeatInventory, buyers: Buyers, now: datetime) -> None:
    buyers.hold(seats(2), now)
    inventory.collect_events()
    with pytest.raises(SeatsUnavailable) as info:
        buyers.hold(seats(1, 2, 3), now)
    assert info.value.seat_ids == seats(2)
    assert inventory.status(SeatId("A-1-1"), now) is SeatStatus.AVAILABLE
    assert inventory.status(SeatId("A-1-3"), now) is SeatStatus.AVAILABLE
    assert inventory.collect_events() == []
    assert len(inventory.live_holds(now)) == 1


def test_a_past_due_hold_does_not_block_a_new_one_and_expires_whole(
    inventory: SeatInventory, buyers: Buyers, now: datetime
) -> None:
    old = buyers.hold(seats(1, 2), now)
    inventory.collect_events()
    later = now + TTL
    assert (
        inventory.status(SeatId("A-1-1"), later) is SeatStatus.AVAILABLE
    )  # lazily, before any sweep
    new = buyers.hold(seats(1), later)
    expired, held = inventory.collect_events()
    assert isinstance(expired, SeatsExpired)
    assert (expired.hold_id, expired.seat_ids) == (old.hold_id, seats(1, 2))
    assert isinstance(held, SeatsHeld)
    assert held.hold_id == new.hold_id
    assert inventory.hold_of(old.hold_id) is None
    assert inventory.holder_of(SeatId("A-1-2"), later) is None


def test_a_hold_one_microsecond_before_expiry_still_blocks(
    inventory: SeatInventory, buyers: Buyers, now: datetime
) -> None:
    buyers.hold(seats(1), now)
    with pytest.raises(SeatsUnavailable):
        buyers.hold(seats(1), now + TTL - timedelta(microseconds=1))


def test_a_seat_in_another_area_spans_areas(buyers: Buyers, now: datetime) -> None:
    with pytest.raises(SeatsSpanAreas):
        buyers.hold((SeatId("A-1-1"), SeatId("B-1-1")), now)


def test_a_seat_not_in_the_area_is_unknown(buyers: Buyers, now: datetime) -> None:
    with pytest.raises(UnknownSeats) as info:
        buyers.hold((SeatId("A-1-1"), SeatId("A-9-9")), now)
    assert info.value.seat_ids == ("A-9-9",)


def test_more_seats_than_allowed_per_order_are_refused(
    inventory: SeatInventory, buyers: Buyers, now: datetime
) -> None:
    with pytest.raises(TooManySeats):
        buyers.hold(seats(1, 2, 3), now, max_seats=2)
    buyers.hold(seats(1, 2), now, max_seats=2)
    assert len(inventory.live_holds(now)) == 1


@pytest.mark.parametrize("request_", [(), seats(1, 1)], ids=["empty", "repeated-seat"])
def test_an_empty_or_repeating_request_is_refused(
    buyers: Buyers, now: datetime, request_: tuple[SeatId, ...]
) -> None:
    with pytest.raises(ValidationError):
        buyers.hold(request_, now)


def test_a_fencing_token_must_be_newer_than_any_before_it(
    inventory: SeatInventory, buyers: Buyers, now: datetime, ids: SequentialIdGenerator
) -> None:
    buyers.hold(seats(1), now)
    with pytest.raises(StaleFencingToken):
        inventory.hold(
            hold_id=HoldId(ids.new_id()),
            holder_id=UserId(ids.new_id()),
            order_id=OrderId(ids.new_id()),
            seat_ids=seats(2),
            fencing_token=1,
            now=now,
            ids=ids.new_id,
        )
    assert inventory.status(SeatId("A-1-2"), now) is SeatStatus.AVAILABLE


def test_a_hold_id_cannot_be_used_twice(
    inventory: SeatInventory, buyers: Buyers, now: datetime, ids: SequentialIdGenerator
) -> None:
    hold = buyers.hold(seats(1), now)
    with pytest.raises(ValidationError, match="exists already"):
        inventory.hold(
            hold_id=hold.hold_id,
            holder_id=hold.holder_id,
            order_id=hold.order_id,
            seat_ids=seats(2),
            fencing_token=99,
            now=now,
            ids=ids.new_id,
        )


# --- only the holder ----------------------------------------------------------------


def test_only_the_holder_releases_and_only_its_own_seats(
    inventory: SeatInventory, buyers: Buyers, now: datetime, ids: SequentialIdGenerator
) -> None:
    mine = buyers.hold(seats(1), now)
    theirs = buyers.hold(seats(2), now)
    inventory.collect_events()
    with pytest.raises(NotHolder):
        inventory.release(HoldId(ids.new_id()), now=now, ids=ids.new_id)
    inventory.release(mine.hold_id, now=now, ids=ids.new_id)
    assert inventory.status(SeatId("A-1-1"), now) is SeatStatus.AVAILABLE
    assert inventory.holder_of(SeatId("A-1-2"), now) == theirs
    [released] = inventory.collect_events()
    assert isinstance(released, SeatsReleased)
    assert released.hold_id == mine.hold_id
    with pytest.raises(NotHolder):
        inventory.release(mine.hold_id, now=now, ids=ids.new_id)


def test_a_hold_cannot_be_released_extended_or_sold_once_it_expired(
    inventory: SeatInventory, buyers: Buyers, now: datetime, ids: SequentialIdGenerator
) -> None:
    hold = buyers.hold(seats(1), now)
    at_expiry = hold.expires_at
    with pytest.raises(HoldExpired):
        inventory.release(hold.hold_id, now=at_expiry, ids=ids.new_id)
    with pytest.raises(HoldExpired):
        inventory.extend(hold.hold_id, now=at_expiry, ids=ids.new_id)
    with pytest.raises(HoldExpired):
        inventory.confirm_sale(hold.hold_id, hold.fencing_token, now=at_expiry, ids=ids.new_id)
    assert inventory.sold_seats == frozenset()


def test_extending_pushes_expiry_to_one_ttl_from_now(
    inventory: SeatInventory, buyers: Buyers, now: datetime, ids: SequentialIdGenerator
) -> None:
    hold = buyers.hold(seats(1), now)
    inventory.collect_events()
    later = now + timedelta(seconds=100)
    extended = inventory.extend(hold.hold_id, now=later, ids=ids.new_id)
    assert extended.expires_at == later + TTL
    assert inventory.status(SeatId("A-1-1"), now + TTL) is SeatStatus.HELD
    [event] = inventory.collect_events()
    assert isinstance(event, SeatsExtended)
    assert event.expires_at == later + TTL
    # the old deadline no longer expires it
    assert inventory.expire_due(now + TTL, ids=ids.new_id) == []


def test_a_sale_needs_the_holds_own_fencing_token(
    inventory: SeatInventory, buyers: Buyers, now: datetime, ids: SequentialIdGenerator
) -> None:
    hold = buyers.hold(seats(1, 2), now)
    inventory.collect_events()
    with pytest.raises(StaleFencingToken):
        inventory.confirm_sale(hold.hold_id, hold.fencing_token + 1, now=now, ids=ids.new_id)
    assert inventory.status(SeatId("A-1-1"), now) is SeatStatus.HELD
    inventory.confirm_sale(hold.hold_id, hold.fencing_token, now=now, ids=ids.new_id)
    assert inventory.sold_seats == frozenset(seats(1, 2))
    assert inventory.hold_of(hold.hold_id) is None
    [sold] = inventory.collect_events()
    assert isinstance(sold, SeatsSold)
    assert sold.fencing_token == hold.fencing_token


# --- sold seats and refunds ---------------------------------------------------------


def test_a_sold_seat_is_never_held_again_even_after_a_long_time(
    inventory: SeatInventory, buyers: Buyers, now: datetime, ids: SequentialIdGenerator
) -> None:
    hold = buyers.hold(seats(1), now)
    inventory.confirm_sale(hold.hold_id, hold.fencing_token, now=now, ids=ids.new_id)
    with pytest.raises(SeatsUnavailable):
        buyers.hold(seats(1), now + timedelta(days=30))
    assert inventory.status(SeatId("A-1-1"), now + timedelta(days=30)) is SeatStatus.SOLD


def test_returned_seats_can_be_held_again(
    inventory: SeatInventory, buyers: Buyers, now: datetime, ids: SequentialIdGenerator
) -> None:
    hold = buyers.hold(seats(1, 2), now)
    inventory.confirm_sale(hold.hold_id, hold.fencing_token, now=now, ids=ids.new_id)
    inventory.collect_events()
    inventory.return_seats(
        seats(1, 2), order_id=hold.order_id, hold_id=hold.hold_id, now=now, ids=ids.new_id
    )
    [returned] = inventory.collect_events()
    assert isinstance(returned, SeatsReturned)
    assert returned.seat_ids == seats(1, 2)
    assert buyers.hold(seats(1), now).seat_ids == seats(1)


def test_returning_a_seat_that_was_not_sold_returns_nothing(
    inventory: SeatInventory, buyers: Buyers, now: datetime, ids: SequentialIdGenerator
) -> None:
    hold = buyers.hold(seats(1), now)
    inventory.confirm_sale(hold.hold_id, hold.fencing_token, now=now, ids=ids.new_id)
    with pytest.raises(ValidationError, match="not sold"):
        inventory.return_seats(
            seats(1, 2), order_id=hold.order_id, hold_id=hold.hold_id, now=now, ids=ids.new_id
        )
    assert inventory.sold_seats == frozenset(seats(1))


# --- expiry sweep -------------------------------------------------------------------


def test_expire_due_frees_holds_at_their_expiry_not_a_microsecond_earlier(
    inventory: SeatInventory, buyers: Buyers, now: datetime, ids: SequentialIdGenerator
) -> None:
    first = buyers.hold(seats(1), now)
    second = buyers.hold(seats(2), now + timedelta(seconds=1))
    inventory.collect_events()
    assert inventory.expire_due(first.expires_at - timedelta(microseconds=1), ids=ids.new_id) == []
    assert inventory.expire_due(first.expires_at, ids=ids.new_id) == [first]
    assert inventory.status(SeatId("A-1-2"), first.expires_at) is SeatStatus.HELD
    [expired] = inventory.collect_events()
    assert isinstance(expired, SeatsExpired)
    assert expired.hold_id == first.hold_id
    assert inventory.expire_due(second.expires_at, ids=ids.new_id) == [second]


def test_expire_due_skips_holds_released_or_sold_before_their_deadline(
    inventory: SeatInventory, buyers: Buyers, now: datetime, ids: SequentialIdGenerator
) -> None:
    released = buyers.hold(seats(1), now)
    sold = buyers.hold(seats(2), now)
    inventory.release(released.hold_id, now=now, ids=ids.new_id)
    inventory.confirm_sale(sold.hold_id, sold.fencing_token, now=now, ids=ids.new_id)
    inventory.collect_events()
    assert inventory.expire_due(now + timedelta(days=1), ids=ids.new_id) == []
    assert inventory.collect_events() == []


# --- rebuild after failover ---------------------------------------------------------


def stored_hold(
    number: int, token: int, expires_at: datetime, *, session: SessionId = SESSION, area: str = "A"
) -> SeatHold:
    return SeatHold(
        hold_id=HoldId(UUID(int=1000 + token)),
        session_id=session,
        area_id=AreaId(area),
        holder_id=UserId(UUID(int=2000 + token)),
        order_id=OrderId(UUID(int=3000 + token)),
        seat_ids=(SeatId(f"{area}-1-{number}"),),
        fencing_token=token,
        expires_at=expires_at,
    )


def rebuild(snapshot: InventorySnapshot, now: datetime) -> SeatInventory:
    return SeatInventory.rebuild(
        session_id=SESSION, area_id=AREA, seat_ids=SEATS, snapshot=snapshot, now=now, hold_ttl=TTL
    )


def test_rebuild_keeps_live_holds_and_sold_seats(now: datetime) -> None:
    live = stored_hold(1, token=3, expires_at=now + timedelta(seconds=30))
    rebuilt = rebuild(
        InventorySnapshot(
            holds=(live,), sold=dict.fromkeys(seats(2), SOLD_TO), last_fencing_token=3
        ),
        now,
    )
    assert rebuilt.holder_of(SeatId("A-1-1"), now) == live
    assert rebuilt.status(SeatId("A-1-2"), now) is SeatStatus.SOLD
    assert not rebuilt.has_pending_events


def test_rebuild_drops_holds_that_already_expired(now: datetime) -> None:
    expired = stored_hold(1, token=3, expires_at=now)
    rebuilt = rebuild(InventorySnapshot(holds=(expired,), sold={}), now)
    assert rebuilt.hold_of(expired.hold_id) is None
    assert rebuilt.status(SeatId("A-1-1"), now) is SeatStatus.AVAILABLE


def test_rebuild_drops_a_hold_on_a_sold_seat_because_the_sale_wins(now: datetime) -> None:
    stale = stored_hold(1, token=3, expires_at=now + timedelta(seconds=30))
    rebuilt = rebuild(InventorySnapshot(holds=(stale,), sold=dict.fromkeys(seats(1), SOLD_TO)), now)
    assert rebuilt.hold_of(stale.hold_id) is None
    assert rebuilt.live_holds(now) == []
    assert rebuilt.status(SeatId("A-1-1"), now) is SeatStatus.SOLD


def test_rebuild_keeps_only_one_of_two_overlapping_holds(now: datetime) -> None:
    older = stored_hold(1, token=3, expires_at=now + timedelta(seconds=30))
    newer = stored_hold(1, token=4, expires_at=now + timedelta(seconds=60))
    rebuilt = rebuild(InventorySnapshot(holds=(newer, older), sold={}), now)
    assert len(rebuilt.live_holds(now)) == 1


def test_rebuild_ignores_holds_and_sales_of_other_partitions(now: datetime) -> None:
    other_session = stored_hold(1, token=3, expires_at=now + TTL, session=SessionId(UUID(int=9)))
    other_area = stored_hold(1, token=4, expires_at=now + TTL, area="B")
    rebuilt = rebuild(
        InventorySnapshot(holds=(other_session, other_area), sold={SeatId("B-1-1"): SOLD_TO}), now
    )
    assert rebuilt.live_holds(now) == []
    assert rebuilt.sold_seats == frozenset()


def test_a_rebuilt_hold_never_outlives_one_ttl_from_now(now: datetime) -> None:
    far = stored_hold(1, token=3, expires_at=now + timedelta(hours=5))
    rebuilt = rebuild(InventorySnapshot(holds=(far,), sold={}), now)
    [hold] = rebuilt.live_holds(now)
    assert hold.expires_at == now + TTL


def test_rebuild_remembers_the_highest_token_even_of_dropped_holds(now: datetime) -> None:
    dropped = stored_hold(1, token=17, expires_at=now - timedelta(seconds=1))
    rebuilt = rebuild(InventorySnapshot(holds=(dropped,), sold={}, last_fencing_token=5), now)
    assert rebuilt.last_fencing_token == 17


def test_a_snapshot_rebuilds_the_same_inventory(
    inventory: SeatInventory, buyers: Buyers, now: datetime, ids: SequentialIdGenerator
) -> None:
    buyers.hold(seats(1, 2), now)
    sold = buyers.hold(seats(3), now)
    inventory.confirm_sale(sold.hold_id, sold.fencing_token, now=now, ids=ids.new_id)
    later = now + timedelta(seconds=10)
    rebuilt = rebuild(inventory.snapshot(later), later)
    assert [rebuilt.status(s, later) for s in SEATS] == [inventory.status(s, later) for s in SEATS]
    assert rebuilt.live_holds(later) == inventory.live_holds(later)
    assert rebuilt.last_fencing_token == inventory.last_fencing_token


# --- construction and copies --------------------------------------------------------


def test_an_inventory_holds_seats_of_its_own_area_only() -> None:
    with pytest.raises(SeatsSpanAreas):
        SeatInventory(session_id=SESSION, area_id=AREA, seat_ids=frozenset({SeatId("B-1-1")}))


@pytest.mark.parametrize("ttl", [timedelta(0), timedelta(seconds=-1)])
def test_a_hold_ttl_must_be_positive(ttl: timedelta) -> None:
    with pytest.raises(ValidationError):
        SeatInventory(session_id=SESSION, area_id=AREA, seat_ids=frozenset(SEATS), hold_ttl=ttl)


def test_a_detached_copy_does_not_share_seats_with_the_original(
    inventory: SeatInventory, buyers: Buyers, now: datetime, ids: SequentialIdGenerator
) -> None:
    kept = buyers.hold(seats(1), now)
    copy = inventory.detached_copy()
    assert not copy.has_pending_events
    copy.release(kept.hold_id, now=now, ids=ids.new_id)
    copy.hold(
        hold_id=HoldId(ids.new_id()),
        holder_id=UserId(ids.new_id()),
        order_id=OrderId(ids.new_id()),
        seat_ids=seats(2),
        fencing_token=50,
        now=now,
        ids=ids.new_id,
    )
    assert inventory.holder_of(SeatId("A-1-1"), now) == kept
    assert inventory.status(SeatId("A-1-2"), now) is SeatStatus.AVAILABLE
    assert inventory.last_fencing_token == 1
    assert [type(e) for e in inventory.collect_events()] == [SeatsHeld]


def test_rebuild_keeps_one_hold_per_hold_id_even_if_the_store_repeats_it(
    now: datetime, ids: SequentialIdGenerator
) -> None:
    first = stored_hold(1, token=3, expires_at=now + timedelta(seconds=30))
    again = attrs.evolve(
        stored_hold(2, token=4, expires_at=now + timedelta(seconds=60)), hold_id=first.hold_id
    )
    rebuilt = rebuild(InventorySnapshot(holds=(first, again), sold={}), now)
    assert rebuilt.live_holds(now) == [first]
    assert rebuilt.status(SeatId("A-1-2"), now) is SeatStatus.AVAILABLE
    # and the seats of that hold still come free as one when it runs out
    later = first.expires_at
    assert rebuilt.expire_due(later, ids=ids.new_id) == [first]
    assert [rebuilt.status(s, later) for s in seats(1, 2)] == [SeatStatus.AVAILABLE] * 2


# --- who bought a seat ------------------------------------------------------------------


def test_a_sold_seat_remembers_its_order_so_a_replayed_sale_is_recognised(
    inventory: SeatInventory, buyers: Buyers, now: datetime, ids: SequentialIdGenerator
) -> None:
    hold = buyers.hold(seats(1, 2), now)
    inventory.confirm_sale(hold.hold_id, hold.fencing_token, now=now, ids=ids.new_id)
    assert inventory.sold_to(SeatId("A-1-1")) == hold.order_id
    assert inventory.sold_to(SeatId("A-1-3")) is None
    assert inventory.is_sold_to(hold.order_id, seats(1, 2))
    assert not inventory.is_sold_to(hold.order_id, seats(1, 3))
    assert not inventory.is_sold_to(OrderId(ids.new_id()), seats(1))
    assert dict(inventory.snapshot(now).sold) == dict.fromkeys(seats(1, 2), hold.order_id)


def test_seats_are_returned_only_for_the_order_that_bought_them(
    inventory: SeatInventory, buyers: Buyers, now: datetime, ids: SequentialIdGenerator
) -> None:
    hold = buyers.hold(seats(1), now)
    inventory.confirm_sale(hold.hold_id, hold.fencing_token, now=now, ids=ids.new_id)
    with pytest.raises(ValidationError, match="not sold to order"):
        inventory.return_seats(
            seats(1), order_id=OrderId(ids.new_id()), hold_id=hold.hold_id, now=now, ids=ids.new_id
        )
    assert inventory.status(SeatId("A-1-1"), now) is SeatStatus.SOLD


def test_rebuild_keeps_which_order_bought_each_seat(now: datetime) -> None:
    rebuilt = rebuild(InventorySnapshot(holds=(), sold=dict.fromkeys(seats(4), SOLD_TO)), now)
    assert rebuilt.sold_to(SeatId("A-1-4")) == SOLD_TO
