"""The seat lock store on NATS JetStream KV: create-if-absent, update-at-revision, no TTLs.

NATS 2.9 has no per-key TTL, so a hold ends by its own deadline, written in its value:
a value past its expiry counts as free and the next buyer takes it over by updating it
at its revision. Every write is conditional (``Nats-Expected-Last-Subject-Sequence``):
``0`` creates a key only if it never existed, ``N`` replaces or deletes it only if its
last revision is still ``N``. That compare-and-set is the only atomic step KV offers.

Keys (one bucket per deployment, history 1, file storage, direct get):

- ``<session>.<area>.<seat>``: one key per seat ever held, e.g.
  ``7f0c...-...e2.A.A-3-12``. The area is a token of its own so that a partition's
  keys match the subject filter ``<session>.<area>.*`` (:meth:`NatsKvLockStore.load`).
  It is the area the op names (an anchor's key, found from a stored lock, takes the
  area that lock carries), never one read out of the seat id.

Values (text, ``|``-separated; a KV delete marker means free):

- a hold's lock: ``H|<expires ms>|<token>|<hold>|<holder>|<order>|<area>|<index>|<anchor>``,
  ``index`` being the seat's place in the hold and ``anchor`` the hold's last seat;
- a sold mark: ``S|<token>|<hold>|<order>`` (permanent until ``ReleaseSold`` deletes it).

**All or nothing.** KV has no multi-key transaction, so a hold of N seats writes its N
keys at once (concurrently) and, if any seat turns out to be taken, deletes the keys it
wrote (each at the revision it wrote) before answering ``Refused``. A racing hold may
briefly see such a doomed lock and be refused because of it; once both answers are in,
the refused hold has left nothing behind, and of holds racing for a seat at most one
wins it. Extensions and sales rewrite every seat at its revision and, when one write
loses a race, restore the seats they already rewrote. A batch cut short by
``AdapterUnavailable`` may leave part of a hold locked: those locks end at its deadline.

**Fencing token.** The token of a hold is a KV revision: the bucket's stream sequence,
which only grows. It is the revision of the hold's *anchor* (its last seat), made the
hold's last write: the anchor is sent after the other seats, and in the rare case it
still lands earlier (a seat needed a second try) it is written again unchanged. So a
token is at least every revision the hold wrote, and the next holder of any of its
seats, who can only write that seat later, gets a larger token. Holds of one batch are
granted in op order; a later hold that came out with a smaller token gets its anchor
rewritten once more. As a revision is only known after the write, a fresh lock carries
token ``0`` ("my anchor's revision"); the first rewrite of the hold (an extension, a sale)
stamps the real token into every seat. A hold whose deadline passes while its own
acquisition is still under way may have a seat taken over before it is granted; such a
hold is dead on arrival (it cannot be extended or sold), but its token is not ordered
against the taker's.

**Expiry.** Decided by the store's clock against the deadline in the value, so the
bucket keeps expired locks until someone takes the seat over or releases it: one entry
per seat ever held (history 1), a lock, a sold mark or a delete marker.

**Load.** The stream's subject list for ``<session>.<area>.*`` (stream info with a
subject filter: only the partition's keys; the server answers 100,000 at most, so a
partition of more keys fails to load rather than load in part) and a direct
get of each key, all at once. The highest revision among them is at least every token
ever granted in the partition. Not a KV watch: nats-py's watcher may signal "no more
entries" before it has read the ones the server already sent, and ``kv.keys(filters=...)``
reads every key of the bucket and filters by substring in the client.

**Round trips.** A batch runs in waves: consecutive ops that share no seat run at once
(one wave), an op that touches a seat of the current wave starts the next, so op order
holds wherever it matters. A wave of fresh holds costs one round trip (every write
concurrent); a seat whose key already exists costs a read and a write more. The store
remembers the last revision and value it saw of each key (bounded), so that releases,
extensions and sales of its own holds are one conditional write each, without a read;
a wrong guess only costs the failed write and a read, because every write is
conditional. Refusals are only ever decided on values read during the op itself.

The bucket must never be deleted and created again under the same name while stores
use it: its revisions would start over, and so would the fencing tokens.

One module, over 500 lines: every operation is the same compare-and-set protocol over
one bucket, and reads what the others wrote.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Sequence
from datetime import timedelta
from typing import Final, NamedTuple, TypeVar, cast
from uuid import UUID

import nats.errors
from nats.js import JetStreamContext
from nats.js.errors import APIError, NotFoundError

from openticket.adapters.millis import EPOCH, millis, whole_millis
from openticket.adapters.nats.cluster import ensure_kv_bucket
from openticket.application.ports.clock import Clock
from openticket.application.ports.errors import AdapterUnavailable
from openticket.application.ports.lock_store import (
    AcquireHold,
    Done,
    ExtendHold,
    Granted,
    LockOp,
    LockResult,
    MarkSold,
    Refused,
    ReleaseHold,
    ReleaseSold,
    RestoreHold,
)
from openticket.domain.seating import InventorySnapshot, SeatHold
from openticket.domain.shared import AreaId, HoldId, OrderId, SeatId, SessionId, UserId

_EXPECTED_LAST: Final = "Nats-Expected-Last-Subject-Sequence"
_KV_OPERATION: Final = "KV-Operation"
_DELETED: Final = frozenset(("DEL", "PURGE"))
_WRONG_LAST_SEQUENCE: Final = frozenset((10071, 10164))
"""JetStream error codes of a conditional write whose expected revision was not the last."""
_NO_MESSAGE: Final = frozenset((None, 10037))
"""Error codes of a 404 that means 'no such key' (direct get answers without a code)."""

_T = TypeVar("_T")

_OP_TYPES: Final = frozenset(
    (AcquireHold, ReleaseHold, ExtendHold, MarkSold, ReleaseSold, RestoreHold)
)

_MAX_SUBJECTS: Final = 100_000
"""Subjects a stream info answer lists at most (a page; nats-py cannot ask for the next)."""

_ATTEMPTS: Final = 4
"""How often one op writes again after losing a race on a key before it gives up."""

_TOKEN = re.compile(r"[-/_=a-zA-Z0-9]+")
"""What a seat id or area id may contain to be a key token (no dots, no wildcards)."""


# --- values ------------------------------------------------------------------------------


class _Lock(NamedTuple):
    """A seat's hold lock, as stored."""

    expires: int
    """Deadline in milliseconds since the epoch; the lock is free from then on."""
    token: int
    """The hold's fencing token once stamped; ``0``: the revision of the anchor's lock."""
    hold: str
    holder: str
    order: str
    area: str
    place: int
    """This seat's index in the hold's ``seat_ids``."""
    anchor: str
    """The hold's last seat, whose lock revision is the token while none is stamped."""

    def encode(self) -> bytes:
        """The value written to the key."""
        return (
            f"H|{self.expires}|{self.token}|{self.hold}|{self.holder}|{self.order}|"
            f"{self.area}|{self.place}|{self.anchor}"
        ).encode()


