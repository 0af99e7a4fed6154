"""The waiting room keeps its promises whatever buyers, time and stock do.

A ``RuleBasedStateMachine`` drives the ``WaitingRoom`` use case over the memory store:
buyers join before and after the draw, time passes, the admitter runs, seats are sold
and released, buyers spend their admissions, and admission tokens are tried by their
owners and by others on their own and other sessions. After every step:

- nobody is let in twice for one stay in the queue;
- the admitter never lets admitted-and-shopping buyers pass the stock × overbook;
- every pre-queue buyer is let in before anyone who joined after the draw;
- nobody is let in before the draw;
- a token works only for its owner, in its session, while the admission runs.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from uuid import UUID

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from openticket.adapters.identity.admission_tokens import JwtAdmissionTokens, admission_key
from openticket.adapters.memory.clock import FakeClock
from openticket.adapters.memory.waiting_room import MemoryWaitingRoomStore
from openticket.application.access import Requester
from openticket.application.errors import NotFound
from openticket.application.gate.waiting_room import (
    GatePolicy,
    QueueRequired,
    QueueStatus,
    WaitingRoom,
    queue_id_of,
)
from openticket.application.seating.board import Stock
from openticket.domain.catalog import Session
from openticket.domain.shared import EventId, SessionId, UserId

T = TypeVar("T")

START = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
DRAW_IN = timedelta(seconds=30)
ADMISSION_TTL = timedelta(seconds=40)
OVERBOOK = 1.5
SEATS = 6
BUYERS = [UserId(UUID(int=i + 1)) for i in range(10)]
SESSIONS = [SessionId(UUID(int=1000 + i)) for i in range(2)]


def _session(session_id: SessionId) -> Session:
    return Session(
        session_id=session_id,
        event_id=EventId(UUID(int=7)),
        start_time=START + timedelta(days=10),
        end_time=START + timedelta(days=10, hours=3),
        sale_start_time=START + DRAW_IN,
        sale_end_time=START + timedelta(days=9),
        queue_enabled=True,
    )


class _Sessions:
    async def get_session(self, session_id: SessionId) -> Session:
        if session_id not in SESSIONS:
            raise NotFound(f"no session {session_id}")
        return _session(session_id)


class _RecordingStore(MemoryWaitingRoomStore):
    """The memory store, recording who each ``admit_next`` let in, in order."""

    admissions: list[tuple[SessionId, UserId]]

    async def admit_next(self, session_id: SessionId, count: int) -> list[UserId]:
        chosen = await super().admit_next(session_id, count)
        self.admissions.extend((session_id, user) for user in chosen)
        return chosen


class WaitingRoomMachine(RuleBasedStateMachine):
    """Buyers, time, stock and the admitter in any order."""

    @initialize(seed=st.integers(0, 2**32 - 1))
    def build(self, seed: int) -> None:
        self.loop = asyncio.new_event_loop()
        self.clock = FakeClock(START)
        self.store = _RecordingStore(
            self.clock, admission_ttl=ADMISSION_TTL, draw=random.Random(seed).random
        )
        self.store.admissions = []
        self.sellable = dict.fromkeys(SESSIONS, SEATS)
        self.held = dict.fromkeys(SESSIONS, 0)
        self.tokens = JwtAdmissionTokens(self.clock, admission_key(b"state machine key"))
        self.gate = WaitingRoom(
            store=self.store,
            catalog=_Sessions(),
            stock=self._stock,
            tokens=self.tokens,
            clock=self.clock,
            policy=GatePolicy(overbook=OVERBOOK, admit_per_second=3.0, stock_ttl=timedelta(0)),
        )
        self.stay: dict[tuple[SessionId, UserId], int] = {}
        """Each buyer's current stay in a queue (bumped by every fresh join)."""
        self.pre_queue: dict[tuple[SessionId, UserId], bool] = {}
        self.admitted_stays: set[tuple[SessionId, UserId, int]] = set()
        self.checked = 0

    def teardown(self) -> None:
        self.loop.close()

    def _run(self, step: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(step)

    async def _stock(self, session_id: SessionId) -> Stock:
        return Stock(sellable=self.sellable[session_id], held=self.held[session_id], sold=0)

    # --- rules --------------------------------------------------------------------------

    @rule(buyer=st.sampled_from(BUYERS), session=st.sampled_from(SESSIONS))
    def join(self, buyer: UserId, session: SessionId) -> None:
        before = self._run(self.store.position(session, buyer))
        entry = self._run(self.gate.join(Requester(buyer), session))
        if entry.status is QueueStatus.SOLD_OUT:
            return
        if before is None:  # a fresh stay
            key = (session, buyer)
            self.stay[key] = self.stay.get(key, 0) + 1
            self.pre_queue[key] = self.clock.now() < START + DRAW_IN
        if self.clock.now() < START + DRAW_IN:
            assert entry.position is None
            assert entry.draw_at == START + DRAW_IN

    @rule(seconds=st.sampled_from([0.3, 1, 5, 15, 45]))
    def pass_time(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @rule()
    def admit(self) -> None:
        before = len(self.store.admissions)
        self._run(self.gate.admit_due())
        batch = self.store.admissions[before:]
        if self.clock.now() < START + DRAW_IN:
            assert not batch, "nobody is let in before the draw"
        for session, buyer in batch:
            key = (session, buyer)
            stay = (session, buyer, self.stay[key])
            assert stay not in self.admitted_stays, f"{buyer} let in twice in one stay"
            self.admitted_stays.add(stay)
        for session in SESSIONS:
            if any(s == session for s, _ in batch):
                active = self._run(self.store.admitted_count(session))
                assert active <= math.floor(self.sellable[session] * OVERBOOK)
        self._check_pre_queue_first(batch)

    def _check_pre_queue_first(self, batch: list[tuple[SessionId, UserId]]) -> None:
        """When a later joiner is let in, no pre-queue buyer of the session still waits."""
        for position, (session, buyer) in enumerate(batch):
            if self.pre_queue.get((session, buyer), False):
                continue
            earlier = {b for s, b in batch[:position] if s == session}
            for other in BUYERS:
                if other in earlier or not self.pre_queue.get((session, other), False):
                    continue
                ticket = self._run(self.store.position(session, other))
                waiting = ticket is not None and not ticket.admitted
                assert not waiting, f"{buyer} (late) let in while pre-queue {other} waits"

    @rule(session=st.sampled_from(SESSIONS), count=st.integers(1, 3))
    def sell(self, session: SessionId, count: int) -> None:
        taken = min(count, self.sellable[session])
        self.sellable[session] -= taken
        self.held[session] += taken

    @rule(session=st.sampled_from(SESSIONS), count=st.integers(1, 3))
    def release(self, session: SessionId, count: int) -> None:
        back = min(count, self.held[session])
        self.held[session] -= back
        self.sellable[session] += back

    @rule(session=st.sampled_from(SESSIONS))
    def finish_sales(self, session: SessionId) -> None:
        self.held[session] = 0  # paid: sold for good

    @rule(buyer=st.sampled_from(BUYERS), session=st.sampled_from(SESSIONS))
    def spend(self, buyer: UserId, session: SessionId) -> None:
        self._run(self.gate.spend(Requester(buyer), session))

    @precondition(lambda self: bool(self.admitted_stays))
    @rule(
        owner=st.sampled_from(BUYERS),
        user=st.sampled_from(BUYERS),
        session=st.sampled_from(SESSIONS),
        on=st.sampled_from(SESSIONS),
    )
    def use_a_token(self, owner: UserId, user: UserId, session: SessionId, on: SessionId) -> None:
        ticket = self._run(self.store.position(session, owner))
        if ticket is None or ticket.admitted_until is None:
            return
        entry = self._run(self.gate.entry(Requester(owner), session, _queue_id(session, owner)))
        token = entry.admission_token
        assert token is not None
        may = user == owner and on == session
        try:
            self._run(self.gate.check_order(Requester(user), _session(on), token))
        except QueueRequired:
            assert not may, "the owner's running admission was refused"
        else:
            assert may, f"{user}'s order on {on} passed with {owner}'s token for {session}"
        self.checked += 1
        # a refused use leaves the owner's admission as it was
        assert self._run(self.store.is_admitted(session, owner))

    @invariant()
    def admissions_run_out(self) -> None:
        if not hasattr(self, "store"):
            return
        for session in SESSIONS:
            for buyer in BUYERS:
                ticket = self._run(self.store.position(session, buyer))
                if ticket is not None and ticket.admitted_until is not None:
                    assert ticket.admitted_until > self.clock.now()
                    assert ticket.admitted_until <= self.clock.now() + ADMISSION_TTL


def _queue_id(session: SessionId, buyer: UserId) -> UUID:
    return queue_id_of(session, buyer)


TestWaitingRoomMachine = WaitingRoomMachine.TestCase
