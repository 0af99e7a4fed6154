"""Who runs which partition: leases in a NATS KV bucket, taken over within seconds.

Each worker process (``openticket worker --partitions …``) holds a :class:`PartitionLeases`.
Partitions are numbered ``0 … partitions - 1`` as the
:class:`~openticket.application.seating.router.PartitionRouter` numbers them. A worker
serves a partition only while it holds the partition's lease; when a worker stops, its
leases are released at once, and when it dies, they expire and another worker takes
them over: within ``ttl + heartbeat`` (plus the new owner's rebuild in ``on_acquired``).

Keys and values (one bucket, history 1, file storage; msgspec JSON values)
    ``p.<n>``: the lease of partition ``n``: ``{"worker", "deadline_ms", "epoch"}``
    (:class:`LeaseRecord`). NATS 2.9 has no per-key TTL, so a lease ends by the deadline
    (milliseconds since the Unix epoch) written in its value; a deleted key is free too.

    ``want.<n>``: ``{"worker", "deadline_ms"}`` (:class:`WantRecord`): a worker that
    prefers partition ``n`` but finds it held by someone else asks for it back. Written
    every heartbeat while it waits; it ends by its deadline like a lease.

Every lease write is a compare-and-set on the key's revision
(``Nats-Expected-Last-Subject-Sequence``):

- **claim** a key that never existed: ``kv.update(key, value, last=0)`` — a create, as
  ``kv.create`` sends it, but without ``kv.create``'s silent retry over a delete marker
  that appeared meanwhile, which would write a stale ``epoch``;
- **claim** a deleted key, or a lease whose deadline has passed by the injected clock:
  ``kv.update(key, value, last=<the revision read>)``;
- **renew** every heartbeat: ``kv.update(key, value, last=<our last revision>)``;
- **release** (clean stop, hand-back, failed ``on_acquired``):
  ``kv.delete(key, last=<our last revision>)``.

A write refused for a wrong last revision means someone else wrote the key first: a lost
claim is simply not taken; a lost renewal means the lease was taken over (or stolen):
the partition is dropped from :attr:`PartitionLeases.owned` at once and ``on_lost`` runs.
The worker then treats the key like any other: it claims it again only once its deadline
has passed.

``epoch`` is the revision the claim replaced, plus one (``1`` for a key never written).
Only one claim can replace a given revision, and revisions only grow (they are the
bucket's stream sequence, delete markers included), so each claim of a partition has an
epoch of its own, larger than every earlier claim's: a fencing number the new owner may
stamp on what it writes (:meth:`PartitionLeases.epoch`). The bucket must not be deleted
and created again while workers use it: revisions, and so epochs, would start over.

Rounds
    Every ``heartbeat`` a worker (1) renews all its leases at once, then (2) reads every
    partition it does not hold and claims the free ones: its preferred partitions always,
    others ("orphans", e.g. of a dead worker) unless another worker wants them back.
    The first round after :meth:`~PartitionLeases.start` claims preferred partitions only,
    so that workers started together each get their own first. Claims of preferred
    partitions are sent before those of orphans.

Hand-back (done, and kept simple)
    A worker gives a partition back only if it does not prefer it itself and another
    worker has a live want for it (that worker prefers it and is alive). Without this,
    a rolling restart would leave every partition with whichever worker restarted
    last. It cannot flap: a partition moves at most from a worker that does not prefer
    it to one that does, and a worker that prefers a partition never hands it back.
    (With overlapping preferences the holder keeps it; the other keeps asking, harmlessly.)
    A free partition with another worker's live want is left to that worker.

Callbacks
    ``on_acquired(p)`` is awaited in a task of its own after a successful claim, while the
    lease is renewed; only when it returns is ``p`` in :attr:`~PartitionLeases.owned` (the
    caller rebuilds the partition's state there and starts serving). ``on_lost(p)`` follows
    every ``on_acquired(p)`` that started, exactly once, whatever happened: the lease was
    taken, expired unrenewed, handed back or released at :meth:`~PartitionLeases.stop`, or
    ``on_acquired`` raised. If the lease is lost while ``on_acquired`` still runs, that call
    is cancelled first. A partition leaves ``owned`` *before* ``on_lost`` is called, and a
    released lease is deleted only *after* ``on_lost`` has returned, so that the next owner
    cannot start before this one stopped. Exceptions of callbacks are logged; a failed
    ``on_acquired`` releases the lease and the worker leaves the partition alone for a
    while (``3 × ttl``) so that another worker may try.

Safety: at most one owner at a time, by bounded clock skew
    A lease written with deadline ``D`` = (the writer's clock when it sent the write) +
    ``ttl`` is considered held by its writer only until ``D - margin`` by its own clock,
    and until ``ttl - margin`` after sending by the event loop's monotonic clock,
    whichever comes first. That moment is enforced by a timer (``loop.call_at``), not
    by the renewal: if NATS does not answer, the partition leaves ``owned`` and
    ``on_lost`` runs at that moment even while the renewal is still waiting. Another
    worker claims the lease only once *its* clock reads ``D`` or later. If the two clocks
    differ by less than ``margin`` (and ``on_lost`` stops serving promptly), the old
    owner has stopped before the new one starts:

    - new owner's clock ≥ ``D`` ⇒ old owner's clock > ``D - margin`` ⇒ old owner done.
    - A renewal that landed but whose answer was lost only pushes the deadline further
      out than the writer believes: the partition is then nobody's for a while, which is
      safe. A writer never believes in a deadline it did not compute before sending.
    - A steal (a write behind the owner's back) is noticed at the next renewal, within a
      heartbeat; until then both may act — nothing in this protocol prevents it.

    This relies on bounded clock skew (NTP keeps it in milliseconds; the default margin
    is ``ttl / 4``, 750 ms for the default 3 s) and on a process not being frozen (GC
    pause, VM suspension, a blocked event loop) between checking its lease and acting
    on it. A step of the wall clock counts as skew. Leases therefore only make two owners
    rare and brief, never impossible: the lock store's conditional writes and fencing
    tokens, and PostgreSQL's ``UNIQUE`` on tickets, remain the final fences.

One module, over 500 lines: the lease protocol (claim, heartbeat, hand-over, fence)
is one state machine over one bucket; its parts are not safe alone.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Final

import msgspec
import nats.errors
import structlog
from nats.js import JetStreamContext
from nats.js.errors import APIError, KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from openticket.adapters.millis import MILLISECOND, millis
from openticket.adapters.nats.cluster import ensure_kv_bucket
from openticket.application.ports.clock import Clock
from openticket.application.ports.lifecycle import stop_task

_log = structlog.get_logger("openticket.nats.leases")


_WRONG_LAST_SEQUENCE: Final = frozenset((10071, 10164))
"""JetStream error codes of a conditional write whose expected revision was not the last."""

_ERRORS: Final = (nats.errors.Error, OSError, TimeoutError)
"""What a NATS call raises when the server cannot be reached or does not answer in time."""

_COOLDOWN_TTLS: Final = 3
"""After ``on_acquired`` failed: for how many ``ttl`` the worker leaves the partition alone."""


class LeaseRecord(msgspec.Struct, frozen=True):
    """The value of a partition's lease key ``p.<n>``."""

    worker: str
    """Who holds the lease."""
    deadline_ms: int
    """Milliseconds since the Unix epoch from which the lease is free (unless renewed)."""
    epoch: int
    """The revision this lease's claim replaced, plus one: grows with every new claim."""