class _Sold(NamedTuple):
    """A seat's permanent sold mark, as stored."""

    token: int
    hold: str
    order: str

    def encode(self) -> bytes:
        """The value written to the key."""
        return f"S|{self.token}|{self.hold}|{self.order}".encode()


_Value = _Lock | _Sold | None
"""What a key holds; ``None`` for a key that never existed or was deleted."""


def _decode(data: bytes | None) -> _Value:
    if not data:
        return None
    fields = data.decode().split("|")
    if fields[0] == "H":
        _, expires, token, hold, holder, order, area, index, anchor = fields
        return _Lock(int(expires), int(token), hold, holder, order, area, int(index), anchor)
    if fields[0] == "S":
        _, token, hold, order = fields
        return _Sold(int(token), hold, order)
    raise ValueError(f"not a seat lock value: {data!r}")


class _State(NamedTuple):
    """A key at one revision: ``revision`` 0 is a key never written."""

    revision: int
    value: _Value


_NEVER: Final = _State(0, None)


def _free(value: _Value, now: int) -> bool:
    """Whether a seat with this value can be held: nothing there, or an expired lock."""
    return value is None or (type(value) is _Lock and value.expires <= now)


class _Acquired(NamedTuple):
    """An acquisition that took every seat, before the batch orders its token."""

    op: AcquireHold
    token: int
    """The anchor's revision, or 0 when another seat was written after the anchor."""
    anchor_revision: int
    anchor_key: str
    anchor: bytes
    """The anchor's value, to write again unchanged when the token must grow."""
    stamped: bool
    """The token is stamped in the locks (a replayed, already extended hold): fixed."""
    written: dict[str, int]
    """Keys this op wrote, with their revisions: what a rollback deletes."""


