"""Seating context: who holds which seat of one partition (one session, one area).

``SeatInventory`` is the in-memory state a partition actor owns. Every seat is
*available*, *held* (by exactly one live ``SeatHold``) or *sold*. A hold is
all-or-nothing, lives at most ``hold_ttl``, and is released, extended or turned
into a sale only by whoever knows its ``hold_id``. A sale must also present the
hold's fencing token, so a holder that lost its hold cannot sell the seat to itself.

One module, over 500 lines: the inventory, its hold and its commands' checks are one
invariant (no seat held or sold twice) that the Hypothesis machine checks as a whole.
"""

from __future__ import annotations

import heapq
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import TypedDict
from uuid import UUID

import attrs

from openticket.domain.shared import (
    Aggregate,
    AreaId,
    DomainError,
    DomainEvent,
    HoldId,
    IdFactory,
    OrderId,
    SeatId,
    SessionId,
    UserId,
    ValidationError,
)
from openticket.domain.venue import UnknownSeats, parse_seat_id

DEFAULT_HOLD_TTL = timedelta(seconds=120)


class SeatStatus(StrEnum):
    """What a buyer sees of a seat."""

    AVAILABLE = "available"
    HELD = "held"
    SOLD = "sold"


# --- errors -----------------------------------------------------------------------


class SeatsUnavailable(DomainError):
    """Some requested seats are held or sold; nothing was held."""

    code = "seat_unavailable"

    def __init__(self, seat_ids: Sequence[SeatId]) -> None:
        # raised for most requests of a sold-out sale: the message is made only if read
        Exception.__init__(self)
        self.seat_ids = tuple(seat_ids)

    @property
    def message(self) -> str:
        """Which seats stood in the way."""
        return f"seats not available: {', '.join(self.seat_ids)}"

    def __repr__(self) -> str:
        return f"SeatsUnavailable({self.seat_ids!r})"


class HoldExpired(DomainError):
    """The hold ran out of time; its seats may already be someone else's."""

    code = "hold_expired"


class NotHolder(DomainError):
    """No live hold with this id: the caller does not hold these seats."""

    code = "not_holder"


class StaleFencingToken(DomainError):
    """A fencing token older than the one in force: a newer hold superseded it."""

    code = "stale_fencing_token"


class TooManySeats(ValidationError):
    """More seats in one hold than the session allows per order."""

    code = "too_many_seats"


class SeatsSpanAreas(ValidationError):
    """A hold's seats must all be in one area (one partition)."""

    code = "seats_span_areas"


# --- value objects and events -----------------------------------------------------


@attrs.frozen(kw_only=True)
class SeatHold:
    """A claim on some seats of one partition until ``expires_at``."""

    hold_id: HoldId
    session_id: SessionId
    area_id: AreaId
    holder_id: UserId
    order_id: OrderId
    seat_ids: tuple[SeatId, ...]
    fencing_token: int
    expires_at: datetime

    def is_live(self, now: datetime) -> bool:
        """A hold is live strictly before its expiry time."""
        return now < self.expires_at


@attrs.frozen(kw_only=True)
class SeatEvent(DomainEvent):
    """Base of events about seats of one partition."""

    session_id: SessionId
    area_id: AreaId
    hold_id: HoldId
    order_id: OrderId
    seat_ids: tuple[SeatId, ...]


@attrs.frozen(kw_only=True)
class SeatsHeld(SeatEvent):
    """Seats were held for a buyer until ``expires_at``."""

    holder_id: UserId
    fencing_token: int
    expires_at: datetime


@attrs.frozen(kw_only=True)
class SeatHoldRejected(SeatEvent):
    """A hold request was refused; ``unavailable_seat_ids`` names the seats in the way."""

    holder_id: UserId
    unavailable_seat_ids: tuple[SeatId, ...]
    reason: str


@attrs.frozen(kw_only=True)
class SeatsReleased(SeatEvent):
    """The holder gave the seats back (cancel, failed payment)."""


@attrs.frozen(kw_only=True)
class SeatsExpired(SeatEvent):
    """A hold ran out of time; its seats are available again."""


@attrs.frozen(kw_only=True)
class SeatsExtended(SeatEvent):
    """The holder extended a hold to ``expires_at``."""

    expires_at: datetime


