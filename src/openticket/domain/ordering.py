"""Ordering context: a buyer's order for held seats and its status machine.

::

    created ──► payment_pending ──► completed ──► refunded
       │  │            │  │
       │  └──► cancelled ◄┘
       ├──► expired ◄────┤
       └─────────────────┴──► failed (payment_pending only)

An order is created for a hold and expires with it; starting a payment does not
extend it. Only the moves drawn above are legal; anything else is ``InvalidTransition``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from typing import TypedDict
from uuid import UUID

import attrs

from openticket.domain.catalog import PriceCategory, QuotaExhausted, Session, UserLimitReached
from openticket.domain.seating import HoldExpired, SeatsSpanAreas
from openticket.domain.shared import (
    Aggregate,
    AreaId,
    DomainError,
    DomainEvent,
    HoldId,
    IdFactory,
    InvalidTransition,
    Money,
    OrderId,
    PaymentId,
    SeatId,
    SessionId,
    UserId,
    ValidationError,
    require_aware,
    total_of,
)
from openticket.domain.venue import area_of


class OrderStatus(StrEnum):
    """Where an order stands."""

    CREATED = "created"
    PAYMENT_PENDING = "payment_pending"
    COMPLETED = "completed"
    EXPIRED = "expired"
    FAILED = "failed"
    CANCELLED = "cancelled"
    REFUNDED = "refunded"


_S = OrderStatus
LEGAL_TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    _S.CREATED: frozenset({_S.PAYMENT_PENDING, _S.EXPIRED, _S.CANCELLED}),
    _S.PAYMENT_PENDING: frozenset({_S.COMPLETED, _S.FAILED, _S.EXPIRED, _S.CANCELLED}),
    _S.COMPLETED: frozenset({_S.REFUNDED}),
    _S.EXPIRED: frozenset(),
    _S.FAILED: frozenset(),
    _S.CANCELLED: frozenset(),
    _S.REFUNDED: frozenset(),
}
"""Every legal move of the order status machine; nothing else is allowed."""

OPEN_STATUSES = frozenset({_S.CREATED, _S.PAYMENT_PENDING})
"""Statuses in which the order still holds its seats."""

COUNTED_STATUSES = OPEN_STATUSES | {_S.COMPLETED}
"""Statuses whose seats count against a buyer's cap and a price category's quota."""


class OrderNotYetDue(DomainError):
    """An order cannot expire before its ``expires_at``."""

    code = "order_not_due"


class PaymentMismatch(DomainError):
    """A payment settled an order it was not started for."""

    code = "payment_mismatch"


@attrs.frozen
class OrderItem:
    """One seat of an order at the price it was sold for."""

    seat_id: SeatId
    price: Money


@attrs.frozen(kw_only=True)
class OrderEvent(DomainEvent):
    """Base of events about one order."""

    order_id: OrderId
    user_id: UserId
    session_id: SessionId


@attrs.frozen(kw_only=True)
class OrderCreated(OrderEvent):
    """An order was opened for held seats."""

    hold_id: HoldId
    seat_ids: tuple[SeatId, ...]
    total: Money
    expires_at: datetime


@attrs.frozen(kw_only=True)
class OrderPaymentStarted(OrderEvent):
    """The buyer started paying; the order awaits the provider."""

    payment_id: PaymentId


@attrs.frozen(kw_only=True)
class OrderCompleted(OrderEvent):
    """The order was paid; its tickets are issued."""

    payment_id: PaymentId


@attrs.frozen(kw_only=True)
class OrderFailed(OrderEvent):
    """The payment failed; the seats go back."""

    reason: str


@attrs.frozen(kw_only=True)
class OrderExpired(OrderEvent):
    """The hold ran out before the order was paid."""


@attrs.frozen(kw_only=True)
class OrderCancelled(OrderEvent):
    """The buyer cancelled before paying."""


@attrs.frozen(kw_only=True)
class OrderRefunded(OrderEvent):
    """A completed order was refunded; its tickets are void."""


def _items(value: Sequence[OrderItem]) -> tuple[OrderItem, ...]:
    items = tuple(value)
    if not items:
        raise ValidationError("an order needs at least one seat")
    seats = [i.seat_id for i in items]
    if len(set(seats)) != len(seats):
        raise ValidationError("a seat appears twice in the order")
    if len({i.price.currency for i in items}) != 1:
        raise ValidationError("all items of an order are in one currency")
    if any(i.price.is_negative for i in items):
        raise ValidationError("a price cannot be negative")
    return items


@attrs.frozen(kw_only=True)
class OrderLimits:
    """The caps a new order of a session must stay within, counted over other orders.

    Counted are the seats of the session's orders in ``COUNTED_STATUSES`` (live and
    completed; expired, failed, cancelled and refunded orders count no more):

    - the buyer's seats there plus the new order's stay at most ``seats_per_user``
      (``UserLimitReached`` otherwise);
    - with a ``quota``, the seats there in ``quota_areas`` (the areas of the order's
      price category) plus the new order's seats in them stay at most ``quota``
      (``QuotaExhausted`` otherwise).
    """

    seats_per_user: int
    quota: int | None = None
    quota_areas: frozenset[AreaId] = frozenset()

    @classmethod
    def of(cls, session: Session, category: PriceCategory | None) -> OrderLimits:
        """The limits of an order of ``session`` whose seats sell in ``category``."""
        if category is None or category.quota is None:
            return cls(seats_per_user=session.seat_cap_per_user)
        return cls(
            seats_per_user=session.seat_cap_per_user,
            quota=category.quota,
            quota_areas=category.area_ids,
        )

    def seats_in_quota(self, order: Order) -> int:
        """How many of ``order``'s seats the quota counts (0 without a quota)."""
        if self.quota is None or order.area_id not in self.quota_areas:
            return 0
        return len(order.items)

    def check(self, order: Order, *, user_taken: int, category_taken: int) -> None:
        """Raise if ``order`` would pass a cap, given the seats counted without it.

        ``user_taken``: its buyer's seats in counted orders of the session;
        ``category_taken``: the seats in counted orders of the session in ``quota_areas``.
        """
        if user_taken + len(order.items) > self.seats_per_user:
            raise UserLimitReached.counted(cap=self.seats_per_user, taken=user_taken)
        if self.quota is not None:
            requested = self.seats_in_quota(order)
            if requested and category_taken + requested > self.quota:
                raise QuotaExhausted.counted(quota=self.quota, taken=category_taken)