# --- the store -----------------------------------------------------------------------------


class NatsKvLockStore:
    """A ``LockStore`` on one NATS KV bucket: seat locks with deadlines, revisions as tokens.

    See the module docstring for the keys, values and how a multi-seat hold stays all
    or nothing. Build it with :meth:`open` (or call :meth:`ensure_bucket` once) to have
    the bucket created if it is missing. Expiry follows ``clock``. NATS errors, timeouts
    and JetStream API errors (other than a lost compare-and-set, which the store handles)
    surface as ``AdapterUnavailable``.

    ``direct`` says whether the bucket allows direct gets (:meth:`ensure_bucket` finds
    out); ``max_known`` bounds how many keys' last revisions the store remembers.
    """

    def __init__(
        self,
        js: JetStreamContext,
        clock: Clock,
        *,
        bucket: str = "openticket_seats",
        direct: bool = True,
        max_known: int = 200_000,
        replicas: int = 1,
    ) -> None:
        self._js = js
        self._replicas = replicas
        self._clock = clock
        self._bucket = bucket
        self._stream = f"KV_{bucket}"
        self._prefix = f"$KV.{bucket}."
        self._direct = direct
        self._known: dict[str, _State] = {}
        """The last state this store saw of each key: a guess for its next conditional write."""
        self._max_known = max_known

    @classmethod
    async def open(
        cls,
        js: JetStreamContext,
        clock: Clock,
        *,
        bucket: str = "openticket_seats",
        replicas: int = 1,
    ) -> NatsKvLockStore:
        """A store on ``bucket``, created first (with ``replicas``) if it does not exist."""
        store = cls(js, clock, bucket=bucket, replicas=replicas)
        await store.ensure_bucket()
        return store

    async def ensure_bucket(self) -> None:
        """Create the bucket (history 1, file, direct get, ``replicas``) unless it exists.

        Idempotent; a bucket that exists with another configuration is used as it is. A
        replicated bucket on a server whose clustered conditional writes are not
        serialized (before 2.9.21) is refused: ``UnsafeNatsServer``.
        """
        _, info = await ensure_kv_bucket(
            self._js,
            self._bucket,
            description="openticket seat locks",
            replicas=self._replicas,
            what=f"the seat-lock bucket {self._bucket}",
        )
        self._direct = bool(info.config.allow_direct)

    # --- the port ----------------------------------------------------------------------

    async def execute(self, ops: Sequence[LockOp]) -> list[LockResult]:
        """Apply ``ops`` in order; one result per op.

        Ops that share no seat with the ops of the current wave join it and run at once;
        see the module docstring.
        """
        if not ops:
            return []
        op_keys: list[set[str]] = []
        for op in ops:  # every op checked before the first write
            if type(op) not in _OP_TYPES:
                raise TypeError(f"not a lock operation: {op!r}")
            session, area = op.session_id, op.area_id
            op_keys.append({self._key(session, area, s) for s in op.seat_ids})
        now = millis(self._clock.now())
        results: list[LockResult | None] = [None] * len(ops)
        wave: list[int] = []
        seats: set[str] = set()
        last_token = 0
        for index, keys in enumerate(op_keys):
            if not seats.isdisjoint(keys):
                last_token = await self._wave(ops, wave, now, results, last_token)
                wave, seats = [], set()
            wave.append(index)
            seats |= keys
        await self._wave(ops, wave, now, results, last_token)
        return [r for r in results if r is not None]

    async def load(self, session_id: SessionId, area_id: AreaId) -> InventorySnapshot:
        """The partition's live holds, its sold seats and the highest revision of its keys.

        ``last_fencing_token`` is the highest revision among the partition's keys: at
        least every token ever granted in it.
        """
        if not _TOKEN.fullmatch(area_id):
            raise ValueError(f"not a valid area id for a KV key: {area_id!r}")
        now = millis(self._clock.now())
        base = f"{session_id}.{area_id}."
        try:
            info = await self._js.stream_info(
                self._stream, subjects_filter=f"{self._prefix}{base}*"
            )
        except (nats.errors.Error, OSError) as e:
            raise AdapterUnavailable(f"NATS lock store unavailable: {e!r}") from e
        keys = [subject[len(self._prefix) :] for subject in info.state.subjects or ()]
        if len(keys) >= _MAX_SUBJECTS:  # the server pages the list; nats-py reads page 1 only
            raise RuntimeError(f"partition {base} has {_MAX_SUBJECTS:,} keys or more")
        entries = zip(keys, await self._read(keys), strict=True)

        last = 0
        sold: dict[SeatId, OrderId] = {}
        locks: dict[str, list[tuple[SeatId, int, _Lock]]] = {}
        for key, state in entries:
            last = max(last, state.revision)
            seat, value = SeatId(key[len(base) :]), state.value
            if type(value) is _Sold:
                sold[seat] = OrderId(UUID(hex=value.order))
            elif type(value) is _Lock and value.expires > now and value.area == area_id:
                locks.setdefault(value.hold, []).append((seat, state.revision, value))
        holds = [_hold(session_id, area_id, hold, found) for hold, found in locks.items()]
        holds.sort(key=lambda h: h.fencing_token)
        return InventorySnapshot(holds=tuple(holds), sold=sold, last_fencing_token=last)

    # --- waves -------------------------------------------------------------------------

    async def _wave(
        self,
        ops: Sequence[LockOp],
        indexes: list[int],
        now: int,
        results: list[LockResult | None],
        last_token: int,
    ) -> int:
        """Run the ops at ``indexes`` at once; order their grants' tokens; the last token."""
        if not indexes:
            return last_token
        answers = await _all([self._apply(ops[i], now) for i in indexes])
        for index, answer in zip(indexes, answers, strict=True):
            if type(answer) is _Acquired:
                granted = await self._in_order(answer, last_token)
                if type(granted) is Granted:
                    last_token = granted.hold.fencing_token
                results[index] = granted
            else:
                results[index] = cast(LockResult, answer)
        return last_token

    async def _in_order(self, acquired: _Acquired, last_token: int) -> LockResult:
        """Grant ``acquired`` with a token above ``last_token``, rewriting its anchor if need be.

        Holds of one wave write at once; their tokens come out in op order unless a seat
        needed a second try, and then the anchor is written again (unchanged) until it does.
        """
        token, revision = acquired.token, acquired.anchor_revision
        while token <= last_token and not acquired.stamped:
            written = await self._write(acquired.anchor_key, acquired.anchor, revision)
            if written is None:  # the anchor was taken over meanwhile: the hold is gone
                await self._rollback(acquired.written)
                return Refused((acquired.op.seat_ids[-1],))
            acquired.written[acquired.anchor_key] = token = revision = written
        op = acquired.op
        return Granted(
            SeatHold(
                hold_id=op.hold_id,
                session_id=op.session_id,
                area_id=op.area_id,
                holder_id=op.holder_id,
                order_id=op.order_id,
                seat_ids=op.seat_ids,
                fencing_token=token,
                expires_at=whole_millis(op.expires_at),
            )
        )

    async def _apply(self, op: LockOp, now: int) -> LockResult | _Acquired:
        if type(op) is AcquireHold:
            return await self._acquire(op, now)
        if type(op) is ReleaseHold:
            return await self._release(op.session_id, op.area_id, op.seat_ids, op.hold_id.hex, now)
        if type(op) is ExtendHold:
            return await self._rewrite(op, op.hold_id.hex, now, sell=False)
        if type(op) is MarkSold:
            return await self._rewrite(op, op.hold_id.hex, now, sell=True)
        if type(op) is ReleaseSold:
            return await self._release(op.session_id, op.area_id, op.seat_ids, None, now)
        if type(op) is RestoreHold:
            # a hold's token here is the revision the bucket gave its write: no write can
            # bring an old one back. JetStream keeps the bucket on disk, so a restarted
            # server has not lost it; a purged bucket leaves the database as the fence.
            return Refused(op.seat_ids)
        raise TypeError(f"not a lock operation: {op!r}")

    # --- acquiring ---------------------------------------------------------------------

    async def _acquire(self, op: AcquireHold, now: int) -> LockResult | _Acquired:
        """Take every seat of ``op`` or none: write them all, undo the writes if one is taken.

        A seat's key is first guessed: unknown keys are created (expected revision 0), a
        remembered free one is updated at its revision; a write that loses, or a seat
        remembered as taken, is read and decided on what was read. A seat already locked
        by this very hold (a replayed op) counts as taken by it.
        """
        seats = op.seat_ids
        if not seats:
            return Refused(())
        keys = [self._key(op.session_id, op.area_id, s) for s in seats]
        expires = millis(op.expires_at)
        hold, holder, order = op.hold_id.hex, op.holder_id.hex, op.order_id.hex
        values = [
            _Lock(expires, 0, hold, holder, order, op.area_id, i, seats[-1]).encode()
            for i in range(len(seats))
        ]
        guesses: dict[int, _State | None] = {}
        """Seats still to take -> what their key holds, as read or guessed; None: read it."""
        for i, key in enumerate(keys):
            known = self._known.get(key)
            guesses[i] = _NEVER if known is None else known if _free(known.value, now) else None
        fresh: set[int] = set()
        """Seats whose guess was read during this op (only those may refuse the hold)."""
        mine: dict[int, _State] = {}
        """Seats this hold has, with their revision (and value, when read)."""
        written: dict[str, int] = {}

        for _ in range(_ATTEMPTS):
            if any(guess is None for guess in guesses.values()):
                # a round trip for reads anyway: read every guess, so that a refusal
                # names exactly the seats in the way
                unknown = [i for i in guesses if i not in fresh]
                read = await self._read([keys[i] for i in unknown])
                guesses.update(zip(unknown, read, strict=True))
                fresh.update(unknown)
            to_write: list[tuple[int, int]] = []
            taken: list[int] = []
            recheck: list[int] = []
            for i, guess in guesses.items():
                if guess is None or (i not in fresh and not _free(guess.value, now)):
                    recheck.append(i)  # not read yet, and would refuse: read it first
                elif _free(guess.value, now):
                    to_write.append((i, guess.revision))
                elif _replayed(guess.value, hold, holder, order):
                    mine[i] = guess
                else:
                    taken.append(i)
            if taken:
                await self._rollback(written)
                return Refused(tuple(seats[i] for i in sorted(taken)))
            revisions = await self._write_all([(keys[i], values[i], rev) for i, rev in to_write])
            guesses = dict.fromkeys(recheck)
            for (i, _), revision in zip(to_write, revisions, strict=True):
                if revision is None:  # lost a race for the key: read it next time
                    guesses[i] = None
                    fresh.discard(i)
                else:
                    written[keys[i]] = revision
                    mine[i] = _State(revision, None)
            if not guesses:
                break
        else:
            await self._rollback(written)
            return Refused(tuple(seats[i] for i in sorted(guesses)))
        return _acquired(op, mine, keys[-1], values[-1], written)

    async def _rollback(self, written: dict[str, int]) -> None:
        """Delete the locks an acquisition wrote, each only if still at the revision it wrote."""
        if written:
            await self._write_all([(key, None, revision) for key, revision in written.items()])

    # --- extending and selling ---------------------------------------------------------

    async def _rewrite(
        self, op: ExtendHold | MarkSold, hold: str, now: int, *, sell: bool
    ) -> LockResult:
        """Extend (new deadline) or sell (sold mark) every seat of a live hold, or none.

        The hold must lock every listed seat live; a sale must also name the hold's
        token. Every seat is rewritten at its revision with the token stamped in; if a
        write loses a race the seats already rewritten are put back (token stamped) and
        the op is decided again on fresh reads.
        """
        seats = op.seat_ids
        if not seats:
            return Done(())
        keys = [self._key(op.session_id, op.area_id, s) for s in seats]
        states: list[_State | None] = [self._known.get(key) for key in keys]
        fresh = [False] * len(keys)
        lost: list[int] = []
        for _ in range(_ATTEMPTS):
            unknown = [i for i, state in enumerate(states) if state is None]
            if unknown:
                read = await self._read([keys[i] for i in unknown])
                for i, state in zip(unknown, read, strict=True):
                    states[i], fresh[i] = state, True
            current = cast(list[_State], states)
            bad = [i for i, state in enumerate(current) if not _owns(state.value, hold, now, sell)]
            token = 0
            if not bad:
                found = await self._token_of(op.session_id, current, keys, hold)
                if found is None or (sell and found != cast(MarkSold, op).fencing_token):
                    bad = list(range(len(keys)))
                else:
                    token = found
            if bad:  # refuse on fresh reads only, of every seat (the refusal names them all)
                stale = [i for i in range(len(keys)) if not fresh[i]]
                if not stale:
                    return Refused(tuple(seats[i] for i in bad))
                for i in stale:
                    states[i] = None
                continue
            plan: list[tuple[int, bytes, bytes]] = []
            for i, state in enumerate(current):
                value = state.value
                if type(value) is _Lock:
                    stamped = value._replace(token=token)
                    new = (
                        _Sold(token, hold, value.order)
                        if sell
                        else stamped._replace(expires=millis(cast(ExtendHold, op).expires_at))
                    )
                    plan.append((i, new.encode(), stamped.encode()))
            revisions = await self._write_all(
                [(keys[i], new, current[i].revision) for i, new, _ in plan]
            )
            lost = [i for (i, _, _), r in zip(plan, revisions, strict=True) if r is None]
            if not lost:
                return Done(seats)
            # put back what was rewritten (stamped), then decide again on fresh reads
            await self._write_all(
                [
                    (keys[i], old, r)
                    for (i, _, old), r in zip(plan, revisions, strict=True)
                    if r is not None
                ]
            )
            states = [None] * len(keys)
        return Refused(tuple(seats[i] for i in lost) or seats)

    async def _token_of(
        self, session: SessionId, states: list[_State], keys: list[str], hold: str
    ) -> int | None:
        """The hold's token: stamped in its values, or its anchor's revision; None if lost."""
        for state in states:
            value = state.value
            if value is not None and value.token:
                return value.token
        value = cast(_Lock, states[0].value)
        anchor_key = self._key(session, AreaId(value.area), SeatId(value.anchor))
        if anchor_key in keys:
            anchor = states[keys.index(anchor_key)]
        else:  # an op on part of the hold: read the anchor
            (anchor,) = await self._read([anchor_key])
        found = anchor.value
        if type(found) is not _Lock or found.hold != hold:
            return None  # the anchor was released or taken over: the token is lost
        return found.token or anchor.revision

    # --- releasing ---------------------------------------------------------------------

    async def _release(
        self,
        session: SessionId,
        area: AreaId,
        seats: tuple[SeatId, ...],
        hold: str | None,
        now: int,
    ) -> LockResult:
        """Delete the seats' locks of ``hold`` (or, for ``None``, their sold marks).

        Seat by seat, each delete at the revision read; answers the live locks (or the
        sold marks) it deleted.
        """
        keys = [self._key(session, area, s) for s in seats]
        done = await _all([self._release_one(key, hold, now) for key in keys])
        return Done(tuple(s for s, released in zip(seats, done, strict=True) if released))

    async def _release_one(self, key: str, hold: str | None, now: int) -> bool:
        state, fresh = self._known.get(key), False
        for _ in range(_ATTEMPTS):
            if state is None:
                (state,) = await self._read([key])
                fresh = True
            value = state.value
            ours = (
                type(value) is _Sold
                if hold is None
                else (type(value) is _Lock and value.hold == hold)
            )
            if ours:
                if await self._write(key, None, state.revision) is not None:
                    return type(value) is _Sold or cast(_Lock, value).expires > now
            elif fresh:
                return False
            state = None
        return False

    # --- KV calls ----------------------------------------------------------------------

    @staticmethod
    def _key(session: SessionId, area: AreaId, seat: SeatId) -> str:
        """``<session>.<area>.<seat>``: the seat's key in the area the caller names."""
        if not _TOKEN.fullmatch(area):
            raise ValueError(f"not a valid area id for a KV key: {area!r}")
        if not _TOKEN.fullmatch(seat):
            raise ValueError(f"not a valid seat id for a KV key: {seat!r}")
        return f"{session}.{area}.{seat}"

    def _remember(self, key: str, state: _State) -> None:
        known = self._known
        if len(known) >= self._max_known:
            known.clear()
        known[key] = state

    async def _read(self, keys: Sequence[str]) -> list[_State]:
        """The current state of each key (direct gets, at once)."""
        return await _all([self._get(key) for key in keys])

    async def _get(self, key: str) -> _State:
        try:
            msg = await self._js.get_msg(
                self._stream, subject=self._prefix + key, direct=self._direct
            )
        except NotFoundError as e:
            if e.err_code not in _NO_MESSAGE:
                raise AdapterUnavailable(f"NATS lock store unavailable: {e!r}") from e
            state = _NEVER
        except (nats.errors.Error, OSError) as e:
            raise AdapterUnavailable(f"NATS lock store unavailable: {e!r}") from e
        else:
            headers = msg.headers
            deleted = headers is not None and headers.get(_KV_OPERATION) in _DELETED
            state = _State(msg.seq or 0, None if deleted else _decode(msg.data))
        self._remember(key, state)
        return state

    async def _write_all(self, writes: Sequence[tuple[str, bytes | None, int]]) -> list[int | None]:
        """``_write`` of each ``(key, value, expected)`` at once, sent in the given order."""
        return await _all([self._write(key, value, expected) for key, value, expected in writes])

    async def _write(self, key: str, value: bytes | None, expected: int) -> int | None:
        """Write ``value`` (``None``: delete) if the key's last revision is ``expected``.

        Answers the new revision, or ``None`` when the key moved on (nothing written).
        """
        headers = {_EXPECTED_LAST: str(expected)}
        if value is None:
            headers[_KV_OPERATION] = "DEL"
        try:
            ack = await self._js.publish(self._prefix + key, value or b"", headers=headers)
        except APIError as e:
            if e.err_code in _WRONG_LAST_SEQUENCE:
                self._known.pop(key, None)
                return None
            raise AdapterUnavailable(f"NATS lock store unavailable: {e!r}") from e
        except (nats.errors.Error, OSError) as e:
            raise AdapterUnavailable(f"NATS lock store unavailable: {e!r}") from e
        self._remember(key, _State(ack.seq, _decode(value)))
        return ack.seq


