"""The message bus: commands to their one handler, events to every subscriber.

A command's handler error reaches the caller (it is the answer). An event handler's
error does not stop the other handlers: it is logged and the delivery is retried
later with backoff; after ``max_attempts`` it is parked in ``dead_letters`` and logged
as an error — never silently dropped. A handler subscribed with ``retry=False`` is
tried once: a durable consumer elsewhere (a worker's) makes sure its work is done, so
its failure is logged and left to that consumer. Event handlers must be idempotent by event id
(a retried or duplicated delivery must be harmless); ``idempotent`` helps.

Publishing is re-entrant: events published by a handler while the bus is dispatching
join the same queue and are dispatched, in order, before the outermost ``publish``
returns. So when a command's caller gets its answer, the saga steps it set off in
process have run.
"""

from __future__ import annotations

import contextvars
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, Generic, Protocol, TypeVar
from uuid import UUID

import attrs

from openticket.application.ports.clock import Clock
from openticket.domain.shared import DomainEvent

E = TypeVar("E", bound=DomainEvent)
R = TypeVar("R")


class Command(Generic[R]):
    """Base of commands: a request to change something; ``R`` is what handling returns."""


class UnknownCommand(LookupError):
    """No handler is registered for this kind of command."""


EventHandler = Callable[[Any], Awaitable[None]]
"""Handles one event; must tolerate the same event delivered again."""

Publish = Callable[[Sequence[DomainEvent]], Awaitable[None]]
"""Where committed events go (``MessageBus.publish``, or the outbox relay's)."""


class Logger(Protocol):
    """The slice of a structlog logger the bus uses."""

    def warning(self, event: str, **kw: Any) -> Any:
        """Log a warning."""
        ...

    def error(self, event: str, **kw: Any) -> Any:
        """Log an error."""
        ...


@attrs.define
class Delivery:
    """One event on its way to one handler, and how often it failed."""

    handler_name: str
    handler: EventHandler
    event: DomainEvent
    attempts: int = 0
    next_attempt_at: datetime | None = None
    last_error: str | None = None
    retry: bool = True
    """False: tried once here; a durable consumer elsewhere makes sure of it."""


class SettledHere:
    """Events whose durable roles already ran in this process, until they are published.

    A role tried once on the bus (``retry=False``, the ``inline`` placement) records
    each event its step handled without error. The event bus that carries the event to
    the workers reads this when it publishes the event, so a worker's consumer of that
    role can acknowledge it without running the step again: it would find the step done
    and change nothing. Only the last ``capacity`` events are kept: one whose publisher
    never asked is forgotten, and its consumer runs the step as it always may.
    """

    def __init__(self, capacity: int = 10_000) -> None:
        self._capacity = capacity
        self._roles: dict[UUID, list[str]] = {}

    def record(self, event_id: UUID, role: str) -> None:
        """``role`` handled the event ``event_id`` here."""
        roles = self._roles.get(event_id)
        if roles is None:
            if len(self._roles) >= self._capacity:
                del self._roles[next(iter(self._roles))]
            self._roles[event_id] = [role]
        elif role not in roles:
            roles.append(role)

    def take(self, event_id: UUID) -> list[str]:
        """The roles that handled ``event_id`` here (forgotten once taken)."""
        return self._roles.pop(event_id, [])


@attrs.frozen
class Subscription:
    """One handler of one kind of event."""

    name: str
    handler: EventHandler
    retry: bool = True


_dispatch_queue: contextvars.ContextVar[deque[DomainEvent] | None] = contextvars.ContextVar(
    "openticket_dispatch_queue", default=None
)


