"""The seat inventory of one partition never sells a seat twice, whatever buyers and clocks do.

A ``RuleBasedStateMachine`` drives one ``SeatInventory`` with holds (some conflicting,
some too large, some with stale fencing tokens), releases, extensions and sales by the
right and the wrong hold ids, refunds, expiry sweeps, a clock that runs forward and
sometimes steps back a little, and failovers (rebuild from a snapshot). A model made of
plain dicts predicts every answer; after every step the inventory must agree with it.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import attrs
import pytest
from hypothesis import event
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    MultipleResults,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
)

from openticket.adapters.memory.clock import FakeClock, SequentialIdGenerator
from openticket.domain.seating import (
    HoldExpired,
    NotHolder,
    SeatEvent,
    SeatHold,
    SeatInventory,
    SeatsExtended,
    SeatsHeld,
    SeatsSold,
    SeatsSpanAreas,
    SeatStatus,
    SeatsUnavailable,
    StaleFencingToken,
    TooManySeats,
)
from openticket.domain.shared import (
    AreaId,
    DomainError,
    DomainEvent,
    HoldId,
    OrderId,
    SeatId,
    SessionId,
    UserId,
    ValidationError,
)
from openticket.domain.venue import Area, Row, SeatMap, UnknownSeats
from openticket.testing.strategies import hold_requests

TTL = timedelta(seconds=120)
MAX_SKEW = timedelta(seconds=2)
"""How far the clock may step back behind the latest time it showed."""

SESSION = SessionId(UUID(int=0x5E55))
SEAT_MAP = SeatMap(
    [
        Area("A", "Stalls", [Row("1", [1, 2, 3]), Row("2", [1, 2, 3])]),
        Area("B", "Balcony", [Row("1", [1, 2])]),
    ]
)
AREA = AreaId("A")
AREA_SEATS = tuple(SEAT_MAP.area(AREA).seat_ids())
SEAT_IN_ANOTHER_AREA = next(SEAT_MAP.area("B").seat_ids())

EventKey = tuple[object, ...]


@attrs.define
class ModelHold:
    """What the model knows of a hold the inventory still records (live or not yet swept)."""

    hold_id: HoldId
    order_id: OrderId
    holder_id: UserId
    seats: tuple[SeatId, ...]
    token: int
    expires_at: datetime

    def is_live(self, now: datetime) -> bool:
        return now < self.expires_at

    def key(self) -> tuple[object, ...]:
        return (
            self.hold_id,
            self.order_id,
            self.holder_id,
            self.seats,
            self.token,
            self.expires_at,
        )


def hold_key(hold: SeatHold) -> tuple[object, ...]:
    return (
        hold.hold_id,
        hold.order_id,
        hold.holder_id,
        hold.seat_ids,
        hold.fencing_token,
        hold.expires_at,
    )


def event_key(event: DomainEvent) -> EventKey:
    assert isinstance(event, SeatEvent)
    extra: tuple[object, ...] = ()
    if isinstance(event, SeatsHeld):
        extra = (event.holder_id, event.fencing_token, event.expires_at)
    elif isinstance(event, SeatsExtended):
        extra = (event.expires_at,)
    elif isinstance(event, SeatsSold):
        extra = (event.fencing_token,)
    return (
        event.event_type,
        event.hold_id,
        event.order_id,
        event.seat_ids,
        event.occurred_at,
        extra,
    )


class SeatInventoryMachine(RuleBasedStateMachine):
    """Buyers, sweeper, refunds, clock skew and failover against one partition."""

    holds = Bundle("holds")

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock()
        self.ids = SequentialIdGenerator(seed=0x5EA7)
        self.lock_store_counter = itertools.count(1)
        self.high_water = self.clock.now()
        self.inventory = SeatInventory(
            session_id=SESSION, area_id=AREA, seat_ids=frozenset(AREA_SEATS), hold_ttl=TTL
        )
        # --- the model: plain dicts -------------------------------------------------
        self.recorded: dict[HoldId, ModelHold] = {}
        self.sold: dict[SeatId, ModelHold] = {}
        self.last_token = 0
        self.issued_hold_ids: set[HoldId] = set()
        self.expected_events: list[EventKey] = []
        self.event_ids: set[UUID] = set()
        self.returned: set[SeatId] = set()

    # --- helpers ----------------------------------------------------------------------

    @property
    def now(self) -> datetime:
        return self.clock.now()

    def new_id(self) -> UUID:
        return self.ids.new_id()

    def expect(self, event_type: str, hold: ModelHold, *extra: object) -> None:
        self.expected_events.append(
            (event_type, hold.hold_id, hold.order_id, hold.seats, self.now, extra)
        )

    def recorded_hold_on(self, seat: SeatId) -> ModelHold | None:
        owners = [h for h in self.recorded.values() if seat in h.seats]
        assert len(owners) <= 1, f"model: {seat} in two recorded holds"
        return owners[0] if owners else None

    def model_status(self, seat: SeatId) -> SeatStatus:
        if seat in self.sold:
            return SeatStatus.SOLD
        hold = self.recorded_hold_on(seat)
        if hold is not None and hold.is_live(self.now):
            return SeatStatus.HELD
        return SeatStatus.AVAILABLE

    def expire_in_model(self, hold: ModelHold) -> None:
        del self.recorded[hold.hold_id]
        self.expect("SeatsExpired", hold)

    def observable(self) -> tuple[object, ...]:
        """Everything a caller can see of the inventory at ``now``."""
        inv, now = self.inventory, self.now
        return (
            tuple(inv.status(s, now) for s in AREA_SEATS),
            sorted(hold_key(h) for h in inv.live_holds(now)),
            {hid: inv.hold_of(hid) for hid in self.issued_hold_ids},
            inv.sold_seats,
            inv.last_fencing_token,
            inv.has_pending_events,
        )

    def refused(self, what: str, error: type[DomainError], call: Callable[[], Any]) -> DomainError:
        """``call`` must raise exactly ``error`` and leave the inventory as it was."""
        before = self.observable()
        with pytest.raises(error) as info:
            call()
        assert type(info.value) is error
        assert self.observable() == before
        event(f"{what}: {error.__name__}")
        return info.value

    def liveness_error(self, hold_id: HoldId) -> type[DomainError] | None:
        """What only-the-holder operations must answer for ``hold_id`` now."""
        hold = self.recorded.get(hold_id)
        if hold is None:
            return NotHolder
        if not hold.is_live(self.now):
            return HoldExpired
        return None

    def move_clock_to(self, when: datetime) -> None:
        self.clock.set(when)
        self.high_water = max(self.high_water, when)

    # --- holds ------------------------------------------------------------------------

    def attempt_hold(
        self, seats: tuple[SeatId, ...], max_seats: int | None, token: int
    ) -> HoldId | None:
        """Ask for ``seats``; check the answer against the model; the hold id if granted."""
        hold_id = HoldId(self.new_id())
        order_id, holder_id = OrderId(self.new_id()), UserId(self.new_id())
        self.issued_hold_ids.add(hold_id)

        def call() -> SeatHold:
            return self.inventory.hold(
                hold_id=hold_id,
                holder_id=holder_id,
                order_id=order_id,
                seat_ids=seats,
                fencing_token=token,
                now=self.now,
                ids=self.new_id,
                max_seats=max_seats,
            )

        if max_seats is not None and len(seats) > max_seats:
            self.refused("hold", TooManySeats, call)
            return None
        if token <= self.last_token:
            self.refused("hold", StaleFencingToken, call)
            return None
        # a hold past its expiry but not yet swept gives way (lazy expiry), all of it
        owners = (self.recorded_hold_on(s) for s in seats)
        stale = [h.hold_id for h in owners if h is not None and not h.is_live(self.now)]
        for stale_id in dict.fromkeys(stale):
            self.expire_in_model(self.recorded[stale_id])
            event("hold: a past-due hold gave way (lazy expiry)")
        taken = tuple(s for s in seats if self.model_status(s) is not SeatStatus.AVAILABLE)
        if taken:
            with pytest.raises(SeatsUnavailable) as info:
                call()
            assert info.value.seat_ids == taken
            event(
                "hold: SeatsUnavailable" + (" (a sold seat)" if set(taken) & set(self.sold) else "")
            )
            return None
        granted = call()
        model = ModelHold(hold_id, order_id, holder_id, seats, token, self.now + TTL)
        assert hold_key(granted) == model.key()
        self.recorded[hold_id] = model
        self.last_token = token
        self.expect("SeatsHeld", model, holder_id, token, model.expires_at)
        event("hold: granted" + (" (a returned seat)" if set(seats) & self.returned else ""))
        return hold_id

    @initialize(target=holds, requests=st.lists(hold_requests(AREA_SEATS, max_seats=3), max_size=3))
    def buyers_arrive(self, requests: list[tuple[SeatId, ...]]) -> MultipleResults[HoldId]:
        granted = [
            self.attempt_hold(seats, None, next(self.lock_store_counter)) for seats in requests
        ]
        # a hold id nobody was ever given: every only-the-holder call with it must fail
        nobody = HoldId(self.new_id())
        self.issued_hold_ids.add(nobody)
        return multiple(*(h for h in granted if h is not None), nobody)

    @rule(
        target=holds,
        seats=hold_requests(AREA_SEATS, max_seats=4),
        max_seats=st.sampled_from([None, None, None, 2, 3]),
    )
    def hold(
        self, seats: tuple[SeatId, ...], max_seats: int | None
    ) -> HoldId | MultipleResults[HoldId]:
        # a lock store hands out ever-growing fencing tokens, one per attempt
        hold_id = self.attempt_hold(seats, max_seats, next(self.lock_store_counter))
        return multiple() if hold_id is None else hold_id

    @rule(seats=hold_requests(AREA_SEATS, max_seats=4), stale_by=st.integers(0, 2))
    def hold_with_a_stale_fencing_token(self, seats: tuple[SeatId, ...], stale_by: int) -> None:
        # a caller that lost its lock store lease replays an old token
        self.attempt_hold(seats, None, max(self.last_token - stale_by, 0))

    @rule(
        kind=st.sampled_from(["empty", "repeated", "other_area", "not_on_map", "malformed"]),
        seats=hold_requests(AREA_SEATS, max_seats=3),
    )
    def hold_a_request_that_can_never_succeed(self, kind: str, seats: tuple[SeatId, ...]) -> None:
        request, error = {
            "empty": ((), ValidationError),
            "repeated": ((*seats, seats[0]), ValidationError),
            "other_area": ((*seats, SEAT_IN_ANOTHER_AREA), SeatsSpanAreas),
            "not_on_map": ((*seats, SeatId("A-9-9")), UnknownSeats),
            "malformed": ((*seats, SeatId("A-1")), UnknownSeats),
        }[kind]
        self.refused(
            "impossible request",
            error,
            lambda: self.inventory.hold(
                hold_id=HoldId(self.new_id()),
                holder_id=UserId(self.new_id()),
                order_id=OrderId(self.new_id()),
                seat_ids=request,
                fencing_token=next(self.lock_store_counter),
                now=self.now,
                ids=self.new_id,
            ),
        )

    @rule(hold_id=holds)
    def release(self, hold_id: HoldId) -> None:
        error = self.liveness_error(hold_id)
        if error is not None:
            self.refused(
                "release",
                error,
                lambda: self.inventory.release(hold_id, now=self.now, ids=self.new_id),
            )
            return
        released = self.inventory.release(hold_id, now=self.now, ids=self.new_id)
        model = self.recorded.pop(hold_id)
        assert hold_key(released) == model.key()
        self.expect("SeatsReleased", model)
        event("release: done")

    @rule(hold_id=holds)
    def extend(self, hold_id: HoldId) -> None:
        error = self.liveness_error(hold_id)
        if error is not None:
            self.refused(
                "extend",
                error,
                lambda: self.inventory.extend(hold_id, now=self.now, ids=self.new_id),
            )
            return
        extended = self.inventory.extend(hold_id, now=self.now, ids=self.new_id)
        model = self.recorded[hold_id]
        model.expires_at = self.now + TTL
        assert hold_key(extended) == model.key()
        self.expect("SeatsExtended", model, model.expires_at)
        event("extend: done")

    @rule(hold_id=holds, token_shift=st.sampled_from([0, 0, 1, -1, 7]))
    def confirm_sale(self, hold_id: HoldId, token_shift: int) -> None:
        model = self.recorded.get(hold_id)
        token = (model.token if model is not None else 1) + token_shift

        def call() -> SeatHold:
            return self.inventory.confirm_sale(hold_id, token, now=self.now, ids=self.new_id)

        error = self.liveness_error(hold_id) or (StaleFencingToken if token_shift else None)
        if error is not None:
            self.refused("confirm_sale", error, call)
            return
        assert model is not None
        assert self.inventory.sold_seats.isdisjoint(model.seats), "selling a sold seat again"
        sold = call()
        assert hold_key(sold) == model.key()
        del self.recorded[hold_id]
        self.sold.update(dict.fromkeys(model.seats, model))
        self.expect("SeatsSold", model, token)
        event("confirm_sale: sold")

    @precondition(lambda self: self.sold)
    @rule(
        picks=st.lists(st.integers(0, 5), min_size=1, max_size=3, unique=True),
        with_an_unsold_seat=st.booleans(),
    )
    def refund_returns_sold_seats(self, picks: list[int], with_an_unsold_seat: bool) -> None:
        sold = sorted(self.sold)
        picked = tuple(dict.fromkeys(sold[i % len(sold)] for i in picks))
        sale = self.sold[picked[0]]
        # a refund gives back seats of one order; a seat sold to another order spoils it
        seats = tuple(s for s in picked if self.sold[s].order_id == sale.order_id)
        if len(seats) < len(picked):
            self.refused(
                "return_seats",
                ValidationError,
                lambda: self.inventory.return_seats(
                    picked,
                    order_id=sale.order_id,
                    hold_id=sale.hold_id,
                    now=self.now,
                    ids=self.new_id,
                ),
            )
            event("return_seats: seats of another order refused")
        unsold = [s for s in AREA_SEATS if s not in self.sold]
        if with_an_unsold_seat and unsold:
            # all or nothing: one seat that was never sold spoils the whole return
            request = (*seats, unsold[picks[0] % len(unsold)])
            self.refused(
                "return_seats",
                ValidationError,
                lambda: self.inventory.return_seats(
                    request,
                    order_id=sale.order_id,
                    hold_id=sale.hold_id,
                    now=self.now,
                    ids=self.new_id,
                ),
            )
            return
        self.inventory.return_seats(
            seats, order_id=sale.order_id, hold_id=sale.hold_id, now=self.now, ids=self.new_id
        )
        for seat in seats:
            del self.sold[seat]
        self.returned.update(seats)
        self.expect("SeatsReturned", attrs.evolve(sale, seats=seats))
        event("return_seats: done")

    @rule()
    def expire_due(self) -> None:
        due = [h for h in self.recorded.values() if h.expires_at <= self.now]
        expired = self.inventory.expire_due(self.now, ids=self.new_id)
        assert sorted(hold_key(h) for h in expired) == sorted(h.key() for h in due), (
            f"at {self.now} expire_due freed {[h.hold_id for h in expired]}, "
            f"but exactly {[h.hold_id for h in due]} were due"
        )
        for hold in due:
            self.expire_in_model(hold)
        if due:
            event(
                "expire_due: freed "
                + (
                    "one at its exact expiry"
                    if any(h.expires_at == self.now for h in due)
                    else "holds"
                )
            )

    # --- time and failover --------------------------------------------------------

    @rule(
        milliseconds=st.integers(0, 60_000) | st.sampled_from([60_000, 119_999, 120_000, 150_000])
    )
    def time_passes(self, milliseconds: int) -> None:
        self.move_clock_to(self.now + timedelta(milliseconds=milliseconds))

    @rule(milliseconds=st.integers(1, 2_000))
    def clock_steps_back(self, milliseconds: int) -> None:
        self.move_clock_to(
            max(self.now - timedelta(milliseconds=milliseconds), self.high_water - MAX_SKEW)
        )

    @rule(hold_id=holds, microseconds=st.sampled_from([-1, 0, 0, 1]))
    def clock_reaches_the_expiry_of(self, hold_id: HoldId, microseconds: int) -> None:
        hold = self.recorded.get(hold_id)
        if hold is None:
            return
        when = hold.expires_at + timedelta(microseconds=microseconds)
        if when >= self.high_water - MAX_SKEW:
            event(
                f"clock: expiry {microseconds:+d}us" + (" (backwards)" if when < self.now else "")
            )
            self.move_clock_to(when)

    @rule()
    def another_actor_takes_over_from_a_snapshot(self) -> None:
        now, old = self.now, self.inventory
        rebuilt = SeatInventory.rebuild(
            session_id=SESSION,
            area_id=AREA,
            seat_ids=AREA_SEATS,
            snapshot=old.snapshot(now),
            now=now,
            hold_ttl=TTL,
        )
        assert [rebuilt.status(s, now) for s in AREA_SEATS] == [
            old.status(s, now) for s in AREA_SEATS
        ]
        assert rebuilt.sold_seats == old.sold_seats
        assert rebuilt.last_fencing_token == old.last_fencing_token
        assert not rebuilt.has_pending_events
        # the same live holds; none outlives one TTL from now, whatever the old clock said
        clamped = [
            attrs.evolve(h, expires_at=min(h.expires_at, now + TTL)) for h in old.live_holds(now)
        ]
        assert sorted(map(hold_key, rebuilt.live_holds(now))) == sorted(map(hold_key, clamped))
        self.inventory = rebuilt
        if any(not h.is_live(now) for h in self.recorded.values()):
            event("rebuild: dropped past-due holds")
        if clamped != old.live_holds(now):
            event("rebuild: clamped a hold to one TTL")
        self.recorded = {
            hid: attrs.evolve(h, expires_at=min(h.expires_at, now + TTL))
            for hid, h in self.recorded.items()
            if h.is_live(now)
        }

    # --- invariants ---------------------------------------------------------------

    @invariant()
    def a_seat_has_at_most_one_live_hold_and_none_once_sold(self) -> None:
        covered: set[SeatId] = set()
        for hold in self.inventory.live_holds(self.now):
            assert covered.isdisjoint(hold.seat_ids), (
                f"two live holds on {covered & set(hold.seat_ids)}"
            )
            covered.update(hold.seat_ids)
        assert covered.isdisjoint(self.inventory.sold_seats)

    @invariant()
    def no_live_hold_outlives_one_ttl(self) -> None:
        skew = self.high_water - self.now
        assert timedelta(0) <= skew <= MAX_SKEW
        for hold in self.inventory.live_holds(self.now):
            assert hold.expires_at <= self.now + TTL + skew

    @invariant()
    def inventory_agrees_with_the_model(self) -> None:
        inv, now = self.inventory, self.now
        assert {s: inv.status(s, now) for s in AREA_SEATS} == {
            s: self.model_status(s) for s in AREA_SEATS
        }
        assert sorted(hold_key(h) for h in inv.live_holds(now)) == sorted(
            h.key() for h in self.recorded.values() if h.is_live(now)
        )
        for hold_id in self.issued_hold_ids:
            found, model = inv.hold_of(hold_id), self.recorded.get(hold_id)
            assert (None if found is None else hold_key(found)) == (
                None if model is None else model.key()
            )
        assert inv.sold_seats == frozenset(self.sold)
        assert inv.last_fencing_token == self.last_token

    @invariant()
    def recorded_events_match_what_happened(self) -> None:
        events = self.inventory.collect_events()
        for recorded in events:
            assert isinstance(recorded, SeatEvent)
            assert (recorded.session_id, recorded.area_id) == (SESSION, AREA)
            assert recorded.event_id not in self.event_ids, "an event id was used twice"
            self.event_ids.add(recorded.event_id)
        assert Counter(map(event_key, events)) == Counter(self.expected_events)
        self.expected_events.clear()


TestSeatInventoryMachine = SeatInventoryMachine.TestCase
