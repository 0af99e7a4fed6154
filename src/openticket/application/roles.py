"""Event roles: the event handlers that run together, in process or as durable consumers.

A role is a named table of event handlers — one per kind of event — with one duty:
``ticketing`` turns paid orders into tickets, ``order-saga`` carries orders through
failure and refunds, ``payments`` checks the payment of an order that ended unpaid,
``notifications`` feeds the live views. Where it runs is the deployment's choice
(:class:`SagaPlacement`):

* on the in-process :class:`~openticket.application.messagebus.MessageBus` (one
  process: every step runs there, retried with backoff), or
* as one durable consumer per role (and per stream) in ``openticket worker``
  processes, which handle every event at least once whatever process committed it;
  the API process may still run the step a request set off before it answers
  (``inline``), leaving failures to the consumers.

Handlers are idempotent by event id, so running the same step in both places, or
twice after a redelivery, changes nothing the second time.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from enum import StrEnum
from typing import Any, Final

import attrs

from openticket.application.messagebus import MessageBus, SettledHere
from openticket.domain.shared import DomainEvent

TICKETING: Final = "ticketing"
"""Paid orders: sell the held seats, issue the tickets, complete the order (or refund)."""
ORDER_SAGA: Final = "order-saga"
"""Orders that failed, ended unpaid or were refunded: the order and its seats follow."""
PAYMENTS: Final = "payments"
"""Orders that ended unpaid: ask the provider about their payments at once."""
NOTIFICATIONS: Final = "notifications"
"""Seat and order changes to the live feeds (and the shared seat-status cache)."""

Handler = Callable[[Any], Awaitable[None]]


class SagaPlacement(StrEnum):
    """Where the saga's roles (ticketing, order-saga, payments) run in this process."""

    LOCAL = "local"
    """On the in-process bus, retried there: the only place they run (one process)."""
    INLINE = "inline"
    """On the in-process bus, tried once: workers' durable consumers make sure of them."""
    ELSEWHERE = "elsewhere"
    """Not on the bus: durable consumers run them (in this process if it is a worker)."""


@attrs.frozen
class EventRole:
    """A named set of event handlers, one per kind of event, that run as one consumer."""

    name: str
    handlers: Mapping[type[DomainEvent], tuple[str, Handler]]
    """Each kind of event with the name of its handler and the handler."""

    @property
    def event_types(self) -> tuple[type[DomainEvent], ...]:
        """The kinds of event this role handles."""
        return tuple(self.handlers)

    def subscribe(self, bus: MessageBus, *, retry: bool = True) -> None:
        """Run this role on ``bus``.

        ``retry=False``: failures are left to the role's consumers, and each event the
        step handled is recorded in ``bus.settled_here``, so that those consumers may
        skip it.
        """
        for event_type, (name, handler) in self.handlers.items():
            step = handler if retry else self._recorded(handler, bus.settled_here)
            bus.subscribe(event_type, name, step, retry=retry)

    def _recorded(self, handler: Handler, settled: SettledHere) -> Handler:
        role = self.name

        async def step(event: DomainEvent) -> None:
            await handler(event)
            settled.record(event.event_id, role)

        return step

    async def handle(self, event: DomainEvent) -> None:
        """Run the handler of ``event``'s kind; an event of another kind is not its work."""
        entry = self.handlers.get(type(event))
        if entry is not None:
            await entry[1](event)
