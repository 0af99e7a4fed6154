"""The seat lock store on Redis: one Lua script call per batch of lock operations.

Key layout (``{session}`` is the session id between literal braces: a Redis Cluster
hash tag, so every key of a session lives in one slot and one script may touch them all):

- ``{prefix}seat:lock:{session}:<seat>``: a seat's live lock
  (``<expires>|<token>|<hold>|<holder>|<order>|<area>``, with a ``PX`` TTL until the
  expiry) or its permanent sold mark (``S|<hold>|<token>|<order>|<area>``, no TTL);
- ``{prefix}seat:token:{session}``: the session's fencing-token counter (one ``SET`` per batch
  for the holds it grants, numbered in op order; never below the newest token the caller
  saw, so a Redis that lost its keys keeps counting upwards);
- ``{prefix}seat:holds:{session}:<area>``: the partition's index of holds, hold id ->
  ``<expires>|<token>|<holder>|<order>|<seat>,<seat>,...``, for :meth:`RedisLockStore.load`
  (no ``KEYS``/``SCAN``); expired entries are pruned when a script meets them and at load,
  and the hash itself expires with its longest hold;
- ``{prefix}seat:sold:{session}:<area>``: the partition's sold seats, seat -> order id.

The ``<area>`` of a key is always the one the op names (every op carries it to the
script); no area is read out of a seat id.

A batch of one session (a partition actor's drained queue always is) costs one
``EVALSHA`` whose argument is the whole batch as JSON; the script answers every op in
one JSON string. A batch that mixes sessions sends one ``EVALSHA`` per session in one
pipeline: still one round trip, op order kept within each session (ops of different
sessions never interact). Expiry follows the store's clock (``now`` is sent with every
batch), and the keys' TTLs only collect the garbage. Replaying a batch (redis-py retries
a command whose reply was lost) grants an already granted hold and sells an already sold
one again with the same answer instead of refusing its own locks.

Calls made at the same time (every partition actor of a worker has its own batch in
flight) are queued and leave together as one pipeline, with at most ``max_in_flight``
pipelines (connections) at once: a thousand concurrent callers neither open a thousand
connections nor exhaust redis-py's pool, and Redis reads fewer, larger writes.

On a Redis Cluster each session's script runs on the master of its hash tag's slot.
Calls queued together then leave as one pipeline per master, all at once: a master that
fails (or fails over) fails only the calls of its own sessions.
A failover loses what the failed master had not yet replicated (docs/decisions.md).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from importlib.resources import files
from typing import Any, Final, cast
from uuid import UUID

import msgspec
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import NoScriptError

from openticket.adapters.millis import EPOCH, millis, whole_millis
from openticket.adapters.redis.connection import (
    REDIS_FAILURES,
    RedisClient,
    means_unavailable,
    relearn_slots,
    unavailable,
)
from openticket.application.ports.clock import Clock
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

_SCRIPT: Final = files(__package__).joinpath("lock_store.lua").read_text(encoding="utf-8")
_SHA: Final = hashlib.sha1(_SCRIPT.encode(), usedforsecurity=False).hexdigest()


_ACQUIRE, _RELEASE, _EXTEND, _MARK_SOLD, _RELEASE_SOLD, _RESTORE, _LOAD = 1, 2, 3, 4, 5, 6, 0

_encode = msgspec.json.Encoder(uuid_format="hex").encode
_decode = msgspec.json.Decoder().decode

_DOWN: Final = "Redis lock store unavailable"
"""How ``AdapterUnavailable`` begins when Redis cannot serve a call now."""

_Call = tuple[str, bytes, bytes, bytes, bytes, bytes, bytes]
"""A session's call up to the payload: ``EVALSHA``, sha, 1 key (its token counter), bases."""

_Queued = tuple[tuple[Any, ...], bytes, "asyncio.Future[Any]"]
"""A call waiting to be sent: its arguments, its payload and where its answer goes."""

_MAX_PIPELINE: Final = 256
"""Calls sent in one pipeline at most, so that one burst does not delay the next for long."""

_MAX_SESSIONS: Final = 4096
"""Sessions whose key strings are kept ready; the cache is emptied when it grows past this."""


