"""Limits on the live feeds: message size and rate, open feeds, token lifetime.

A feed's client has nothing to say (the feeds ignore its messages), so each message is
judged and dropped: one over ``ws_max_message_bytes`` closes the feed with 1009, more
than ``ws_max_messages_per_minute`` in any minute close it with 1008. Open feeds are
counted per client address (every feed) and per signed-in user (the order feed), in
this process; one over a cap is closed with 1008 right after it is accepted, so that
the client can read why. A feed opened with a token closes with 1008 when the token
expires. docs/feeds.md tells clients what to do about each.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import ipaddress
import itertools
from collections import Counter, deque
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any, TypeVar

import attrs

from openticket.application.ports.clock import Clock
from openticket.domain.shared import UserId
from openticket.entrypoints.http.policy import HttpPolicy

POLICY_VIOLATION = 1008
MESSAGE_TOO_BIG = 1009
TRY_AGAIN_LATER = 1013

_MINUTE = timedelta(minutes=1)

_K = TypeVar("_K")


@attrs.frozen
class FeedClosing:
    """Why the server closes a feed: a WebSocket close code and a reason the client reads."""

    code: int
    reason: str


TOKEN_EXPIRED = FeedClosing(POLICY_VIOLATION, "token expired")


class FeedRefused(Exception):
    """A feed over one of the connection caps."""

    def __init__(self, closing: FeedClosing) -> None:
        super().__init__(closing.reason)
        self.closing = closing


class MessageMeter:
    """Judges what the client of one feed sends: size of each message, messages per minute."""

    def __init__(self, policy: HttpPolicy, clock: Clock) -> None:
        self._max_bytes = policy.ws_max_message_bytes
        self._per_minute = policy.ws_max_messages_per_minute
        self._clock = clock
        # the moments of the last ``per_minute`` messages: one more within a minute of
        # the oldest is one too many
        self._recent: deque[datetime] = deque(maxlen=self._per_minute)

    def judge(self, message: Any) -> FeedClosing | None:
        """Why ``message`` (an ASGI ``websocket.receive`` event) closes the feed; None if not."""
        if self._too_big(message):
            return FeedClosing(
                MESSAGE_TOO_BIG, f"message too big (at most {self._max_bytes} bytes)"
            )
        now = self._clock.now()
        if len(self._recent) == self._per_minute and now - self._recent[0] < _MINUTE:
            return FeedClosing(
                POLICY_VIOLATION, f"too many messages (at most {self._per_minute} a minute)"
            )
        self._recent.append(now)
        return None

    def _too_big(self, message: Any) -> bool:
        data = message.get("bytes")
        if data is not None:
            return len(data) > self._max_bytes
        text: str = message.get("text") or ""
        # UTF-8 takes at least one byte a character and at most four: encode only when
        # the length alone cannot tell
        if len(text) > self._max_bytes:
            return True
        return len(text) * 4 > self._max_bytes and len(text.encode()) > self._max_bytes


class OpenFeeds:
    """How many feeds each client address and each user hold open in this process.

    In the embedded profile (``limit_loopback`` off) loopback clients are the developer's
    own and are not counted against the address cap, as for the rate limits.
    """

    def __init__(self, policy: HttpPolicy) -> None:
        self._policy = policy
        self._by_address: Counter[str] = Counter()
        self._by_user: Counter[UserId] = Counter()

    @contextlib.contextmanager
    def admit(self, address: str | None, user: UserId | None = None) -> Iterator[None]:
        """Count one feed for as long as the block runs; ``FeedRefused`` over a cap.

        The count goes down however the block ends: the client left, the server closed
        the feed, an error, a cancellation.
        """
        counted = address if address is not None and self._counts(address) else None
        if counted is not None and (
            self._by_address[counted] >= self._policy.ws_max_connections_per_address
        ):
            raise FeedRefused(FeedClosing(POLICY_VIOLATION, "too many feeds from this address"))
        if user is not None and self._by_user[user] >= self._policy.ws_max_connections_per_user:
            raise FeedRefused(FeedClosing(POLICY_VIOLATION, "too many feeds for this user"))
        _take(self._by_address, counted)
        _take(self._by_user, user)
        try:
            yield
        finally:
            _give_back(self._by_address, counted)
            _give_back(self._by_user, user)

    def _counts(self, address: str) -> bool:
        if self._policy.limit_loopback:
            return True
        try:
            return not ipaddress.ip_address(address).is_loopback
        except ValueError:
            return True


def _take(counts: Counter[_K], key: _K | None) -> None:
    if key is not None:
        counts[key] += 1


def _give_back(counts: Counter[_K], key: _K | None) -> None:
    if key is None:
        return
    counts[key] -= 1
    if counts[key] <= 0:
        del counts[key]  # no key per address that ever connected


class TokenDeadlines:
    """Tells each feed opened with a token when that token expired.

    One ticker serves every feed of the process: it wakes at the earliest deadline and at
    least once per ``tick_seconds``, and compares the platform's clock, so a clock moved
    by hand (tests) is noticed within a tick. It runs only while some feed is watched.
    """

    def __init__(self, clock: Clock, *, tick_seconds: float = 1.0) -> None:
        self._clock = clock
        self._tick = tick_seconds
        self._due: list[tuple[datetime, int]] = []  # a heap, with entries of closed feeds
        self._watched: dict[int, asyncio.Event] = {}
        self._keys = itertools.count()
        self._ticker: asyncio.Task[None] | None = None

    @contextlib.contextmanager
    def watch(self, expires_at: datetime) -> Iterator[asyncio.Event]:
        """An event set once the clock reaches ``expires_at``, while the block runs."""
        key, expired = next(self._keys), asyncio.Event()
        heapq.heappush(self._due, (expires_at, key))
        self._watched[key] = expired
        if self._ticker is None or self._ticker.done():
            self._ticker = asyncio.get_running_loop().create_task(self._run())
        try:
            yield expired
        finally:
            del self._watched[key]
            self._forget_closed()

    def _forget_closed(self) -> None:
        if not self._watched:
            self._due.clear()
            if self._ticker is not None:
                self._ticker.cancel()
                self._ticker = None
        elif len(self._due) > 2 * len(self._watched) + 16:
            # feeds that closed early leave their deadline behind: rebuild before they pile up
            self._due = [entry for entry in self._due if entry[1] in self._watched]
            heapq.heapify(self._due)

    async def _run(self) -> None:
        while self._due:
            now = self._clock.now()
            while self._due and self._due[0][0] <= now:
                _, key = heapq.heappop(self._due)
                expired = self._watched.get(key)
                if expired is not None:
                    expired.set()
            if not self._due:
                return
            until_next = (self._due[0][0] - now).total_seconds()
            await asyncio.sleep(min(self._tick, until_next))


class FeedLimits:
    """Everything that limits the feeds of one app, built from its ``HttpPolicy``."""

    def __init__(self, policy: HttpPolicy, clock: Clock) -> None:
        self._policy = policy
        self._clock = clock
        self.open_feeds = OpenFeeds(policy)
        self.deadlines = TokenDeadlines(clock)

    def meter(self) -> MessageMeter:
        """A meter for the messages of one new feed."""
        return MessageMeter(self._policy, self._clock)
