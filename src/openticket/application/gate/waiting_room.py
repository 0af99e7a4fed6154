"""The waiting room of a session sold through a queue: join, watch, be let in, order.

A buyer joins a session's queue (``join``) and reads their entry (``entry``): where
they stand, how long the wait may be, and, once let in, an admission token to order
with. Who joins before the sale starts is in the pre-queue: their places are drawn at
random (the store draws each a secret ticket) and shown from the sale start on; who
joins later stands behind them, first come, first served.

The admitter (``admit_due``, run by ``run`` in every API process) lets buyers in: for
each session with people waiting, the process holding the session's lease admits
while the buyers admitted and still shopping stay below the seats still for sale ×
``overbook``, at most ``admit_per_second``. Admissions stop when the session sells out,
and the entries still waiting then say ``sold_out``.

An order of a queued session needs the buyer's own admission token for that session,
with the admission still running (``require_admission``); a buyer who has taken as
many seats as they may spends it (``spend``), which lets the next buyer in.

One module, over 500 lines: joining, admitting and ordering share one policy and one
store; split apart, each half would need the other's private state.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

import attrs
import structlog

from openticket.application.access import Requester
from openticket.application.errors import ApplicationError, Forbidden, NotFound
from openticket.application.ports.admission import Admission, AdmissionTokens
from openticket.application.ports.bot_defence import BotDefence, Signal, SignalKind
from openticket.application.ports.challenge import ChallengeVerifier
from openticket.application.ports.clock import Clock
from openticket.application.ports.errors import AdapterUnavailable
from openticket.application.ports.waiting_room import QueueTicket, WaitingRoomStore
from openticket.application.seating.board import Stock
from openticket.domain.catalog import SaleNotOpen, SaleState, Session
from openticket.domain.identity import Role
from openticket.domain.shared import SessionId, UserId

_log = structlog.get_logger("openticket.gate")

_QUEUE_IDS = uuid.UUID("6f1c5a0e-3c55-4e0b-9b9e-6d1f1b0a7c21")
"""Namespace of queue ids: one id per buyer and session, the same on every join."""


class QueueRequired(Forbidden):
    """An order of a queued session without a valid admission of the buyer's own."""

    code = "queue_required"


class BotSuspected(Forbidden):
    """The bot defence judged the request scripted (an order; a join goes to the back)."""

    code = "bot_suspected"


class ChallengeFailed(Forbidden):
    """A join of a session that requires a human check, without a token that passes it."""

    code = "challenge_failed"


class ChallengeUnavailable(ApplicationError):
    """A session requires a human check, and no verifier is configured to ask."""

    code = "challenge_unavailable"


class QueueNotEnabled(ApplicationError):
    """A join of a session that does not sell through a waiting room."""

    code = "queue_not_enabled"


class QueueStatus(StrEnum):
    """Where a buyer's queue entry stands."""

    WAITING = "waiting"
    ADMITTED = "admitted"
    SOLD_OUT = "sold_out"


@attrs.frozen(kw_only=True)
class Client:
    """Where a request comes from, as the edge trusts it.

    ``address`` is the client's address (``X-Forwarded-For`` only through a trusted
    proxy), ``None`` when unknown or not to be counted (the developer's own loopback in
    the embedded profile); ``device_id`` the client's device header, if any.
    """

    address: str | None = None
    device_id: str | None = None


@attrs.frozen(kw_only=True)
class QueueEntry:
    """A buyer's place in a session's waiting room, as they see it.

    ``position`` is 1 for the first buyer waiting, 0 once admitted, ``None`` before the
    draw (``draw_at``, the sale start) and when sold out. ``admission_token`` is set
    while admitted, with ``admitted_until`` its end.
    """

    queue_id: uuid.UUID
    session_id: SessionId
    user_id: UserId
    status: QueueStatus
    position: int | None
    draw_at: datetime | None = None
    estimated_wait_s: int | None = None
    admission_token: str | None = None
    admitted_until: datetime | None = None
    joined_at: datetime | None = None


