"""The outbox relay of a ``MemoryDatabase``: the PostgreSQL relay's rule, in memory.

A ``MemoryDatabase`` keeps every committed event, in commit order, with the commit
(``committed_events``): that is its outbox. ``MemoryOutboxRelay`` publishes it the way
:class:`~openticket.adapters.postgres.OutboxRelay` publishes the ``outbox`` table:

* **at once**: the service that committed hands its events to ``publish``, which passes
  them on and marks them published; if the bus cannot take them
  (``AdapterUnavailable``), they stay unmarked and the caller is not failed for it;
* **recovery**: ``relay_once`` takes the events still unmarked ``grace`` (10 s) after
  their commit — their publisher died or lost them — and publishes them in commit order
  as one batch, marking them only if the whole batch got through (the PostgreSQL relay's
  transaction rolls back its marks the same way). Whatever went out before a failure
  goes out again: consumers skip it by its event id.

Time is the injected clock's, so on a fake clock a lost event comes back when it would
in production. The embedded profile does not use this relay: it publishes straight to
the bus, and a process that dies there loses its database with it. A simulation or a
test that loses deliveries on purpose puts it between the services and the bus.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from uuid import UUID

import structlog

from openticket.adapters.memory.database import MemoryDatabase
from openticket.application.ports.clock import Clock
from openticket.application.ports.errors import AdapterUnavailable
from openticket.domain.shared import DomainEvent

Publish = Callable[[Sequence[DomainEvent]], Awaitable[None]]

_log = structlog.get_logger("openticket.outbox")


class MemoryOutboxRelay:
    """Publishes the outbox of a ``MemoryDatabase`` to ``publish`` (the event bus).

    Events committed before the relay was made are not its business: whoever
    published then published them.
    """

    def __init__(
        self,
        database: MemoryDatabase,
        publish: Publish,
        *,
        clock: Clock,
        grace: timedelta = timedelta(seconds=10),
        batch: int = 500,
    ) -> None:
        self._publish = publish
        self._clock = clock
        self._grace = grace
        self._batch = batch
        self._unpublished: dict[UUID, tuple[datetime, DomainEvent]] = {}
        """Committed, not yet published: when each was stored, in commit order."""
        self.relayed = 0
        """Events the recovery path has published."""
        database.on_outbox_written(self._remember)

    def _remember(self, events: Sequence[DomainEvent]) -> None:
        stored_at = self._clock.now()
        unpublished = self._unpublished
        for event in events:
            unpublished[event.event_id] = (stored_at, event)

    @property
    def unpublished(self) -> list[DomainEvent]:
        """Events committed and not published yet, in commit order."""
        return [event for _, event in self._unpublished.values()]

    async def publish(self, events: Sequence[DomainEvent]) -> None:
        """Publish ``events`` now; those that came from the outbox are marked published."""
        try:
            await self._publish(events)
        except AdapterUnavailable as e:
            _log.warning("outbox_publish_deferred", events=len(events), error=str(e))
            return
        unpublished = self._unpublished
        for event in events:
            unpublished.pop(event.event_id, None)

    async def relay_once(self, *, grace: timedelta | None = None) -> int:
        """Publish the events left unpublished past ``grace``; how many it published.

        Raises what the bus raised; then nothing of the batch is marked.
        """
        stored_before = self._clock.now() - (self._grace if grace is None else grace)
        due = [
            event for stored_at, event in self._unpublished.values() if stored_at <= stored_before
        ][: self._batch]
        if not due:
            return 0
        await self._publish(due)
        for event in due:
            self._unpublished.pop(event.event_id, None)
        self.relayed += len(due)
        _log.info("outbox_relayed", events=len(due))
        return len(due)
