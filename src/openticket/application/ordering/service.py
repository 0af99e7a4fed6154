"""Ordering use cases: place an order for held seats, cancel it, expire it, read it."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import TypeVar

import structlog

from openticket.application.access import Requester
from openticket.application.catalog.service import CatalogService
from openticket.application.errors import NotFound
from openticket.application.gate.waiting_room import Client, QueueRequired, WaitingRoom
from openticket.application.ports.clock import Clock, IdGenerator
from openticket.application.ports.errors import ConcurrencyError
from openticket.application.ports.repositories import DEFAULT_PAGE_SIZE, Page
from openticket.application.ports.unit_of_work import UnitOfWork
from openticket.application.seating.api import Seating
from openticket.application.seating.commands import HoldSeats, ReleaseSeats
from openticket.application.transactions import Transactions
from openticket.domain.catalog import QuotaExhausted, Session, UserLimitReached
from openticket.domain.identity import Role
from openticket.domain.ordering import Order, OrderItem, OrderLimits
from openticket.domain.seating import SeatsSpanAreas, SeatsUnavailable
from openticket.domain.shared import (
    HoldId,
    OrderId,
    SessionId,
    ValidationError,
)
from openticket.domain.venue import parse_seat_id

T = TypeVar("T")

_log = structlog.get_logger("openticket.ordering")

_REFUSALS = (SeatsUnavailable, UserLimitReached, QuotaExhausted)
"""Refusals a script meets again and again: the bot defence counts them."""


class OrderingService:
    """Buyers' orders: all-or-nothing holds turned into orders that expire with them."""

    def __init__(
        self,
        *,
        transactions: Transactions,
        catalog: CatalogService,
        seating: Seating,
        clock: Clock,
        ids: IdGenerator,
        gate: WaitingRoom | None = None,
    ) -> None:
        self._tx = transactions
        self._catalog = catalog
        self._seating = seating
        self._clock = clock
        self._ids = ids
        self._gate = gate

    async def place_order(
        self,
        by: Requester,
        session_id: SessionId,
        seat_ids: Sequence[str],
        admission_token: str | None = None,
        client: Client | None = None,
    ) -> Order:
        """Hold every seat and open an order for them, or hold nothing.

        Raises ``Forbidden`` for a caller without the buyer role (an organizer's or a
        staff account; admins may act on anything), ``NotFound`` (no session),
        ``SaleNotOpen``, ``ValidationError`` family (malformed, unknown or unpriced
        seats, several areas, too many seats), ``SeatsUnavailable`` naming the seats
        in the way, ``UserLimitReached`` when the buyer's seats in live and completed
        orders of the session would pass its per-user cap, and ``QuotaExhausted`` when
        the seats' price category would pass its quota. Caps and quotas are counted by
        the order store, where every partition's and every process's orders meet; a
        refused order gives its hold back. A session sold through a waiting room needs
        ``admission_token``, the caller's own running admission (``QueueRequired``
        otherwise, before any seat is held); an order that takes the buyer's last seats
        spends it.
        """
        by.require(Role.BUYER)
        context = await self._catalog.sale_context(session_id)
        session = context.session
        session.ensure_on_sale(self._clock.now())
        gate = self._gate
        if gate is not None:
            await gate.check_order(by, session, admission_token, client)
        elif session.queue_enabled:
            raise QueueRequired(f"session {session_id} sells through a waiting room")
        if not seat_ids:
            raise ValidationError("an order needs at least one seat")
        positions = [parse_seat_id(s) for s in seat_ids]
        areas = {p.area_id for p in positions}
        if len(areas) != 1:
            raise SeatsSpanAreas("all seats of an order must be in one area")
        (area_id,) = areas
        wanted = tuple(p.seat_id for p in positions)
        if len(set(wanted)) != len(wanted):
            raise ValidationError("a seat appears twice in the order")
        context.venue.seat_map.require_seats(wanted)
        items = [OrderItem(seat, context.prices.price_of(seat)) for seat in wanted]
        limits = OrderLimits.of(session, context.prices.category_of_area(area_id))
        order_id, hold_id = OrderId(self._ids.new_id()), HoldId(self._ids.new_id())
        try:
            hold = await self._seating.ask(
                HoldSeats(
                    session_id=session_id,
                    area_id=area_id,
                    hold_id=hold_id,
                    holder_id=by.user_id,
                    order_id=order_id,
                    seat_ids=wanted,
                    max_seats=session.max_seats_per_order,
                )
            )
            async with self._tx.unit() as uow:
                try:
                    order = Order.create(
                        order_id=order_id,
                        user_id=by.user_id,
                        session_id=session_id,
                        area_id=area_id,
                        hold_id=hold_id,
                        fencing_token=hold.fencing_token,
                        items=items,
                        now=self._clock.now(),
                        expires_at=hold.expires_at,
                        ids=self._ids.new_id,
                    )
                    await uow.orders.add(order, limits)
                    await uow.commit()
                except BaseException:
                    # the order was not stored: give the seats back now rather than at expiry
                    with contextlib.suppress(Exception):
                        await self._seating.ask(
                            ReleaseSeats(session_id=session_id, area_id=area_id, hold_id=hold_id)
                        )
                    raise
        except _REFUSALS:  # the seats are taken, or the buyer's cap or a quota reached
            if gate is not None:
                await gate.refused(by, session_id, client)
            raise
        if session.queue_enabled and self._gate is not None:
            await self._spend_at_cap(by, session, len(wanted))
        return order

    async def _spend_at_cap(self, by: Requester, session: Session, seats: int) -> None:
        """End the buyer's admission once they have all the seats they may have.

        The order is stored by now: a failure here is logged, never answered (the
        admission then runs out by itself).
        """
        cap = session.seat_cap_per_user
        try:
            if seats < cap:  # earlier orders may have taken the rest
                async with self._tx.unit() as uow:
                    seats = await uow.orders.seats_taken(session.session_id, by.user_id)
            if seats >= cap and self._gate is not None:
                await self._gate.spend(by, session.session_id)
        except Exception:
            _log.exception("admission_not_spent", session_id=str(session.session_id))

    async def get_order(self, by: Requester, order_id: OrderId) -> Order:
        """An order of the caller's (admins: anyone's); ``NotFound`` otherwise."""
        async with self._tx.unit() as uow:
            order = await uow.orders.get(order_id)
        if order is None or not (by.is_admin or order.user_id == by.user_id):
            raise NotFound(f"no order {order_id} of yours")
        return order

    async def list_orders(
        self, by: Requester, *, limit: int = DEFAULT_PAGE_SIZE, cursor: str | None = None
    ) -> Page[Order]:
        """The caller's orders, oldest first."""
        async with self._tx.unit() as uow:
            return await uow.orders.list_for_user(by.user_id, limit=limit, cursor=cursor)

    async def cancel_order(self, by: Requester, order_id: OrderId) -> Order:
        """The buyer gives up an unpaid order; its seats are released (``OrderCancelled``)."""

        async def cancel(uow: UnitOfWork) -> Order:
            order = await uow.orders.get(order_id)
            if order is None or order.user_id != by.user_id:
                raise NotFound(f"no order {order_id} of yours")
            order.cancel(now=self._clock.now(), ids=self._ids.new_id)
            await uow.orders.save(order)
            return order

        return await self._tx.run(cancel)

    async def expire_due(self, *, limit: int = 500) -> int:
        """Expire every open order whose hold has run out; return how many."""
        now = self._clock.now()
        async with self._tx.unit() as uow:
            due = await uow.orders.list_due(now, limit=limit)
        expired = 0
        for candidate in due:
            try:
                async with self._tx.unit() as uow:
                    order = await uow.orders.get(candidate.order_id)
                    if order is None or not order.is_due(now):
                        continue
                    order.expire(now=now, ids=self._ids.new_id)
                    await uow.orders.save(order)
                    await uow.commit()
            except ConcurrencyError:
                continue  # it moved on meanwhile (paid, cancelled); the next sweep will see
            expired += 1
        return expired