class WantRecord(msgspec.Struct, frozen=True):
    """The value of ``want.<n>``: a worker preferring partition ``n`` asks for it back."""

    worker: str
    deadline_ms: int
    """Milliseconds since the Unix epoch from which the request no longer counts."""


_FREE: Final = LeaseRecord(worker="", deadline_ms=0, epoch=0)
_lease_decoder: Final = msgspec.json.Decoder(LeaseRecord)
_want_decoder: Final = msgspec.json.Decoder(WantRecord)
_encode: Final = msgspec.json.Encoder().encode


def lease_key(partition: int) -> str:
    """The KV key of a partition's lease."""
    return f"p.{partition}"


def want_key(partition: int) -> str:
    """The KV key of the request for a partition by the worker that prefers it."""
    return f"want.{partition}"


@dataclass(eq=False)
class _Seen:
    """A lease key as read: ``revision`` 0 for a key never written, ``record`` None if deleted."""

    revision: int
    record: LeaseRecord | None


@dataclass(eq=False)
class _Lease:
    """A lease this worker holds (it wrote the key's last revision, as far as it knows)."""

    partition: int
    revision: int
    epoch: int
    valid_until: float = 0.0
    """Event-loop time until which the lease counts as held (deadline minus margin)."""
    serving: bool = False
    """``on_acquired`` has returned: the partition is reported in ``owned``."""
    started: bool = False
    """``on_acquired`` was called, so ``on_lost`` is owed."""
    dropped: bool = False
    """Lost or released: ``on_lost`` is (being) called, never twice."""
    timer: asyncio.TimerHandle | None = None
    task: asyncio.Task[None] | None = field(default=None, repr=False)