class _Moments:
    """Expiry times converted once per distinct object: an actor's batch shares one."""

    __slots__ = ("_text", "_text_of", "_whole", "_whole_of")

    def __init__(self) -> None:
        self._text_of: datetime | None = None
        self._text = ""
        self._whole_of: datetime | None = None
        self._whole = EPOCH

    def text(self, moment: datetime) -> str:
        """Milliseconds since the epoch, as the script reads them (text)."""
        if moment is not self._text_of:
            self._text, self._text_of = str(millis(moment)), moment
        return self._text

    def whole(self, moment: datetime) -> datetime:
        """``moment`` cut to whole milliseconds."""
        if moment is not self._whole_of:
            self._whole, self._whole_of = whole_millis(moment), moment
        return self._whole


class RedisLockStore:
    """A ``LockStore`` on Redis: seat locks with ``PX`` expiry and ``INCR`` fencing tokens.

    Every op is applied atomically by one Lua script, which gets the whole batch of a
    session at once; see the module docstring for the keys. Expiry follows ``clock``:
    a lock whose ``expires_at`` is not after the clock's now is gone, whatever Redis
    still holds. Driver errors surface as ``AdapterUnavailable``.

    ``prefix`` starts every key; ``max_in_flight`` bounds the pipelines (so the
    connections of ``client``'s pool) the store uses at once.
    """

    def __init__(
        self,
        client: RedisClient,
        clock: Clock,
        *,
        prefix: str = "openticket:",
        max_in_flight: int = 4,
    ) -> None:
        self._client = client
        self._command = cast(Callable[..., Awaitable[Any]], client.execute_command)
        self._cluster = isinstance(client, RedisCluster)
        self._clock = clock
        self._prefix = prefix
        self._keys: dict[SessionId, _Call] = {}
        """Per session, its call up to the payload (see ``_Call``)."""
        self._max_in_flight = max_in_flight
        self._in_flight = 0
        self._queue: list[_Queued] = []
        self._drains: set[asyncio.Task[None]] = set()
        self._moments = _Moments()
        self._loop: asyncio.AbstractEventLoop | None = None

    # --- the port ----------------------------------------------------------------------

    async def execute(self, ops: Sequence[LockOp]) -> list[LockResult]:
        """Apply ``ops`` in order (one round trip); one result per op."""
        if not ops:
            return []
        now = millis(self._clock.now())
        session = ops[0].session_id
        entries: list[Any] = [now]
        append = entries.append
        moments = self._moments
        for op in ops:
            if op.session_id is not session and op.session_id != session:
                return await self._execute_mixed(ops, now)
            append(_entry(op, moments))
        try:
            answer = await self._submit(self._args(session), _encode(entries))
        except REDIS_FAILURES as e:
            if means_unavailable(e):
                raise unavailable(_DOWN, e) from e
            raise
        return _results(ops, _decode(answer), moments)

    async def load(self, session_id: SessionId, area_id: AreaId) -> InventorySnapshot:
        """The partition's live holds, its sold seats and the session's last token.

        ``last_fencing_token`` is the session's counter: at least every token ever
        granted in this partition (the counter is per session, shared by its areas).
        """
        now = millis(self._clock.now())
        try:
            answer = await self._submit(self._args(session_id), _encode([now, (_LOAD, area_id)]))
        except REDIS_FAILURES as e:
            if means_unavailable(e):
                raise unavailable(_DOWN, e) from e
            raise
        ((token, holds, sold),) = _decode(answer)
        # cjson encodes an empty table as {}: ``or ()`` reads it as an empty list
        holds = holds or ()
        sold = sold or ()
        found = [
            _hold_from_record(session_id, area_id, holds[i], holds[i + 1])
            for i in range(0, len(holds), 2)
        ]
        found.sort(key=lambda h: h.fencing_token)
        return InventorySnapshot(
            holds=tuple(found),
            sold={SeatId(sold[i]): OrderId(UUID(hex=sold[i + 1])) for i in range(0, len(sold), 2)},
            last_fencing_token=int(token),
        )

    # --- calls -------------------------------------------------------------------------

    def _args(self, session: SessionId) -> _Call:
        """``EVALSHA``, the script's sha, 1 key and the session's three key bases."""
        args = self._keys.get(session)
        if args is None:
            if len(self._keys) >= _MAX_SESSIONS:
                self._keys.clear()
            tag, prefix = f"{{{session}}}", self._prefix
            # bytes: redis-py sends them as they are; the command's name stays text,
            # which the cluster client needs to route the call by its key
            args = self._keys[session] = (
                "EVALSHA",
                _SHA.encode(),
                b"1",
                f"{prefix}seat:token:{tag}".encode(),
                f"{prefix}seat:lock:{tag}:".encode(),
                f"{prefix}seat:holds:{tag}:".encode(),
                f"{prefix}seat:sold:{tag}:".encode(),
            )
        return args

    def _submit(self, args: tuple[Any, ...], payload: bytes) -> asyncio.Future[Any]:
        """Queue one ``EVALSHA``; it goes out with every call queued meanwhile, in one pipeline."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a new event loop: what the old one left can never drain
            self._loop, self._in_flight, self._queue = loop, 0, []
        reply = loop.create_future()
        self._queue.append((args, payload, reply))
        if self._in_flight < self._max_in_flight:
            self._in_flight += 1
            task = loop.create_task(self._drain())
            self._drains.add(task)
            task.add_done_callback(self._drains.discard)
        return reply

    async def _drain(self) -> None:
        """Send what is queued, answer every caller, and again while calls keep coming."""
        try:
            while self._queue:
                calls = self._queue[:_MAX_PIPELINE]
                del self._queue[:_MAX_PIPELINE]
                try:
                    answers = await self._send(calls)
                except Exception as e:  # the connection failed: no answer is known
                    answers = [e] * len(calls)
                except BaseException:  # cancelled (the loop is closing): nobody is answered
                    for _, _, reply in calls:
                        reply.cancel()
                    raise
                for (_, _, reply), answer in zip(calls, answers, strict=True):
                    if reply.done():  # the caller gave up waiting; the decision stands
                        continue
                    if isinstance(answer, Exception):
                        reply.set_exception(answer)
                    else:
                        reply.set_result(answer)
        finally:
            self._in_flight -= 1
            if not self._in_flight:  # left by a cancelled drain: nobody would send them
                for _, _, reply in self._queue:
                    reply.cancel()
                self._queue.clear()

    async def _send(self, calls: list[_Queued]) -> list[Any]:
        """The answers of ``calls``, in one round trip unless the server lacks the script.

        NOSCRIPT (a restarted or flushed server) means that call did not run: load the
        script and send the refused calls again.
        """
        answers = await self._pipeline(calls)
        again = [i for i, answer in enumerate(answers) if isinstance(answer, NoScriptError)]
        if again:
            await self._client.script_load(_SCRIPT)
            retried = await self._pipeline([calls[i] for i in again])
            for i, answer in zip(again, retried, strict=True):
                answers[i] = answer
        return answers

    async def _pipeline(self, calls: list[_Queued]) -> list[Any]:
        """The answers (or errors) of ``calls``, sent in one write (on a cluster, see below)."""
        if len(calls) == 1:
            args, payload, _ = calls[0]
            try:
                return [await self._command(*args, payload)]
            except NoScriptError as e:
                return [e]
        if self._cluster:
            return await self._per_master(calls)
        return await self._one_pipeline(calls)

    async def _one_pipeline(self, calls: list[_Queued]) -> list[Any]:
        pipe = self._client.pipeline(transaction=False)
        for args, payload, _ in calls:
            pipe.execute_command(*args, payload)
        if not self._cluster:
            return list(await pipe.execute(raise_on_error=False))
        try:
            answers = list(await pipe.execute(raise_on_error=False))
        except REDIS_FAILURES as e:
            await relearn_slots(self._client, e)
            raise
        for answer in answers:
            if isinstance(answer, Exception):
                await relearn_slots(self._client, answer)
                break
        return answers

    async def _per_master(self, calls: list[_Queued]) -> list[Any]:
        """On a cluster: one pipeline per master, sent at once; each answers for itself.

        redis-py's cluster pipeline fails every call when one node does not answer, so
        one pipeline for all would let a master that died fail the other masters' calls.
        """
        groups: dict[str | None, list[int]] = {}
        for i, (args, _, _) in enumerate(calls):
            groups.setdefault(self._master_of(args[3]), []).append(i)
        if len(groups) == 1:
            return await self._one_pipeline(calls)
        sent = await asyncio.gather(
            *(self._one_pipeline([calls[i] for i in group]) for group in groups.values()),
            return_exceptions=True,
        )
        answers: list[Any] = [None] * len(calls)
        for group, got in zip(groups.values(), sent, strict=True):
            if isinstance(got, BaseException) and not isinstance(got, Exception):
                raise got  # cancelled
            for n, i in enumerate(group):
                answers[i] = got if isinstance(got, Exception) else got[n]
        return answers

    def _master_of(self, key: bytes) -> str | None:
        """The cluster node that serves ``key`` now, as the client knows; None if unknown."""
        client = cast(RedisCluster, self._client)
        try:
            node = client.get_node_from_key(key.decode())
        except REDIS_FAILURES:  # the client is learning the slot map: let it route
            return None
        return None if node is None else node.name

    async def _execute_mixed(self, ops: Sequence[LockOp], now: int) -> list[LockResult]:
        """Ops of several sessions: one script call per session, sent together."""
        groups: dict[SessionId, tuple[list[int], list[Any]]] = {}
        for index, op in enumerate(ops):
            group = groups.get(op.session_id)
            if group is None:
                group = groups[op.session_id] = ([], [now])
            group[0].append(index)
            group[1].append(_entry(op, self._moments))
        # queued without an await in between: they leave in one pipeline
        replies = [
            self._submit(self._args(session), _encode(entries))
            for session, (_, entries) in groups.items()
        ]
        # every reply is awaited, so that none is left with an error nobody read
        answers: list[Any] = await asyncio.gather(*replies, return_exceptions=True)
        for failed in answers:
            if isinstance(failed, REDIS_FAILURES) and means_unavailable(failed):
                raise unavailable(_DOWN, failed) from failed
            if isinstance(failed, BaseException):
                raise failed
        results: list[LockResult | None] = [None] * len(ops)
        for (indexes, _), answer in zip(groups.values(), answers, strict=True):
            group_results = _results([ops[i] for i in indexes], _decode(answer), self._moments)
            for i, result in zip(indexes, group_results, strict=True):
                results[i] = result
        return [r for r in results if r is not None]


# --- encoding ----------------------------------------------------------------------------


def _entry(op: LockOp, moments: _Moments) -> tuple[Any, ...]:
    """One op as the script reads it: kind, seats, the rest (ids in hex, times in ms as text).

    Every op carries its area: the script files locks, sales and indexes under it.
    """
    if type(op) is AcquireHold:
        return (
            _ACQUIRE,
            op.seat_ids,
            op.hold_id,
            op.area_id,
            op.holder_id,
            op.order_id,
            moments.text(op.expires_at),
            op.after_token,
        )
    if type(op) is RestoreHold:
        hold = op.hold
        return (
            _RESTORE,
            hold.seat_ids,
            hold.hold_id,
            hold.area_id,
            hold.holder_id,
            hold.order_id,
            moments.text(hold.expires_at),
            hold.fencing_token,
        )
    if type(op) is ReleaseHold:
        return (_RELEASE, op.seat_ids, op.hold_id, op.area_id)
    if type(op) is ExtendHold:
        return (_EXTEND, op.seat_ids, op.hold_id, op.area_id, moments.text(op.expires_at))
    if type(op) is MarkSold:
        return (_MARK_SOLD, op.seat_ids, op.hold_id, op.area_id, op.fencing_token)
    if type(op) is ReleaseSold:
        return (_RELEASE_SOLD, op.seat_ids, op.area_id)
    raise TypeError(f"not a lock operation: {op!r}")


def _results(ops: Sequence[LockOp], answers: list[Any], moments: _Moments) -> list[LockResult]:
    """The script's answers (token, ``true`` or a list of seats per op) as results."""
    results: list[LockResult] = []
    append = results.append
    for op, answer in zip(ops, answers, strict=True):
        if type(op) is AcquireHold:
            if type(answer) is int:
                append(
                    Granted(
                        SeatHold(
                            hold_id=op.hold_id,
                            session_id=op.session_id,
                            area_id=op.area_id,
                            holder_id=op.holder_id,
                            order_id=op.order_id,
                            seat_ids=op.seat_ids,
                            fencing_token=answer,
                            expires_at=moments.whole(op.expires_at),
                        )
                    )
                )
            else:
                append(Refused(tuple(answer)))
        elif answer is True:
            append(Done(op.seat_ids))
        elif type(op) is ExtendHold or type(op) is MarkSold or type(op) is RestoreHold:
            append(Refused(tuple(answer)))
        else:  # releases: the seats freed ({} from cjson when none)
            append(Done(tuple(answer)))
    return results


def _hold_from_record(session: SessionId, area: AreaId, hold: str, record: str) -> SeatHold:
    expires, token, holder, order, seats = record.split("|", 4)
    return SeatHold(
        hold_id=HoldId(UUID(hex=hold)),
        session_id=session,
        area_id=area,
        holder_id=UserId(UUID(hex=holder)),
        order_id=OrderId(UUID(hex=order)),
        seat_ids=tuple(SeatId(s) for s in seats.split(",")) if seats else (),
        fencing_token=int(token),
        expires_at=EPOCH + timedelta(milliseconds=int(expires)),
    )
