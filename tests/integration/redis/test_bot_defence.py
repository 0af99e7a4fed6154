"""The heuristic bot defence over the Redis counter: the contract's scenarios across processes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from uuid import uuid4

import pytest
import redis.asyncio as aioredis

from openticket.adapters.bot_defence import HeuristicBotDefence
from openticket.adapters.memory.clock import DEFAULT_START
from openticket.adapters.redis.signal_counter import RedisSignalCounter
from openticket.application.ports.bot_defence import (
    BotAction,
    BotDefence,
    BotReason,
    Signal,
    SignalKind,
)
from openticket.domain.shared import SessionId, UserId
from openticket.testing.contracts.bot_defence import BotDefenceContract

pytestmark = pytest.mark.redis


class TestHeuristicBotDefenceOnRedis(BotDefenceContract):
    @pytest.fixture
    async def bot_defence(self, redis_client: aioredis.Redis, key_prefix: str) -> BotDefence:
        return HeuristicBotDefence(RedisSignalCounter(redis_client, prefix=key_prefix))


@pytest.fixture
async def two_processes(
    redis_url: str, key_prefix: str
) -> AsyncIterator[tuple[HeuristicBotDefence, HeuristicBotDefence]]:
    clients = [aioredis.Redis.from_url(redis_url) for _ in range(2)]
    try:
        first, second = (
            HeuristicBotDefence(RedisSignalCounter(c, prefix=key_prefix)) for c in clients
        )
        yield first, second
    finally:
        for client in clients:
            await client.aclose()


async def test_a_script_spread_over_two_api_processes_is_counted_as_one(
    two_processes: tuple[HeuristicBotDefence, HeuristicBotDefence],
) -> None:
    """Accounts joining from one address through two processes behind a load balancer."""
    session = SessionId(uuid4())
    limit = two_processes[0].policy.accounts_per_address.limit
    actions = []
    for n in range(3 * limit):
        join = Signal(
            kind=SignalKind.JOIN,
            session_id=session,
            user_id=UserId(uuid4()),
            at=DEFAULT_START + n * timedelta(seconds=5),  # slow: only the accounts add up
            address="203.0.113.70",
        )
        verdict = await two_processes[n % 2].assess(join)
        actions.append(verdict.action)
        if verdict.suspected:
            assert verdict.reasons == (BotReason.ACCOUNTS_PER_ADDRESS,)
    assert actions == [BotAction.ALLOW] * limit + [BotAction.SEND_BACK] * (2 * limit)