@attrs.frozen
class GatePolicy:
    """How fast a waiting room lets buyers in.

    ``overbook``: admitted buyers still shopping may be up to the seats for sale × this
    (some buyers leave without buying). ``admit_per_second``: at most this many are let
    in per second per session (bursts of one second's worth). ``tick``: how often the
    admitter looks. ``lease``: how long one process admits for a session before it must
    renew (another takes over within this after it stops). ``stock_ttl``: how old a
    session's stock count may be when a join or a read decides ``sold_out``.
    """

    overbook: float = 1.5
    admit_per_second: float = 50.0
    tick: timedelta = timedelta(milliseconds=500)
    lease: timedelta = timedelta(seconds=5)
    stock_ttl: timedelta = timedelta(seconds=1)
    admission_ttl: timedelta = timedelta(minutes=10)
    """How long an admission lasts (the store's): when an order's buyer was let in."""
    bot_defence_timeout: timedelta = timedelta(milliseconds=250)
    """How long a request waits for the bot defence's verdict before it goes on without."""

    def __attrs_post_init__(self) -> None:
        if not self.overbook >= 1.0 or not math.isfinite(self.overbook):
            raise ValueError(f"overbook must be at least 1, not {self.overbook}")
        if not self.admit_per_second > 0 or not math.isfinite(self.admit_per_second):
            raise ValueError(f"admit_per_second must be above 0, not {self.admit_per_second}")
        if self.tick <= timedelta(0) or self.lease <= self.tick:
            raise ValueError("the tick must be above zero and the lease longer than a tick")


class SessionReader(Protocol):
    """Where the waiting room reads sessions (the catalog)."""

    async def get_session(self, session_id: SessionId) -> Session:
        """A session; ``NotFound`` if there is none."""
        ...


class GateObserver(Protocol):
    """What the waiting room tells its observer (metrics), per session."""

    def admitted(self, session_id: SessionId, count: int) -> None:
        """``count`` buyers were let in just now."""

    def waiting(self, session_id: SessionId, count: int) -> None:
        """``count`` buyers wait now."""

    def suspected(self, session_id: SessionId, kind: str, action: str) -> None:
        """The bot defence judged a ``kind`` request scripted and answered ``action``."""

    def waited(self, session_id: SessionId, seconds: float) -> None:
        """A buyer let in just now had waited ``seconds`` since joining."""


class _NoObserver:
    def admitted(self, session_id: SessionId, count: int) -> None:
        """Nothing to tell."""

    def waiting(self, session_id: SessionId, count: int) -> None:
        """Nothing to tell."""

    def suspected(self, session_id: SessionId, kind: str, action: str) -> None:
        """Nothing to tell."""

    def waited(self, session_id: SessionId, seconds: float) -> None:
        """Nothing to tell."""


@functools.lru_cache(maxsize=65_536)
def queue_id_of(session_id: SessionId, user_id: UserId) -> uuid.UUID:
    """The id of a buyer's entry in a session's queue (the same on every join)."""
    return uuid.uuid5(_QUEUE_IDS, f"{session_id}/{user_id}")


@attrs.define
class _Cached:
    value: Stock
    at: datetime


@attrs.define
class _Outflow:
    """One session's admission budget: a token bucket refilled at ``admit_per_second``."""

    budget: float
    at: datetime


