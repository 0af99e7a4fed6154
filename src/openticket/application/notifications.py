"""Live notifications: domain events turned into what seat-map and order feeds show."""

from __future__ import annotations

from openticket.application.messagebus import MessageBus
from openticket.application.ports.messaging import (
    Notifier,
    OrderStatusChanged,
    SeatStatusChanged,
)
from openticket.application.ports.seat_cache import SeatStatusCache
from openticket.application.roles import NOTIFICATIONS, EventRole, Handler
from openticket.application.seating.actor import PartitionLoaded
from openticket.domain.ordering import (
    OrderCancelled,
    OrderCompleted,
    OrderCreated,
    OrderEvent,
    OrderExpired,
    OrderFailed,
    OrderPaymentStarted,
    OrderRefunded,
    OrderStatus,
)
from openticket.domain.seating import (
    SeatEvent,
    SeatsExpired,
    SeatsHeld,
    SeatsReleased,
    SeatsReturned,
    SeatsSold,
    SeatStatus,
)
from openticket.domain.shared import DomainEvent

SEAT_STATUS_AFTER: dict[type[SeatEvent], SeatStatus] = {
    SeatsHeld: SeatStatus.HELD,
    SeatsReleased: SeatStatus.AVAILABLE,
    SeatsExpired: SeatStatus.AVAILABLE,
    SeatsReturned: SeatStatus.AVAILABLE,
    SeatsSold: SeatStatus.SOLD,
}
"""The status each seat has after an event (events not listed change no status)."""

ORDER_STATUS_AFTER: dict[type[OrderEvent], OrderStatus] = {
    OrderCreated: OrderStatus.CREATED,
    OrderPaymentStarted: OrderStatus.PAYMENT_PENDING,
    OrderCompleted: OrderStatus.COMPLETED,
    OrderFailed: OrderStatus.FAILED,
    OrderExpired: OrderStatus.EXPIRED,
    OrderCancelled: OrderStatus.CANCELLED,
    OrderRefunded: OrderStatus.REFUNDED,
}
"""The status an order has after an event."""


class LiveNotifications:
    """Feeds the ``Notifier`` (and the shared seat-status cache, if any) from events.

    ``cache_with_news``: the notifier records seat changes in ``seat_cache`` itself,
    ahead of their news and in the same round trip (the Redis notifier made with the
    cache); a seat event then only goes to the notifier. The cache's whole-partition
    seeding (``PartitionLoaded``) still writes ``seat_cache`` directly.
    """

    def __init__(
        self,
        notifier: Notifier,
        seat_cache: SeatStatusCache | None = None,
        *,
        cache_with_news: bool = False,
    ) -> None:
        self._notifier = notifier
        self._seat_cache = seat_cache
        self._cache_with_news = cache_with_news
        """The notifier records seat changes in the cache itself, with their news."""

    def role(self) -> EventRole:
        """The ``notifications`` role: every seat and order event a watcher would see."""
        # only the events that change what a watcher sees: a refused hold changes nothing
        handlers: dict[type[DomainEvent], tuple[str, Handler]] = {
            seat_event: ("notify_seat_watchers", self.seats_changed)
            for seat_event in SEAT_STATUS_AFTER
        }
        if self._seat_cache is not None:
            handlers[PartitionLoaded] = ("seed_seat_cache", self.partition_loaded)
        for order_event in ORDER_STATUS_AFTER:
            handlers[order_event] = ("notify_order_watchers", self.order_changed)
        return EventRole(NOTIFICATIONS, handlers)

    def register(self, bus: MessageBus) -> None:
        """Subscribe to every seat and order event."""
        self.role().subscribe(bus)

    async def seats_changed(self, event: SeatEvent) -> None:
        """One notification per seat whose status the event changed."""
        status = SEAT_STATUS_AFTER.get(type(event))
        if status is None:
            return
        changes = [
            SeatStatusChanged(
                session_id=event.session_id, seat_id=seat, status=status, at=event.occurred_at
            )
            for seat in event.seat_ids
        ]
        if self._seat_cache is not None and not self._cache_with_news:
            await self._seat_cache.apply(changes)  # first: a reader who got the news finds it
        await self._notifier.publish(changes)

    async def partition_loaded(self, event: PartitionLoaded) -> None:
        """The whole state of a freshly loaded partition into the seat-status cache."""
        cache = self._seat_cache
        if cache is None:
            return
        at, session_id = event.occurred_at, event.session_id
        await cache.apply(
            [
                SeatStatusChanged(session_id=session_id, seat_id=seat, status=status, at=at)
                for seats, status in (
                    (event.available, SeatStatus.AVAILABLE),
                    (event.held, SeatStatus.HELD),
                    (event.sold, SeatStatus.SOLD),
                )
                for seat in seats
            ]
        )
        await cache.mark_complete(session_id, event.area_id)

    async def order_changed(self, event: OrderEvent) -> None:
        """The order's new status to its owner's watchers."""
        status = ORDER_STATUS_AFTER.get(type(event))
        if status is None:
            return
        await self._notifier.publish(
            [
                OrderStatusChanged(
                    user_id=event.user_id,
                    order_id=event.order_id,
                    status=status,
                    at=event.occurred_at,
                )
            ]
        )
