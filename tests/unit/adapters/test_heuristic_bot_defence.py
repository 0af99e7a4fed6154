"""The heuristic bot defence on the in-memory counter: the contract's scenarios, and the log."""

from __future__ import annotations

from datetime import timedelta
from uuid import uuid4

import pytest
from structlog.testing import capture_logs

from openticket.adapters.bot_defence import HeuristicBotDefence
from openticket.adapters.memory.clock import DEFAULT_START
from openticket.adapters.memory.signal_counter import MemorySignalCounter
from openticket.application.ports.bot_defence import (
    BotAction,
    BotDefence,
    Signal,
    SignalKind,
)
from openticket.domain.shared import SessionId, UserId
from openticket.testing.contracts.bot_defence import BotDefenceContract


class TestHeuristicBotDefenceInMemory(BotDefenceContract):
    @pytest.fixture
    async def bot_defence(self) -> BotDefence:
        return HeuristicBotDefence(MemorySignalCounter())


def test_the_heuristic_defence_is_a_bot_defence() -> None:
    assert isinstance(HeuristicBotDefence(MemorySignalCounter()), BotDefence)


def _order(*, after: timedelta, address: str = "203.0.113.9") -> Signal:
    admitted = DEFAULT_START
    return Signal(
        kind=SignalKind.ORDER,
        session_id=SessionId(uuid4()),
        user_id=UserId(uuid4()),
        at=admitted + after,
        address=address,
        joined_at=admitted - timedelta(minutes=2),
        admitted_at=admitted,
    )


async def test_a_suspect_is_logged_with_its_reasons_user_and_address() -> None:
    defence = HeuristicBotDefence(MemorySignalCounter())
    order = _order(after=timedelta(milliseconds=5))
    with capture_logs() as logs:
        verdict = await defence.assess(order)
    assert verdict.action is BotAction.REFUSE
    assert logs == [
        {
            "event": "bot_suspected",
            "log_level": "warning",
            "kind": "order",
            "action": "refuse",
            "reasons": ["inhuman_timing"],
            "score": 1.0,
            "user_id": str(order.user_id),
            "session_id": str(order.session_id),
            "address": "203.0.113.9",
        }
    ]


async def test_a_paced_request_is_not_logged() -> None:
    defence = HeuristicBotDefence(MemorySignalCounter())
    with capture_logs() as logs:
        verdict = await defence.assess(_order(after=timedelta(seconds=4)))
    assert verdict.action is BotAction.ALLOW
    assert logs == []


async def test_every_request_counts_even_when_sent_back() -> None:
    """A script that keeps joining while sent back does not earn its way back in."""
    defence = HeuristicBotDefence(MemorySignalCounter())
    user, session = UserId(uuid4()), SessionId(uuid4())
    limit = defence.policy.requests_per_account.limit
    actions = []
    for n in range(3 * limit):
        join = Signal(
            kind=SignalKind.JOIN,
            session_id=session,
            user_id=user,
            at=DEFAULT_START + n * timedelta(seconds=1),  # one a second: 60 a minute
        )
        actions.append((await defence.assess(join)).action)
    assert actions == [BotAction.ALLOW] * limit + [BotAction.SEND_BACK] * (2 * limit)