class PartitionLeases:
    """The partitions this worker owns, held by leases in a NATS KV bucket.

    See the module docstring for the protocol and its safety argument. ``start`` creates
    the bucket if needed (``AdapterUnavailable`` if NATS cannot be reached) and starts the
    heartbeat rounds in the background; ``stop`` releases every lease at once (after its
    ``on_lost``). While running, NATS errors are logged and retried every heartbeat;
    leases that cannot be renewed in time are dropped.

    ``margin`` (default ``ttl / 4``) is how long before its deadline a lease stops
    counting as held by its owner; it must exceed the clock skew between workers, and
    ``heartbeat + margin`` must be less than ``ttl`` so that a renewal fits in between.
    """

    def __init__(
        self,
        js: JetStreamContext,
        *,
        worker_id: str,
        partitions: int,
        preferred: Collection[int],
        bucket: str = "openticket_leases",
        ttl: timedelta = timedelta(seconds=3),
        heartbeat: timedelta = timedelta(seconds=1),
        margin: timedelta | None = None,
        clock: Clock,
        on_acquired: Callable[[int], Awaitable[None]],
        on_lost: Callable[[int], Awaitable[None]],
        replicas: int = 1,
    ) -> None:
        if partitions < 1:
            raise ValueError("there must be at least one partition")
        outside = sorted(p for p in preferred if not 0 <= p < partitions)
        if outside:
            raise ValueError(f"preferred partitions out of 0..{partitions - 1}: {outside}")
        if not worker_id:
            raise ValueError("a worker needs an id")
        margin = ttl / 4 if margin is None else margin
        if heartbeat <= timedelta(0) or margin <= timedelta(0):
            raise ValueError("heartbeat and margin must be positive")
        if heartbeat + margin >= ttl:
            raise ValueError("heartbeat + margin must be less than ttl: no time to renew")
        self._js = js
        self.worker_id = worker_id
        self.partitions = partitions
        self.preferred = frozenset(preferred)
        self.bucket = bucket
        self._replicas = replicas
        self._ttl = ttl.total_seconds()
        self._ttl_ms = ttl // MILLISECOND
        self._heartbeat = heartbeat.total_seconds()
        self._margin = margin.total_seconds()
        self._clock = clock
        self._on_acquired = on_acquired
        self._on_lost = on_lost
        self._kv: KeyValue | None = None
        self._runner: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._leases: dict[int, _Lease] = {}
        self._wants: dict[int, int] = {}
        """Revision of the last want this worker wrote, per partition."""
        self._cooling: dict[int, float] = {}
        """Partitions not to claim until the given event-loop time (``on_acquired`` failed)."""
        self._tasks: set[asyncio.Task[None]] = set()
        """Running ``_lose`` tasks (``on_lost`` and releases)."""

    # --- the interface -----------------------------------------------------------------

    @property
    def owned(self) -> frozenset[int]:
        """The partitions this worker serves now: acquired, not lost, not near the deadline."""
        now = self._now()
        return frozenset(
            p for p, lease in self._leases.items() if lease.serving and lease.valid_until > now
        )

    def epoch(self, partition: int) -> int | None:
        """The fencing epoch of the lease this worker holds on ``partition`` now, or ``None``.

        A lease is held from its claim (``on_acquired`` may still be running) until it
        is dropped or ``margin`` before its deadline, whichever comes first — by the
        event loop's clock, so a worker resumed after a pause longer than that sees
        ``None`` at once, before the timer that drops the lease has run.
        """
        lease = self._leases.get(partition)
        if lease is None or lease.dropped or lease.valid_until <= self._now():
            return None
        return lease.epoch

    async def ensure_bucket(self) -> None:
        """Create the bucket (history 1, file storage, ``replicas``) unless it exists.

        Idempotent; a bucket that exists with another configuration is used as it is. A
        replicated bucket on a server whose clustered conditional writes are not
        serialized (before 2.9.21) is refused: ``UnsafeNatsServer``.
        """
        self._kv, _ = await ensure_kv_bucket(
            self._js,
            self.bucket,
            description="openticket partition leases",
            replicas=self._replicas,
            what=f"the partition-lease bucket {self.bucket}",
            open_it=True,  # one there with another configuration is opened as it is
        )

    async def start(self) -> None:
        """Ensure the bucket, then claim and renew leases in the background."""
        if self._runner is not None:
            raise RuntimeError("partition leases already started")
        await self.ensure_bucket()
        self._stopping.clear()
        self._runner = asyncio.create_task(self._run(), name=f"leases-{self.worker_id}")

    async def stop(self) -> None:
        """Stop claiming; for each lease: leave ``owned``, ``on_lost``, then delete the key.

        So a clean shutdown hands its partitions over at once. The round under way is
        let finish (for up to ``ttl``), so that no claim is left half done. If NATS
        cannot be reached, the leases are left to expire (logged).
        """
        runner, self._runner = self._runner, None
        if runner is None:
            return
        self._stopping.set()
        done, _ = await asyncio.wait([runner], timeout=self._ttl)
        if not done:
            with contextlib.suppress(Exception):  # the round's failure is not the stop's
                await stop_task(runner)
        for lease in list(self._leases.values()):
            self._drop(lease, release=True, reason="stopped")
        wants, self._wants = self._wants, {}
        await asyncio.gather(*(self._withdraw(p, revision) for p, revision in wants.items()))
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    def kill(self) -> None:
        """For tests: die as a crashed process would — no callbacks, nothing released.

        The leases stay in the bucket until their deadlines pass.
        """
        if self._runner is not None:
            self._runner.cancel()
            self._runner = None
        for lease in self._leases.values():
            if lease.timer is not None:
                lease.timer.cancel()
            if lease.task is not None:
                lease.task.cancel()
        for task in self._tasks:
            task.cancel()
        self._leases.clear()
        self._wants.clear()

    # --- rounds ----------------------------------------------------------------------

    async def _run(self) -> None:
        orphans = False
        while not self._stopping.is_set():
            began = self._now()
            try:
                await self._renew_all()
                await self._scan(orphans=orphans)
            except Exception:
                _log.exception("lease_round_failed", worker=self.worker_id)
            orphans = True
            pause = max(0.0, began + self._heartbeat - self._now())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), pause)

    async def _renew_all(self) -> None:
        await asyncio.gather(*(self._renew(lease) for lease in list(self._leases.values())))

    async def _renew(self, lease: _Lease) -> None:
        """Rewrite the lease with a new deadline at its revision; drop it if it was taken."""
        p = lease.partition
        remaining = lease.valid_until - self._now()
        if remaining <= 0:
            return  # its timer drops it
        sent = self._now()
        deadline = millis(self._clock.now()) + self._ttl_ms
        value = _encode(LeaseRecord(self.worker_id, deadline, lease.epoch))
        try:
            revision = await asyncio.wait_for(
                self._bucket().update(lease_key(p), value, last=lease.revision), remaining
            )
        except KeyWrongLastSequenceError:
            if self._leases.get(p) is not lease:
                return
            seen = await self._read_quietly(p)
            if seen is not None and self._is_ours(seen, lease):
                lease.revision = seen.revision  # an earlier renewal of ours landed late
                return
            self._drop(lease, release=False, reason="taken")
            return
        except _ERRORS as e:
            _log.warning("lease_renewal_failed", worker=self.worker_id, partition=p, error=repr(e))
            return
        lease.revision = revision
        if self._leases.get(p) is lease:
            self._hold_until(lease, sent, deadline)

    async def _scan(self, *, orphans: bool) -> None:
        """Read the partitions not held; claim free ones, ask for preferred ones, hand back."""
        if self._stopping.is_set():
            return
        now = self._now()
        for p in [p for p, until in self._cooling.items() if until <= now]:
            del self._cooling[p]
        candidates = [
            p
            for p in range(self.partitions)
            if p not in self._leases and p not in self._cooling and (orphans or p in self.preferred)
        ]
        answers = await asyncio.gather(*(self._read(p) for p in candidates), return_exceptions=True)
        now_ms = millis(self._clock.now())
        free: list[tuple[int, _Seen]] = []
        wanted: list[int] = []
        unread: list[int] = []
        for p, entry in zip(candidates, answers, strict=True):
            if isinstance(entry, BaseException):
                if not isinstance(entry, _ERRORS):
                    raise entry
                unread.append(p)
                continue
            record = entry.record
            if record is None or record.deadline_ms <= now_ms:
                free.append((p, entry))
            elif p in self.preferred:
                wanted.append(p)
        if unread:  # one line per round, not one per partition, while NATS is away
            _log.warning("lease_scan_failed", worker=self.worker_id, partitions=unread)
        # orphans (and our own leases) others ask for
        asked = [p for p, _ in free if p not in self.preferred]
        asked += [
            p for p, lease in self._leases.items() if lease.serving and p not in self.preferred
        ]
        wants = dict(
            zip(asked, await asyncio.gather(*(self._want_of(p) for p in asked)), strict=True)
        )
        now_ms = millis(self._clock.now())

        def wanted_by_other(p: int) -> bool:
            want = wants.get(p)
            return want is not None and want.worker != self.worker_id and want.deadline_ms > now_ms

        claims = [(p, e) for p, e in free if p in self.preferred]
        claims += [(p, e) for p, e in free if p not in self.preferred and not wanted_by_other(p)]
        for lease in list(self._leases.values()):
            p = lease.partition
            if lease.serving and p not in self.preferred and wanted_by_other(p):
                self._drop(lease, release=True, reason="handed_back")
        await asyncio.gather(
            *(self._claim(p, entry) for p, entry in claims),
            *(self._want(p) for p in wanted),
        )

    async def _claim(self, p: int, seen: _Seen) -> None:
        """Write a lease over a free key at the revision read; hold it and acquire if it won."""
        if self._stopping.is_set():
            return
        sent = self._now()
        deadline = millis(self._clock.now()) + self._ttl_ms
        epoch = seen.revision + 1
        value = _encode(LeaseRecord(self.worker_id, deadline, epoch))
        try:
            revision = await asyncio.wait_for(
                self._bucket().update(lease_key(p), value, last=seen.revision), self._heartbeat
            )
        except KeyWrongLastSequenceError:
            return  # someone else claimed it first
        except _ERRORS as e:
            _log.warning("lease_claim_failed", worker=self.worker_id, partition=p, error=repr(e))
            return
        if p in self._leases:  # cannot happen: only rounds claim, one at a time
            return
        lease = _Lease(partition=p, revision=revision, epoch=epoch)
        self._leases[p] = lease
        self._hold_until(lease, sent, deadline)
        _log.info("lease_claimed", worker=self.worker_id, partition=p, epoch=epoch)
        lease.task = asyncio.create_task(self._acquire(lease), name=f"acquire-{p}")

    async def _acquire(self, lease: _Lease) -> None:
        """Run ``on_acquired``; then report the partition as owned, if the lease still holds."""
        p = lease.partition
        lease.started = True
        try:
            await self._on_acquired(p)
        except Exception:
            _log.exception("on_acquired_failed", worker=self.worker_id, partition=p)
            if self._leases.get(p) is lease:
                self._cooling[p] = self._now() + _COOLDOWN_TTLS * self._ttl
                self._drop(lease, release=True, reason="on_acquired_failed")
            return
        if self._leases.get(p) is lease and lease.valid_until > self._now():
            lease.serving = True
            _log.info("partition_acquired", worker=self.worker_id, partition=p, epoch=lease.epoch)

    async def _want(self, p: int) -> None:
        """Ask the holder of a preferred partition to hand it back (for one ``ttl``)."""
        deadline = millis(self._clock.now()) + self._ttl_ms
        value = _encode(WantRecord(self.worker_id, deadline))
        try:
            self._wants[p] = await asyncio.wait_for(
                self._bucket().put(want_key(p), value), self._heartbeat
            )
        except _ERRORS as e:
            _log.warning("lease_want_failed", worker=self.worker_id, partition=p, error=repr(e))

    # --- losing ------------------------------------------------------------------------

    def _hold_until(self, lease: _Lease, sent: float, deadline_ms: int) -> None:
        """Count the lease as held until ``margin`` before its deadline, by both clocks."""
        now = self._now()
        by_clock = now + (deadline_ms - millis(self._clock.now())) / 1000 - self._margin
        by_monotonic = sent + self._ttl - self._margin
        lease.valid_until = min(by_clock, by_monotonic)
        if lease.timer is not None:
            lease.timer.cancel()
        lease.timer = asyncio.get_running_loop().call_at(lease.valid_until, self._expire, lease)

    def _expire(self, lease: _Lease) -> None:
        """Timer: the lease was not renewed in time; stop counting on it."""
        if self._leases.get(lease.partition) is lease:
            self._drop(lease, release=False, reason="expired")

    def _drop(self, lease: _Lease, *, release: bool, reason: str) -> None:
        """Forget ``lease`` now (it leaves ``owned``); ``on_lost`` and the release follow."""
        if lease.dropped:
            return
        lease.dropped = True
        p = lease.partition
        if self._leases.get(p) is lease:
            del self._leases[p]
        if lease.timer is not None:
            lease.timer.cancel()
            lease.timer = None
        lease.serving = False
        log = _log.warning if reason in ("taken", "expired") else _log.info
        log("partition_lost", worker=self.worker_id, partition=p, reason=reason)
        task = asyncio.create_task(self._lose(lease, release=release), name=f"lose-{p}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _lose(self, lease: _Lease, *, release: bool) -> None:
        """Cancel a running ``on_acquired``, call ``on_lost``, then release if asked."""
        acquiring = lease.task
        if acquiring is not None and not acquiring.done():
            acquiring.cancel()
            await asyncio.wait([acquiring])
        if lease.started:
            try:
                await self._on_lost(lease.partition)
            except Exception:
                _log.exception("on_lost_failed", worker=self.worker_id, partition=lease.partition)
        if release:
            await self._release(lease)

    async def _release(self, lease: _Lease) -> None:
        """Delete the lease key at our revision (again at the current one if it is still ours)."""
        p = lease.partition
        try:
            for _ in range(2):
                if await self._delete(lease_key(p), lease.revision):
                    return
                seen = await self._read(p)
                if not self._is_ours(seen, lease):
                    return  # taken meanwhile: nothing of ours to release
                lease.revision = seen.revision
        except _ERRORS as e:
            _log.warning("lease_release_failed", worker=self.worker_id, partition=p, error=repr(e))

    async def _withdraw(self, p: int, revision: int) -> None:
        """Delete our want for ``p`` unless another worker's want replaced it."""
        try:
            await self._delete(want_key(p), revision)
        except _ERRORS as e:
            _log.warning(
                "lease_want_withdraw_failed", worker=self.worker_id, partition=p, error=repr(e)
            )

    async def _delete(self, key: str, revision: int) -> bool:
        """Delete ``key`` if its last revision is ``revision``; False if it moved on."""
        try:
            await asyncio.wait_for(self._bucket().delete(key, last=revision), self._ttl)
        except APIError as e:
            if e.err_code in _WRONG_LAST_SEQUENCE:
                return False
            raise
        return True

    # --- reading -----------------------------------------------------------------------

    async def _read(self, p: int) -> _Seen:
        """The lease key of ``p`` as it is now."""
        try:
            entry = await asyncio.wait_for(self._bucket().get(lease_key(p)), self._heartbeat)
        except KeyNotFoundError as e:
            marker = e.entry  # the delete marker, or None for a key never written
            return _Seen(0 if marker is None else marker.revision or 0, None)
        return _Seen(entry.revision or 0, self._decode(p, entry.value))

    async def _read_quietly(self, p: int) -> _Seen | None:
        """:meth:`_read`, or None (logged) if NATS did not answer."""
        try:
            return await self._read(p)
        except _ERRORS as e:
            _log.warning("lease_read_failed", worker=self.worker_id, partition=p, error=repr(e))
            return None

    async def _want_of(self, p: int) -> WantRecord | None:
        """The request for ``p``, if any; None too if NATS did not answer (no hand-back then)."""
        try:
            entry = await asyncio.wait_for(self._bucket().get(want_key(p)), self._heartbeat)
        except (KeyNotFoundError, *_ERRORS):
            return None
        try:
            return _want_decoder.decode(entry.value or b"")
        except msgspec.DecodeError:
            return None

    def _decode(self, p: int, data: bytes | None) -> LeaseRecord:
        """A lease value; one that cannot be read counts as free (and is logged)."""
        try:
            return _lease_decoder.decode(data or b"")
        except msgspec.DecodeError:
            _log.warning("lease_value_unreadable", partition=p, value=repr(data)[:200])
            return _FREE

    def _is_ours(self, seen: _Seen, lease: _Lease) -> bool:
        """Whether the key still holds this very claim (same worker, same epoch)."""
        record = seen.record
        return (
            record is not None and record.worker == self.worker_id and record.epoch == lease.epoch
        )

    def _bucket(self) -> KeyValue:
        if self._kv is None:
            raise RuntimeError("partition leases not started")
        return self._kv

    @staticmethod
    def _now() -> float:
        return asyncio.get_running_loop().time()