class WaitingRoom:
    """The waiting rooms of every queued session: joins, entries, admissions, spending."""

    def __init__(
        self,
        *,
        store: WaitingRoomStore,
        catalog: SessionReader,
        stock: Callable[[SessionId], Awaitable[Stock]],
        tokens: AdmissionTokens,
        clock: Clock,
        policy: GatePolicy | None = None,
        holder: str | None = None,
        observer: GateObserver | None = None,
        bot_defence: BotDefence | None = None,
        challenge: ChallengeVerifier | None = None,
    ) -> None:
        self._store = store
        self._catalog = catalog
        self._stock_of = stock
        self._tokens = tokens
        self._clock = clock
        self.policy = policy or GatePolicy()
        self.holder = holder or uuid.uuid4().hex
        """This process's name on the admitter leases it takes."""
        self.observer: GateObserver = observer or _NoObserver()
        """Told of admissions and queue lengths (the HTTP app's metrics)."""
        self._bot_defence = bot_defence
        self._challenge = challenge
        self._stock: dict[SessionId, _Cached] = {}
        self._outflow: dict[SessionId, _Outflow] = {}

    # --- buyers ---------------------------------------------------------------------------

    async def join(
        self,
        by: Requester,
        session_id: SessionId,
        client: Client | None = None,
        challenge_token: str | None = None,
    ) -> QueueEntry:
        """Join the session's queue, or answer where the buyer stands (idempotent).

        Raises ``Forbidden`` for a caller without the buyer role, ``NotFound``,
        ``QueueNotEnabled`` for a session sold without a queue, ``SaleNotOpen`` once
        the sale has ended. A sold-out session answers ``sold_out`` and joins nobody.
        A join the bot defence judges scripted is taken at the back of the queue:
        outside the pre-queue, and a waiting buyer's place is given up for the back.
        A session with ``challenge_required`` takes a new buyer only with a
        ``challenge_token`` its verifier accepts (``ChallengeFailed`` otherwise;
        ``AdapterUnavailable`` when the verifier cannot be asked, to retry with the
        same token).
        """
        by.require(Role.BUYER)
        session = await self._queued_session(session_id)
        now = self._clock.now()
        if session.sale_state(now) in (SaleState.ENDED, SaleState.CANCELLED):
            raise SaleNotOpen(f"the sale of session {session_id} is over")
        ticket = await self._store.position(session_id, by.user_id)
        if ticket is None or not ticket.admitted:
            stock = await self._current_stock(session_id, now)
            if stock.sold_out:
                return self._sold_out(session_id, by.user_id)
        if ticket is None and session.challenge_required:
            await self._pass_challenge(by, session_id, client, challenge_token)
        suspected = await self._suspect(self._signal(SignalKind.JOIN, by, session_id, client, now))
        if ticket is not None and suspected and not ticket.admitted:
            await self._store.remove(session_id, by.user_id)  # to the back
            ticket = None
        if ticket is None:
            ticket = await self._store.join(
                session_id,
                by.user_id,
                pre_queue_until=None if suspected else session.sale_start_time,
            )
        return self._entry(session, by.user_id, ticket, now)

    async def entry(self, by: Requester, session_id: SessionId, queue_id: uuid.UUID) -> QueueEntry:
        """The buyer's own entry (``NotFound`` for anyone else's, or when not in the queue)."""
        if queue_id != queue_id_of(session_id, by.user_id):
            raise NotFound(f"no queue entry {queue_id} of yours")
        session = await self._queued_session(session_id)
        now = self._clock.now()
        ticket = await self._store.position(session_id, by.user_id)
        if ticket is None or not ticket.admitted:
            stock = await self._current_stock(session_id, now)
            if stock.sold_out:
                return self._sold_out(session_id, by.user_id)
        if ticket is None:
            raise NotFound(
                f"queue entry {queue_id} is no longer in the queue (its admission ran out "
                "or was used up); join again"
            )
        return self._entry(session, by.user_id, ticket, now)

    async def check_order(
        self,
        by: Requester,
        session: Session,
        token: str | None,
        client: Client | None = None,
    ) -> None:
        """Let an order through the gate, or raise before any seat is held.

        A session sold through its waiting room needs ``token``, the caller's own
        running admission (``QueueRequired`` otherwise; a token of another user or
        session is refused and stays as it was for its owner). Every order is shown
        to the bot defence: one judged scripted raises ``BotSuspected``.
        """
        ticket = None
        if session.queue_enabled:
            ticket = await self._admission(by, session.session_id, token)
        admitted_at = None
        if ticket is not None and ticket.admitted_until is not None:
            admitted_at = ticket.admitted_until - self.policy.admission_ttl
        signal = self._signal(
            SignalKind.ORDER,
            by,
            session.session_id,
            client,
            self._clock.now(),
            joined_at=None if ticket is None else ticket.joined_at,
            admitted_at=admitted_at,
        )
        if await self._suspect(signal):
            raise BotSuspected("this order looks automated and was refused")

    async def refused(
        self, by: Requester, session_id: SessionId, client: Client | None = None
    ) -> None:
        """Tell the bot defence that the caller's order was refused (409: seats, cap)."""
        if self._bot_defence is None:
            return
        signal = self._signal(SignalKind.ORDER, by, session_id, client, self._clock.now())
        try:
            async with asyncio.timeout(self.policy.bot_defence_timeout.total_seconds()):
                await self._bot_defence.record_refusal(signal)
        except (AdapterUnavailable, TimeoutError) as e:
            _log.warning("bot_defence_unavailable", error=str(e) or "timed out")

    async def _pass_challenge(
        self,
        by: Requester,
        session_id: SessionId,
        client: Client | None,
        token: str | None,
    ) -> None:
        """Raise unless ``token`` proves the human check the session requires.

        The idempotency key is the same for the same buyer, session and token, so a
        join retried after a lost answer is answered as the first was.
        """
        if self._challenge is None:
            raise ChallengeUnavailable(
                f"session {session_id} requires a human check, and this server has no "
                "challenge verifier (OPENTICKET_TURNSTILE_SECRET)"
            )
        key = uuid.uuid5(queue_id_of(session_id, by.user_id), token or "")
        result = await self._challenge.verify(
            token or "",
            address=None if client is None else client.address,
            idempotency_key=str(key),
        )
        if not result.ok:
            reasons = ", ".join(result.error_codes) or "not accepted"
            raise ChallengeFailed(
                f"session {session_id} needs a solved challenge in X-Challenge-Token "
                f"before joining its waiting room ({reasons})"
            )

    async def _admission(
        self, by: Requester, session_id: SessionId, token: str | None
    ) -> QueueTicket:
        """The caller's running admission that ``token`` stands for; ``QueueRequired``."""
        if not token:
            raise QueueRequired(
                f"session {session_id} sells through its waiting room: join it with "
                f"POST /api/sessions/{session_id}/queue and order with the admission token "
                "in the X-Admission-Token header"
            )
        admission = self._tokens.read(token)
        if admission is None:
            raise QueueRequired("the admission token is not valid (altered or run out)")
        if admission.user_id != by.user_id or admission.session_id != session_id:
            _log.warning(
                "admission_token_misused",
                user_id=str(by.user_id),
                owner=str(admission.user_id),
                session_id=str(session_id),
                token_session=str(admission.session_id),
            )
            raise QueueRequired("the admission token belongs to another buyer or session")
        ticket = await self._store.position(session_id, by.user_id)
        if ticket is None or not ticket.admitted:
            raise QueueRequired("the admission has been used up or has run out; join again")
        return ticket

    async def _suspect(self, signal: Signal) -> bool:
        """Whether the bot defence judges the request scripted (it logs why).

        A bot defence that cannot be asked, or that has not answered within
        ``policy.bot_defence_timeout`` (a Redis failing over), lets the request through:
        a gate that refuses or stalls every buyer while its store blinks does more harm
        than a bot.
        """
        if self._bot_defence is None:
            return False
        try:
            async with asyncio.timeout(self.policy.bot_defence_timeout.total_seconds()):
                verdict = await self._bot_defence.assess(signal)  # no task, unlike wait_for
        except (AdapterUnavailable, TimeoutError) as e:
            _log.warning("bot_defence_unavailable", error=str(e) or "timed out")
            return False
        if verdict.suspected:
            self.observer.suspected(signal.session_id, signal.kind.value, verdict.action.value)
        return verdict.suspected

    @staticmethod
    def _signal(
        kind: SignalKind,
        by: Requester,
        session_id: SessionId,
        client: Client | None,
        now: datetime,
        *,
        joined_at: datetime | None = None,
        admitted_at: datetime | None = None,
    ) -> Signal:
        return Signal(
            kind=kind,
            session_id=session_id,
            user_id=by.user_id,
            at=now,
            address=None if client is None else client.address,
            device_id=None if client is None else client.device_id,
            joined_at=joined_at,
            admitted_at=admitted_at,
        )

    async def waiting(self, session_id: SessionId) -> int:
        """How many buyers wait in the session's queue now (what its organizer watches)."""
        return await self._store.length(session_id)

    async def spend(self, by: Requester, session_id: SessionId) -> None:
        """The buyer has taken all the seats they may: their admission ends now.

        Only a running admission ends: a buyer who is waiting again keeps their place.
        """
        try:
            ticket = await self._store.position(session_id, by.user_id)
            if ticket is not None and ticket.admitted:
                await self._store.remove(session_id, by.user_id)
        except AdapterUnavailable as e:  # it runs out by itself at the TTL
            _log.warning("admission_not_spent", session_id=str(session_id), error=str(e))

    # --- the admitter ---------------------------------------------------------------------

    async def admit_due(self) -> int:
        """One pass over the rooms this process holds the lease of; how many were let in."""
        admitted = 0
        for session_id in await self._store.rooms():
            if not await self._store.lease(session_id, self.holder, self.policy.lease):
                self._outflow.pop(session_id, None)
                self.observer.waiting(session_id, await self._store.length(session_id))
                continue
            try:
                admitted += await self._admit(session_id)
            except NotFound:
                await self._store.release_lease(session_id, self.holder)
        return admitted

    async def run(self) -> None:
        """Admit every ``policy.tick`` until cancelled; failures are logged and retried."""
        interval = self.policy.tick.total_seconds()
        while True:
            try:
                await self.admit_due()
            except asyncio.CancelledError:
                raise
            except AdapterUnavailable as e:
                _log.warning("admitter_unavailable", error=str(e))
            except Exception:
                _log.exception("admitter_failed")
            await asyncio.sleep(interval)

    async def stop_admitting(self) -> None:
        """Give up this process's leases, so another process takes over at once.

        Bounded by one lease tick: a process shutting down never waits on its store
        (an unreleased lease runs out by itself).
        """
        sessions, self._outflow = list(self._outflow), {}
        with contextlib.suppress(AdapterUnavailable, TimeoutError):
            async with asyncio.timeout(self.policy.tick.total_seconds()):
                for session_id in sessions:
                    await self._store.release_lease(session_id, self.holder)

    async def _admit(self, session_id: SessionId) -> int:
        session = await self._catalog.get_session(session_id)
        now = self._clock.now()
        waiting = await self._store.length(session_id)
        self.observer.waiting(session_id, waiting)
        if waiting == 0 or session.sale_state(now) is not SaleState.ON_SALE:
            return 0
        stock = await self._fresh_stock(session_id, now)
        if stock.sold_out:
            return 0
        active = await self._store.admitted_count(session_id)
        room = math.floor(stock.sellable * self.policy.overbook) - active
        outflow = self._refill(session_id, now)
        count = min(room, math.floor(outflow.budget), waiting)
        if count <= 0:
            return 0
        chosen = await self._store.admit_next(session_id, count)
        outflow.budget -= len(chosen)
        if chosen:
            self.observer.admitted(session_id, len(chosen))
            await self._observe_waits(session_id, chosen, now)
            self.observer.waiting(session_id, waiting - len(chosen))
            _log.info("admitted", session_id=str(session_id), count=len(chosen), waiting=waiting)
        return len(chosen)

    async def _observe_waits(
        self, session_id: SessionId, chosen: list[UserId], now: datetime
    ) -> None:
        """Tell the observer how long each buyer just let in waited (from their join)."""
        tickets = await asyncio.gather(*(self._store.position(session_id, u) for u in chosen))
        for ticket in tickets:
            if ticket is not None:
                self.observer.waited(session_id, (now - ticket.joined_at).total_seconds())

    def _refill(self, session_id: SessionId, now: datetime) -> _Outflow:
        """The session's admission budget, refilled for the time since the last pass."""
        per_second = self.policy.admit_per_second
        burst = max(per_second * self.policy.tick.total_seconds(), 1.0)
        outflow = self._outflow.get(session_id)
        if outflow is None:
            outflow = self._outflow[session_id] = _Outflow(budget=burst, at=now)
            return outflow
        elapsed = max((now - outflow.at).total_seconds(), 0.0)
        outflow.budget = min(outflow.budget + elapsed * per_second, burst)
        outflow.at = now
        return outflow

    # --- helpers ------------------------------------------------------------------------

    async def _queued_session(self, session_id: SessionId) -> Session:
        session = await self._catalog.get_session(session_id)
        if not session.queue_enabled:
            raise QueueNotEnabled(f"session {session_id} is sold without a waiting room")
        return session

    async def _current_stock(self, session_id: SessionId, now: datetime) -> Stock:
        """The session's stock, counted at most ``policy.stock_ttl`` ago."""
        cached = self._stock.get(session_id)
        if cached is not None and now - cached.at < self.policy.stock_ttl:
            return cached.value
        return await self._fresh_stock(session_id, now)

    async def _fresh_stock(self, session_id: SessionId, now: datetime) -> Stock:
        stock = await self._stock_of(session_id)
        self._stock[session_id] = _Cached(stock, now)
        return stock

    def _sold_out(self, session_id: SessionId, user_id: UserId) -> QueueEntry:
        return QueueEntry(
            queue_id=queue_id_of(session_id, user_id),
            session_id=session_id,
            user_id=user_id,
            status=QueueStatus.SOLD_OUT,
            position=None,
        )

    def _entry(
        self, session: Session, user_id: UserId, ticket: QueueTicket, now: datetime
    ) -> QueueEntry:
        session_id = session.session_id
        queue_id = queue_id_of(session_id, user_id)
        if ticket.admitted_until is not None:
            token = self._tokens.issue(Admission(user_id, session_id, ticket.admitted_until))
            return QueueEntry(
                queue_id=queue_id,
                session_id=session_id,
                user_id=user_id,
                status=QueueStatus.ADMITTED,
                position=0,
                estimated_wait_s=0,
                admission_token=token,
                admitted_until=ticket.admitted_until,
                joined_at=ticket.joined_at,
            )
        if now < session.sale_start_time:
            return QueueEntry(
                queue_id=queue_id,
                session_id=session_id,
                user_id=user_id,
                status=QueueStatus.WAITING,
                position=None,
                draw_at=session.sale_start_time,
                joined_at=ticket.joined_at,
            )
        return QueueEntry(
            queue_id=queue_id,
            session_id=session_id,
            user_id=user_id,
            status=QueueStatus.WAITING,
            position=ticket.position,
            estimated_wait_s=self._estimate(session_id, ticket.position),
            joined_at=ticket.joined_at,
        )

    def _estimate(self, session_id: SessionId, position: int) -> int:
        """Seconds until a buyer at ``position`` is let in, at the admission rate cap.

        The rate of admissions also follows the stock (buyers who finish let the next
        in), so this is the shortest wait, not a promise.
        """
        return math.ceil(position / self.policy.admit_per_second)