class MessageBus:
    """Routes events to subscribers, with retries and a dead-letter list."""

    def __init__(
        self,
        *,
        clock: Clock,
        logger: Logger,
        max_attempts: int = 5,
        retry_base_delay: timedelta = timedelta(milliseconds=200),
    ) -> None:
        self._clock = clock
        self._log = logger
        self._max_attempts = max_attempts
        self._retry_base_delay = retry_base_delay
        self._commands: dict[type[Command[Any]], Callable[[Any], Awaitable[Any]]] = {}
        self._subscribers: dict[type[DomainEvent], list[Subscription]] = {}
        self._resolved: dict[type[DomainEvent], list[Subscription]] = {}
        self.retries: list[Delivery] = []
        self.dead_letters: list[Delivery] = []
        self.settled_here = SettledHere()
        """Events whose roles, tried once here, succeeded (see ``SettledHere``)."""

    def register(
        self, command_type: type[Command[R]], handler: Callable[[Any], Awaitable[R]]
    ) -> None:
        """Make ``handler`` the one handler of ``command_type``."""
        if command_type in self._commands:
            raise ValueError(f"{command_type.__name__} has a handler already")
        self._commands[command_type] = handler

    async def execute(self, command: Command[R]) -> R:
        """Handle ``command``; its handler's answer is returned, its error raised."""
        handler = self._commands.get(type(command))
        if handler is None:
            raise UnknownCommand(f"no handler for {type(command).__name__}")
        result: R = await handler(command)
        return result

    def subscribe(
        self,
        event_type: type[E],
        name: str,
        handler: Callable[[E], Awaitable[None]],
        *,
        retry: bool = True,
    ) -> None:
        """Call ``handler`` for every event of ``event_type`` (or a subclass).

        ``retry=False``: a failure is logged, not retried here (a durable consumer in
        another process handles the same event at least once).
        """
        self._subscribers.setdefault(event_type, []).append(Subscription(name, handler, retry))
        self._resolved.clear()

    def handlers_for(self, event_type: type[DomainEvent]) -> list[Subscription]:
        """Every subscriber of ``event_type`` and of its base classes, in subscription order."""
        found = self._resolved.get(event_type)
        if found is None:
            found = [
                pair
                for base in reversed(event_type.__mro__)
                for pair in self._subscribers.get(base, ())
            ]
            self._resolved[event_type] = found
        return found

    async def publish(self, events: Sequence[DomainEvent]) -> None:
        """Dispatch ``events`` (and what their handlers publish) to every subscriber."""
        if not events:
            return
        queue = _dispatch_queue.get()
        if queue is not None:
            queue.extend(events)
            return
        await self._dispatch(deque(events))

    async def retry_due(self) -> int:
        """Try again every failed delivery whose backoff has passed; return how many ran."""
        now = self._clock.now()
        due = [d for d in self.retries if d.next_attempt_at is None or d.next_attempt_at <= now]
        if not due:
            return 0
        self.retries = [d for d in self.retries if d not in due]
        await self._dispatch(deque(), retried=due)
        return len(due)

    async def _dispatch(self, queue: deque[DomainEvent], retried: Sequence[Delivery] = ()) -> None:
        """Deliver ``retried`` again, then each queued event (and what handlers publish)."""
        token = _dispatch_queue.set(queue)
        try:
            for delivery in retried:
                await self._deliver(delivery)
            while queue:
                event = queue.popleft()
                for sub in self.handlers_for(type(event)):
                    try:
                        await sub.handler(event)
                    except Exception as e:  # retried later, never raised to the publisher
                        self._failed(
                            Delivery(sub.name, sub.handler, event, attempts=1, retry=sub.retry), e
                        )
        finally:
            _dispatch_queue.reset(token)

    @property
    def pending_retries(self) -> int:
        """Deliveries waiting to be tried again."""
        return len(self.retries)

    async def _deliver(self, delivery: Delivery) -> None:
        delivery.attempts += 1
        try:
            await delivery.handler(delivery.event)
        except Exception as e:  # any handler failure is retried, not raised
            self._failed(delivery, e)

    def _failed(self, delivery: Delivery, e: Exception) -> None:
        delivery.last_error = repr(e)
        fields = {
            "handler": delivery.handler_name,
            "event_type": delivery.event.event_type,
            "event_id": str(delivery.event.event_id),
            "attempt": delivery.attempts,
            "error": repr(e),
        }
        if not delivery.retry:
            self._log.warning("event_handler_left_to_consumers", **fields)
            return
        if delivery.attempts >= self._max_attempts:
            self.dead_letters.append(delivery)
            self._log.error("event_handler_gave_up", **fields)
            return
        backoff = self._retry_base_delay * (2 ** (delivery.attempts - 1))
        delivery.next_attempt_at = self._clock.now() + backoff
        self.retries.append(delivery)
        self._log.warning("event_handler_failed", **fields, retry_in_s=backoff.total_seconds())