async def _all(calls: Sequence[Awaitable[_T]]) -> list[_T]:
    """Await ``calls`` concurrently (started in order); every one finishes before any error.

    A single call is awaited as it is: no task to schedule (the common case of a hold
    of one seat, or a batch of one op).
    """
    if len(calls) == 1:
        return [await calls[0]]
    answers = await asyncio.gather(*calls, return_exceptions=True)
    for answer in answers:
        if isinstance(answer, BaseException):
            raise answer
    return cast(list[_T], answers)


def _acquired(
    op: AcquireHold,
    mine: dict[int, _State],
    anchor_key: str,
    anchor: bytes,
    written: dict[str, int],
) -> _Acquired:
    """A hold that has every seat; its token is its anchor's revision if that is its last."""
    state = mine[len(op.seat_ids) - 1]
    if type(state.value) is _Lock and state.value.token:  # a replay of an extended hold
        return _Acquired(op, state.value.token, state.revision, anchor_key, anchor, True, written)
    token = state.revision
    if any(other.revision > token for other in mine.values()):
        token = 0  # the anchor must be written again to be the hold's last write
    return _Acquired(op, token, state.revision, anchor_key, anchor, False, written)


def _replayed(value: _Value, hold: str, holder: str, order: str) -> bool:
    """Whether ``value`` is a lock of this very hold request (the op was sent before)."""
    return (
        type(value) is _Lock
        and value.hold == hold
        and value.holder == holder
        and value.order == order
    )


def _owns(value: _Value, hold: str, now: int, sell: bool) -> bool:
    """Whether ``value`` is a live lock of ``hold`` (or, for a sale, its sold mark already)."""
    if type(value) is _Lock:
        return value.hold == hold and value.expires > now
    return sell and type(value) is _Sold and value.hold == hold


def _hold(
    session: SessionId, area: AreaId, hold: str, found: list[tuple[SeatId, int, _Lock]]
) -> SeatHold:
    """A hold rebuilt from the live locks that name it (seats in the hold's own order)."""
    found.sort(key=lambda f: f[2].place)
    first = found[0][2]
    token = next((lock.token for _, _, lock in found if lock.token), 0)
    if not token:
        at_anchor = [revision for seat, revision, lock in found if seat == lock.anchor]
        token = at_anchor[0] if at_anchor else max(revision for _, revision, _ in found)
    return SeatHold(
        hold_id=HoldId(UUID(hex=hold)),
        session_id=session,
        area_id=area,
        holder_id=UserId(UUID(hex=first.holder)),
        order_id=OrderId(UUID(hex=first.order)),
        seat_ids=tuple(seat for seat, _, _ in found),
        fencing_token=token,
        expires_at=EPOCH + timedelta(milliseconds=first.expires),
    )
