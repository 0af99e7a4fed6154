"""The feeds' limits on their own: messages per minute, open feeds, token deadlines."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import timedelta

import pytest

from openticket.adapters.memory import FakeClock
from openticket.domain.shared import UserId
from openticket.entrypoints.http.feed_limits import (
    FeedRefused,
    MessageMeter,
    OpenFeeds,
    TokenDeadlines,
)
from openticket.entrypoints.http.policy import HttpPolicy

PING = {"type": "websocket.receive", "text": "ping"}


def test_the_message_rate_is_counted_over_the_last_minute_not_the_feeds_life() -> None:
    clock = FakeClock()
    meter = MessageMeter(HttpPolicy(ws_max_messages_per_minute=3), clock)
    for _ in range(3):
        assert meter.judge(PING) is None
        clock.advance(20)
    assert meter.judge(PING) is None  # the first came a minute ago
    clock.advance(19)
    closing = meter.judge(PING)  # four within 59 s
    assert closing is not None
    assert closing.code == 1008


def test_a_message_is_measured_in_utf8_bytes() -> None:
    meter = MessageMeter(HttpPolicy(ws_max_message_bytes=8), FakeClock())
    assert meter.judge({"type": "websocket.receive", "text": "€€"}) is None  # 6 bytes
    closing = meter.judge({"type": "websocket.receive", "text": "€€€"})  # 9 bytes
    assert closing is not None
    assert closing.code == 1009


def test_loopback_clients_are_not_counted_when_the_policy_says_so() -> None:
    embedded = OpenFeeds(HttpPolicy(ws_max_connections_per_address=1, limit_loopback=False))
    with embedded.admit("127.0.0.1"), embedded.admit("::1"), embedded.admit("127.0.0.1"):
        refused = refusal(embedded, "203.0.113.7", "203.0.113.7")
    assert refused is not None
    assert refused.closing.reason == "too many feeds from this address"
    production = OpenFeeds(HttpPolicy(ws_max_connections_per_address=1))
    assert refusal(production, "127.0.0.1", "127.0.0.1") is not None


def refusal(feeds: OpenFeeds, *addresses: str) -> FeedRefused | None:
    """The refusal when feeds from ``addresses`` are open at once; None if all are admitted."""
    try:
        with contextlib.ExitStack() as stack:
            for address in addresses:
                stack.enter_context(feeds.admit(address))
    except FeedRefused as refused:
        return refused
    return None


def test_a_refused_feed_takes_no_place() -> None:
    feeds = OpenFeeds(HttpPolicy(ws_max_connections_per_user=1))
    alice = UserId(uuid.uuid4())
    with feeds.admit("203.0.113.7", alice):
        for _ in range(3):
            with pytest.raises(FeedRefused, match="too many feeds for this user"):
                feeds.admit("203.0.113.8", alice).__enter__()
    with feeds.admit("203.0.113.8", alice):  # the one admitted gave its place back
        pass


async def test_deadlines_fire_on_the_clock_and_the_ticker_stops_with_the_last_feed() -> None:
    clock = FakeClock()
    deadlines = TokenDeadlines(clock, tick_seconds=0.01)
    soon = clock.now() + timedelta(seconds=10)
    later = soon + timedelta(seconds=10)
    with deadlines.watch(soon) as first, deadlines.watch(later) as second:
        for _ in range(100):  # feeds that come and go meanwhile
            with deadlines.watch(soon):
                pass
        await asyncio.sleep(0.05)
        assert not first.is_set()
        clock.advance(10)
        await asyncio.wait_for(first.wait(), 1)
        assert not second.is_set()
        clock.advance(10)
        await asyncio.wait_for(second.wait(), 1)
    await asyncio.sleep(0)
    assert asyncio.all_tasks() == {asyncio.current_task()}
