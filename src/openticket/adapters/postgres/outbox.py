"""The outbox relay: every committed event reaches the event bus at least once.

A unit of work stores its events in ``outbox`` with the commit. Two paths publish them:

* **at once**: the service that committed publishes the events through ``publish``
  (this relay's), which hands them to the bus and then marks them published — the
  marks are written in batches, off the request path;
* **recovery**: ``relay_once`` takes the rows still unpublished ``grace`` after they
  were stored (the process that committed them crashed, or its marks were lost),
  publishes them in order and marks them, under ``FOR UPDATE SKIP LOCKED`` so that
  relays of several processes share the work.

A crash between commit and publish therefore loses nothing; a crash between publish
and mark publishes an event once more, which consumers skip by its event id. Rows are
taken in ``seq`` order (the order they were stored). A relay takes only the event types
its release knows, so during a rolling upgrade a newer release's events wait for a
relay that can read them instead of being lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from uuid import UUID

import psycopg
import structlog

from openticket.adapters.postgres.database import PostgresDatabase
from openticket.adapters.postgres.errors import translate
from openticket.adapters.serialization import UnknownEventType
from openticket.application.correlation import correlated
from openticket.application.ports.errors import AdapterUnavailable
from openticket.application.ports.lifecycle import stop_task
from openticket.domain.shared import DomainEvent

Publish = Callable[[Sequence[DomainEvent]], Awaitable[None]]

_log = structlog.get_logger("openticket.outbox")


class OutboxRelay:
    """Publishes the outbox of a ``PostgresDatabase`` to ``publish`` (the event bus)."""

    def __init__(
        self,
        database: PostgresDatabase,
        publish: Publish,
        *,
        grace: timedelta = timedelta(seconds=10),
        interval: timedelta = timedelta(seconds=1),
        batch: int = 500,
        retention: timedelta = timedelta(days=1),
    ) -> None:
        self._database = database
        self._publish = publish
        self._grace = grace
        self._interval = interval
        self._batch = batch
        self._retention = retention
        self._stored: dict[UUID, float] = {}
        """Events this process committed to the outbox and has not published: when."""
        self._published: list[UUID] = []
        """Published here, not yet marked in the table."""
        self._known_types = sorted(database.codec.event_types)
        """Only events this release can read are taken: a newer release's stay for it."""
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        database.on_outbox_written(self._remember)

    def _remember(self, events: Sequence[DomainEvent]) -> None:
        now = time.monotonic()
        stored = self._stored
        for event in events:
            stored[event.event_id] = now

    # --- the at-once path ---------------------------------------------------------------------

    async def publish(self, events: Sequence[DomainEvent]) -> None:
        """Publish ``events`` now; those that came from the outbox are marked published.

        If the bus cannot take them now (``AdapterUnavailable``), they stay unmarked and
        the recovery path publishes them later: the caller, whose change is committed
        already, is not failed for it.
        """
        try:
            await self._publish(events)
        except AdapterUnavailable as e:
            _log.warning("outbox_publish_deferred", events=len(events), error=str(e))
            return
        stored = self._stored
        marked = [e.event_id for e in events if stored.pop(e.event_id, None) is not None]
        if marked:
            self._published.extend(marked)
            if len(self._published) >= self._batch:
                self._wake.set()

    async def flush(self) -> int:
        """Write the published marks of the at-once path; how many rows it marked.

        Events committed here but never published at once (their publisher failed)
        are forgotten after ``grace``: the recovery path publishes them.
        """
        self._forget_older_than(time.monotonic() - self._grace.total_seconds())
        ids, self._published = self._published, []
        if not ids:
            return 0
        conn = await self._database.take()
        try:
            cursor = await conn.execute(
                "UPDATE outbox SET published_at = now()"
                " WHERE event_id = ANY(%(ids)s) AND published_at IS NULL",
                {"ids": ids},
            )
            return cursor.rowcount
        except psycopg.Error as e:
            self._published.extend(ids)  # try again at the next flush
            raise translate(e) from e
        finally:
            await self._database.give_back(conn)

    def _forget_older_than(self, moment: float) -> None:
        stored = self._stored
        while stored:
            event_id, when = next(iter(stored.items()))
            if when > moment:
                break
            del stored[event_id]

    # --- the recovery path ---------------------------------------------------------------------

    async def relay_once(self, *, grace: timedelta | None = None) -> int:
        """Publish the events left unpublished past ``grace``; how many it published."""
        wait = self._grace if grace is None else grace
        conn = await self._database.take()
        try:
            async with conn.transaction():
                cursor = await conn.execute(
                    "SELECT seq, event_type, payload, correlation_id FROM outbox"
                    " WHERE published_at IS NULL AND stored_at <= now() - %(wait)s"
                    " AND event_type = ANY(%(types)s)"
                    " ORDER BY seq LIMIT %(batch)s FOR UPDATE SKIP LOCKED",
                    {"wait": wait, "types": self._known_types, "batch": self._batch},
                )
                rows = await cursor.fetchall()
                if not rows:
                    return 0
                published = []
                for seq, event_type, payload, correlation in rows:
                    try:
                        event = self._database.codec.decode(event_type, payload)
                    except UnknownEventType as e:  # left for a release that can read it
                        _log.error("outbox_event_unreadable", seq=seq, error=str(e))
                        continue
                    with correlated(correlation):
                        await self._publish([event])
                    published.append(seq)
                await conn.execute(
                    "UPDATE outbox SET published_at = now() WHERE seq = ANY(%(published)s)",
                    {"published": published},
                )
            _log.info("outbox_relayed", events=len(published))
            return len(published)
        except psycopg.Error as e:
            raise translate(e) from e
        finally:
            await self._database.give_back(conn)

    async def prune(self) -> int:
        """Delete events published longer ago than the retention; how many."""
        conn = await self._database.take()
        try:
            cursor = await conn.execute(
                "DELETE FROM outbox WHERE published_at < now() - %(retention)s",
                {"retention": self._retention},
            )
            return cursor.rowcount
        except psycopg.Error as e:
            raise translate(e) from e
        finally:
            await self._database.give_back(conn)

    # --- the loop -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Run flush, recovery and pruning in the background."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self) -> None:
        """Stop the loop and write the marks still pending."""
        task, self._task = self._task, None
        await stop_task(task)
        with contextlib.suppress(Exception):
            await self.flush()

    async def _run(self) -> None:
        rounds = 0
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._interval.total_seconds())
            self._wake.clear()
            try:
                await self.flush()
                await self.relay_once()
                rounds += 1
                if rounds % 3600 == 0:
                    await self.prune()
            except Exception as e:  # the database may be away for a while; try again
                _log.warning("outbox_relay_failed", error=str(e))