@attrs.define(kw_only=True)
class Order(Aggregate):
    """A buyer's order for the seats of one hold. Use :meth:`create` for a new one.

    Its seats are all in one area of the session, ``area_id``: the partition that
    holds and sells them.
    """

    order_id: OrderId
    user_id: UserId
    session_id: SessionId
    area_id: AreaId
    hold_id: HoldId
    fencing_token: int
    items: tuple[OrderItem, ...] = attrs.field(converter=_items)
    total: Money
    status: OrderStatus = OrderStatus.CREATED
    created_at: datetime
    expires_at: datetime
    payment_id: PaymentId | None = None
    completed_at: datetime | None = None
    closed_at: datetime | None = None
    failure_reason: str | None = None

    @classmethod
    def create(
        cls,
        *,
        order_id: OrderId,
        user_id: UserId,
        session_id: SessionId,
        area_id: AreaId,
        hold_id: HoldId,
        fencing_token: int,
        items: Sequence[OrderItem],
        now: datetime,
        expires_at: datetime,
        ids: IdFactory,
    ) -> Order:
        """Open an order for held seats of ``area_id``; it expires when the hold does."""
        require_aware(now, "now")
        require_aware(expires_at, "expires_at")
        if expires_at <= now:
            raise HoldExpired("cannot open an order for a hold that has expired")
        items = _items(items)
        if any(area_of(i.seat_id) != area_id for i in items):
            raise SeatsSpanAreas(f"every seat of the order must be in area {area_id}")
        order = cls(
            order_id=order_id,
            user_id=user_id,
            session_id=session_id,
            area_id=area_id,
            hold_id=hold_id,
            fencing_token=fencing_token,
            items=items,
            total=total_of((i.price for i in items), items[0].price.currency),
            created_at=now,
            expires_at=expires_at,
        )
        order.record(
            OrderCreated(
                **order._fields(now, ids),
                hold_id=hold_id,
                seat_ids=order.seat_ids,
                total=order.total,
                expires_at=expires_at,
            )
        )
        return order

    @property
    def seat_ids(self) -> tuple[SeatId, ...]:
        """The seats of this order."""
        return tuple(i.seat_id for i in self.items)

    @property
    def is_open(self) -> bool:
        """Whether the order still holds seats (created or awaiting payment)."""
        return self.status in OPEN_STATUSES

    @property
    def counts_against_limits(self) -> bool:
        """Whether its seats count against the buyer's cap and the quotas (live or sold)."""
        return self.status in COUNTED_STATUSES

    def is_due(self, now: datetime) -> bool:
        """Whether an open order has run out of time at ``now``."""
        return self.is_open and now >= self.expires_at

    def start_payment(self, payment_id: PaymentId, *, now: datetime, ids: IdFactory) -> None:
        """Await payment ``payment_id``. The hold must still be live; it is not extended."""
        self._move(OrderStatus.PAYMENT_PENDING)
        if now >= self.expires_at:
            raise HoldExpired(f"order {self.order_id} expired at {self.expires_at.isoformat()}")
        self.status = OrderStatus.PAYMENT_PENDING
        self.payment_id = payment_id
        self.record(OrderPaymentStarted(**self._fields(now, ids), payment_id=payment_id))

    def complete(self, payment_id: PaymentId, *, now: datetime, ids: IdFactory) -> None:
        """The payment this order awaited succeeded."""
        self._move(OrderStatus.COMPLETED)
        if payment_id != self.payment_id:
            raise PaymentMismatch(f"order {self.order_id} awaits another payment")
        self.status = OrderStatus.COMPLETED
        self.completed_at = self.closed_at = now
        self.record(OrderCompleted(**self._fields(now, ids), payment_id=payment_id))

    def fail(self, reason: str, *, now: datetime, ids: IdFactory) -> None:
        """The payment failed; the order ends and its seats go back."""
        self._move(OrderStatus.FAILED)
        self.status = OrderStatus.FAILED
        self.failure_reason = reason
        self.closed_at = now
        self.record(OrderFailed(**self._fields(now, ids), reason=reason))

    def expire(self, *, now: datetime, ids: IdFactory) -> None:
        """End an unpaid order whose hold ran out."""
        self._move(OrderStatus.EXPIRED)
        if now < self.expires_at:
            raise OrderNotYetDue(f"order {self.order_id} is due at {self.expires_at.isoformat()}")
        self.status = OrderStatus.EXPIRED
        self.closed_at = now
        self.record(OrderExpired(**self._fields(now, ids)))

    def cancel(self, *, now: datetime, ids: IdFactory) -> None:
        """The buyer gives up the order before it is paid."""
        self._move(OrderStatus.CANCELLED)
        self.status = OrderStatus.CANCELLED
        self.closed_at = now
        self.record(OrderCancelled(**self._fields(now, ids)))

    def refund(self, *, now: datetime, ids: IdFactory) -> None:
        """A completed order is paid back; its tickets become void."""
        self._move(OrderStatus.REFUNDED)
        self.status = OrderStatus.REFUNDED
        self.closed_at = now
        self.record(OrderRefunded(**self._fields(now, ids)))

    def _move(self, target: OrderStatus) -> None:
        if target not in LEGAL_TRANSITIONS[self.status]:
            raise InvalidTransition("order", self.status.value, target.value)

    def _fields(self, now: datetime, ids: IdFactory) -> _OrderEventFields:
        return {
            "event_id": ids(),
            "occurred_at": now,
            "order_id": self.order_id,
            "user_id": self.user_id,
            "session_id": self.session_id,
        }


class _OrderEventFields(TypedDict):
    event_id: UUID
    occurred_at: datetime
    order_id: OrderId
    user_id: UserId
    session_id: SessionId