@attrs.frozen(kw_only=True)
class SeatsSold(SeatEvent):
    """A hold became a sale; the seats are sold for good (unless refunded)."""

    fencing_token: int


@attrs.frozen(kw_only=True)
class SeatsReturned(SeatEvent):
    """Sold seats were given back by a refund and are available again."""


def _frozen_mapping(value: Mapping[SeatId, OrderId]) -> Mapping[SeatId, OrderId]:
    return MappingProxyType(dict(value))


@attrs.frozen(kw_only=True)
class InventorySnapshot:
    """What rebuilds an inventory: the live holds and the sold seats with their orders."""

    holds: tuple[SeatHold, ...]
    sold: Mapping[SeatId, OrderId] = attrs.field(factory=dict, converter=_frozen_mapping)
    last_fencing_token: int = 0


class _SeatEventFields(TypedDict):
    event_id: UUID
    occurred_at: datetime
    session_id: SessionId
    area_id: AreaId
    hold_id: HoldId
    order_id: OrderId
    seat_ids: tuple[SeatId, ...]


# --- the aggregate ---------------------------------------------------------------


@attrs.define(kw_only=True)
class SeatInventory(Aggregate):
    """Seat states of one session's area: the unit a partition actor owns.

    Holds past their expiry count as gone everywhere (lazy expiry); ``expire_due``
    also removes them eagerly and records ``SeatsExpired``.
    """

    session_id: SessionId
    area_id: AreaId
    seat_ids: frozenset[SeatId]
    hold_ttl: timedelta = DEFAULT_HOLD_TTL
    _holds: dict[HoldId, SeatHold] = attrs.field(factory=dict, alias="_holds")
    _held: dict[SeatId, SeatHold] = attrs.field(factory=dict, alias="_held")
    _sold: dict[SeatId, OrderId] = attrs.field(factory=dict, alias="_sold")
    _expiry: list[tuple[datetime, int, HoldId]] = attrs.field(factory=list, alias="_expiry")
    _last_token: int = attrs.field(default=0, alias="_last_token")

    def __attrs_post_init__(self) -> None:
        if self.hold_ttl <= timedelta(0):
            raise ValidationError("a hold TTL must be positive")
        for seat in self.seat_ids:
            if parse_seat_id(seat).area_id != self.area_id:
                raise SeatsSpanAreas(f"seat {seat} is not in area {self.area_id}")

    # --- queries -------------------------------------------------------------------

    def status(self, seat_id: SeatId, now: datetime) -> SeatStatus:
        """The seat's status at ``now``."""
        if seat_id in self._sold:
            return SeatStatus.SOLD
        hold = self._held.get(seat_id)
        if hold is not None and now < hold.expires_at:
            return SeatStatus.HELD
        return SeatStatus.AVAILABLE

    def hold_of(self, hold_id: HoldId) -> SeatHold | None:
        """The hold with this id, if it is still recorded (live or not yet swept)."""
        return self._holds.get(hold_id)

    def live_holds(self, now: datetime) -> list[SeatHold]:
        """Every hold still live at ``now``."""
        return [h for h in self._holds.values() if now < h.expires_at]

    def holder_of(self, seat_id: SeatId, now: datetime) -> SeatHold | None:
        """The live hold on ``seat_id``, if any."""
        hold = self._held.get(seat_id)
        return hold if hold is not None and now < hold.expires_at else None

    @property
    def sold_seats(self) -> frozenset[SeatId]:
        """Seats sold in this partition."""
        return frozenset(self._sold)

    def sold_to(self, seat_id: SeatId) -> OrderId | None:
        """The order that bought ``seat_id``, if it is sold."""
        return self._sold.get(seat_id)

    def is_sold_to(self, order_id: OrderId, seat_ids: Iterable[SeatId]) -> bool:
        """Whether every one of ``seat_ids`` is sold to ``order_id`` (a sale already made)."""
        sold = self._sold
        return all(sold.get(s) == order_id for s in seat_ids)

    @property
    def last_fencing_token(self) -> int:
        """The highest fencing token this inventory has accepted."""
        return self._last_token

    def unavailable(self, seat_ids: Iterable[SeatId], now: datetime) -> tuple[SeatId, ...]:
        """The seats among ``seat_ids`` that are held (live) or sold at ``now``."""
        held, sold = self._held, self._sold
        taken: list[SeatId] | None = None
        for seat in seat_ids:  # a plain loop: this runs for every hold request
            if seat in sold or ((h := held.get(seat)) is not None and now < h.expires_at):
                if taken is None:
                    taken = [seat]
                else:
                    taken.append(seat)
        return () if taken is None else tuple(taken)

    def validate_request(self, seat_ids: Sequence[SeatId], max_seats: int | None) -> None:
        """Refuse a request that could never succeed: empty, repeated, foreign or too many seats."""
        count = len(seat_ids)
        if not count:
            raise ValidationError("a hold needs at least one seat")
        if count > 1 and len(set(seat_ids)) != count:
            raise ValidationError("a seat appears twice in the request")
        if max_seats is not None and count > max_seats:
            raise TooManySeats(f"at most {max_seats} seats per order")
        known = self.seat_ids
        for seat in seat_ids:
            if seat not in known:
                break
        else:
            return
        unknown = tuple(s for s in seat_ids if s not in known)
        if unknown:
            if any(_area_of(s) not in (None, self.area_id) for s in unknown):
                raise SeatsSpanAreas("all seats of an order must be in one area")
            raise UnknownSeats(unknown)

    def check_hold(
        self,
        seat_ids: Sequence[SeatId],
        max_seats: int | None,
        now: datetime,
        *,
        claimed: Collection[SeatId] | None = None,
        freed: Collection[SeatId] | None = None,
    ) -> tuple[SeatId, ...]:
        """The seats in the way of holding ``seat_ids`` now; empty if it can be granted.

        Raises what ``validate_request`` raises for a request that could never succeed.
        ``claimed`` and ``freed`` are the seats held and given back by decisions taken
        but not yet recorded here (earlier commands of the batch an actor decides):
        a seat claimed is in the way, a seat freed is not.
        """
        self.validate_request(seat_ids, max_seats)
        taken = self.unavailable(seat_ids, now)
        if freed:
            taken = tuple(s for s in taken if s not in freed)
        if claimed:
            taken = tuple(s for s in seat_ids if s in claimed or s in taken)
        return taken

    def live_hold(self, hold_id: HoldId, now: datetime) -> SeatHold:
        """The hold ``hold_id`` if it is live at ``now``.

        Raises ``NotHolder`` for a hold this partition does not have, ``HoldExpired``
        for one past its expiry: only a live hold can be released, extended or sold.
        """
        hold = self._holds.get(hold_id)
        if hold is None:
            raise NotHolder(f"no hold {hold_id} in this partition")
        if not now < hold.expires_at:
            raise HoldExpired(f"hold {hold_id} expired at {hold.expires_at.isoformat()}")
        return hold

    def check_sale(
        self,
        hold_id: HoldId,
        fencing_token: int,
        order_id: OrderId,
        seat_ids: Iterable[SeatId],
        now: datetime,
    ) -> SeatHold | None:
        """The live hold a sale would turn into sold seats; ``None`` if already sold.

        A sale of seats already sold to ``order_id`` is a replay and changes nothing.
        Otherwise the hold must be live and the token its own (``NotHolder``,
        ``HoldExpired``, ``StaleFencingToken``), as ``confirm_sale`` requires.
        """
        seats = tuple(seat_ids)
        if seats and self.is_sold_to(order_id, seats):
            return None
        return self._fenced(hold_id, fencing_token, now)

    def sold_to_order(self, order_id: OrderId, seat_ids: Iterable[SeatId]) -> tuple[SeatId, ...]:
        """The seats among ``seat_ids`` sold to ``order_id``: those a refund may return."""
        sold = self._sold
        return tuple(s for s in seat_ids if sold.get(s) == order_id)

    def snapshot(self, now: datetime) -> InventorySnapshot:
        """Live holds and sold seats, enough to rebuild this inventory elsewhere."""
        return InventorySnapshot(
            holds=tuple(self.live_holds(now)),
            sold=dict(self._sold),
            last_fencing_token=self._last_token,
        )

    # --- commands ------------------------------------------------------------------

    def hold(
        self,
        *,
        hold_id: HoldId,
        holder_id: UserId,
        order_id: OrderId,
        seat_ids: Sequence[SeatId],
        fencing_token: int,
        now: datetime,
        ids: IdFactory,
        max_seats: int | None = None,
    ) -> SeatHold:
        """Hold all of ``seat_ids`` for ``hold_ttl``, or none of them.

        Raises ``SeatsUnavailable`` naming the seats in the way; a hold that is past its
        expiry but not yet swept does not stand in the way (it is expired first).
        """
        self.validate_request(seat_ids, max_seats)
        hold = SeatHold(
            hold_id=hold_id,
            session_id=self.session_id,
            area_id=self.area_id,
            holder_id=holder_id,
            order_id=order_id,
            seat_ids=tuple(seat_ids),
            fencing_token=fencing_token,
            expires_at=now + self.hold_ttl,
        )
        self.grant(hold, now=now, ids=ids)
        return hold

    def grant(self, hold: SeatHold, *, now: datetime, ids: IdFactory) -> None:
        """Record a hold decided and fenced elsewhere (the lock store granted it).

        The request's shape is the caller's to check (``validate_request``); this still
        refuses what would break an invariant: a hold of another partition, one living
        longer than ``hold_ttl``, a token not newer than the last, a seat held or sold.
        """
        if hold.session_id != self.session_id or hold.area_id != self.area_id:
            raise SeatsSpanAreas(f"hold {hold.hold_id} is not for this partition")
        if hold.hold_id in self._holds:
            raise ValidationError(f"hold {hold.hold_id} exists already")
        if hold.expires_at > now + self.hold_ttl:
            raise ValidationError(f"hold {hold.hold_id} would outlive the hold TTL")
        token = hold.fencing_token
        if token <= self._last_token:
            raise StaleFencingToken(f"token {token} is not newer than {self._last_token}")
        held = self._held
        for seat in hold.seat_ids:
            stale = held.get(seat)
            if stale is not None and not now < stale.expires_at:
                self._expire(stale, now, ids)
        taken = self.unavailable(hold.seat_ids, now)
        if taken:
            raise SeatsUnavailable(taken)
        self._add(hold)
        self._last_token = token
        self.record(
            SeatsHeld(
                event_id=ids(),
                occurred_at=now,
                session_id=self.session_id,
                area_id=self.area_id,
                hold_id=hold.hold_id,
                order_id=hold.order_id,
                seat_ids=hold.seat_ids,
                holder_id=hold.holder_id,
                fencing_token=token,
                expires_at=hold.expires_at,
            )
        )

    def release(self, hold_id: HoldId, *, now: datetime, ids: IdFactory) -> SeatHold:
        """Give the hold's seats back. Only the hold's id can; an expired hold cannot."""
        hold = self.live_hold(hold_id, now)
        self._remove(hold)
        self.record(SeatsReleased(**self._event_fields(hold, now, ids)))
        return hold

    def extend(self, hold_id: HoldId, *, now: datetime, ids: IdFactory) -> SeatHold:
        """Push a live hold's expiry to ``now + hold_ttl``."""
        hold = self.live_hold(hold_id, now)
        extended = attrs.evolve(hold, expires_at=now + self.hold_ttl)
        self._remove(hold)
        self._add(extended)
        self.record(
            SeatsExtended(**self._event_fields(extended, now, ids), expires_at=extended.expires_at)
        )
        return extended

    def confirm_sale(
        self, hold_id: HoldId, fencing_token: int, *, now: datetime, ids: IdFactory
    ) -> SeatHold:
        """Turn a live hold into a sale; the token must be the hold's own."""
        hold = self._fenced(hold_id, fencing_token, now)
        self._remove(hold)
        self._sold.update(dict.fromkeys(hold.seat_ids, hold.order_id))
        self.record(SeatsSold(**self._event_fields(hold, now, ids), fencing_token=fencing_token))
        return hold

    def return_seats(
        self,
        seat_ids: Sequence[SeatId],
        *,
        order_id: OrderId,
        hold_id: HoldId,
        now: datetime,
        ids: IdFactory,
    ) -> None:
        """Make sold seats available again (a refund voided their tickets)."""
        not_sold = tuple(s for s in seat_ids if self._sold.get(s) != order_id)
        if not_sold:
            raise ValidationError(f"seats not sold to order {order_id}: {', '.join(not_sold)}")
        for seat in seat_ids:
            del self._sold[seat]
        self.record(
            SeatsReturned(
                event_id=ids(),
                occurred_at=now,
                session_id=self.session_id,
                area_id=self.area_id,
                hold_id=hold_id,
                order_id=order_id,
                seat_ids=tuple(seat_ids),
            )
        )

    def expire_due(self, now: datetime, *, ids: IdFactory) -> list[SeatHold]:
        """Remove every hold whose expiry is at or before ``now``; return them."""
        expired: list[SeatHold] = []
        queue = self._expiry
        while queue and queue[0][0] <= now:
            expires_at, _, hold_id = heapq.heappop(queue)
            hold = self._holds.get(hold_id)
            if hold is not None and hold.expires_at == expires_at:
                self._expire(hold, now, ids)
                expired.append(hold)
        return expired

    @classmethod
    def rebuild(
        cls,
        *,
        session_id: SessionId,
        area_id: AreaId,
        seat_ids: Iterable[SeatId],
        snapshot: InventorySnapshot,
        now: datetime,
        hold_ttl: timedelta = DEFAULT_HOLD_TTL,
    ) -> SeatInventory:
        """An inventory from stored state: live holds and sold seats (e.g. after failover).

        Holds already past expiry are dropped; a hold overlapping a sold seat is dropped
        too (the sale wins: the database decides who owns a seat).
        """
        inventory = cls(
            session_id=session_id, area_id=area_id, seat_ids=frozenset(seat_ids), hold_ttl=hold_ttl
        )
        inventory._sold.update((s, o) for s, o in snapshot.sold.items() if s in inventory.seat_ids)
        tokens = [snapshot.last_fencing_token]
        for hold in sorted(snapshot.holds, key=lambda h: h.fencing_token):
            tokens.append(hold.fencing_token)
            if not hold.is_live(now) or hold.session_id != session_id or hold.area_id != area_id:
                continue
            if any(s in inventory._sold or s in inventory._held for s in hold.seat_ids):
                continue
            if not all(s in inventory.seat_ids for s in hold.seat_ids):
                continue
            if hold.hold_id in inventory._holds:
                # a store that answers one hold id twice: keep the first, as hold() would
                continue
            # a rebuilt hold never outlives one TTL from now, whatever the store said
            inventory._add(attrs.evolve(hold, expires_at=min(hold.expires_at, now + hold_ttl)))
        inventory._last_token = max(tokens)
        return inventory

    # --- internals -----------------------------------------------------------------

    def _fenced(self, hold_id: HoldId, fencing_token: int, now: datetime) -> SeatHold:
        hold = self.live_hold(hold_id, now)
        if fencing_token != hold.fencing_token:
            raise StaleFencingToken(
                f"hold {hold_id} has token {hold.fencing_token}, not {fencing_token}"
            )
        return hold

    def _add(self, hold: SeatHold) -> None:
        self._holds[hold.hold_id] = hold
        for seat in hold.seat_ids:
            self._held[seat] = hold
        heapq.heappush(self._expiry, (hold.expires_at, hold.fencing_token, hold.hold_id))

    def _remove(self, hold: SeatHold) -> None:
        del self._holds[hold.hold_id]
        for seat in hold.seat_ids:
            if self._held.get(seat) is hold:
                del self._held[seat]

    def _expire(self, hold: SeatHold, now: datetime, ids: IdFactory) -> None:
        self._remove(hold)
        self.record(SeatsExpired(**self._event_fields(hold, now, ids)))

    def _event_fields(self, hold: SeatHold, now: datetime, ids: IdFactory) -> _SeatEventFields:
        return {
            "event_id": ids(),
            "occurred_at": now,
            "session_id": self.session_id,
            "area_id": self.area_id,
            "hold_id": hold.hold_id,
            "order_id": hold.order_id,
            "seat_ids": hold.seat_ids,
        }


def _area_of(seat_id: SeatId) -> AreaId | None:
    try:
        return parse_seat_id(seat_id).area_id
    except ValidationError:
        return None
