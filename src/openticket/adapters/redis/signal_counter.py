"""The signal counter in Redis: one sorted set per key, every tally of a call in one pipeline.

Key ``{prefix}signals:{key}`` holds the key's entries scored by their moment in
milliseconds: one unique member per counted request, or the distinct members
themselves (an account behind an address). Each tally is one run of a small Lua
script on its own key, so each is atomic and the adapter works on a cluster too; the
tallies of one call leave together in one pipeline, one round trip (on a cluster, one
per node). A key expires one window after its newest entry was added.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from redis.asyncio.cluster import RedisCluster
from redis.exceptions import NoScriptError

from openticket.adapters.millis import MILLISECOND, millis
from openticket.adapters.redis.connection import (
    REDIS_FAILURES,
    RedisClient,
    relearn_slots,
    unavailable,
)
from openticket.application.ports.signal_counter import Tally

_TALLY = """
-- KEYS[1]: the key's sorted set (member -> moment in ms).
-- ARGV: now (ms), window (ms), add (1/0), member, cap.
-- Returns the count of entries inside the window, after adding this call's.
local key = KEYS[1]
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
if ARGV[3] == '1' then
    -- a member seen again keeps its latest moment, never an earlier one
    redis.call('ZADD', key, 'GT', now, ARGV[4])
    -- only the newest cap entries are kept
    redis.call('ZREMRANGEBYRANK', key, 0, -tonumber(ARGV[5]) - 1)
    redis.call('PEXPIRE', key, window)
end
return redis.call('ZCARD', key)
"""


class RedisSignalCounter:
    """A ``SignalCounter`` shared by every process that uses the same Redis and ``prefix``.

    "Now" is the moment each call is given; Redis expires a key one window after its
    last addition by its own clock, which only frees memory (the count is decided by
    the moments). A refused or failed call raises ``AdapterUnavailable``; a pipeline
    whose answer was lost may have counted.
    """

    def __init__(self, client: RedisClient, *, prefix: str = "openticket:") -> None:
        self._client = client
        self._prefix = f"{prefix}signals:"
        self._script = client.register_script(_TALLY)
        self._instance = secrets.token_hex(6)
        """Tells this counter's entries apart from other processes' in the same millisecond."""
        self._sequence = itertools.count()

    async def count(self, tallies: Sequence[Tally], *, now: datetime) -> tuple[int, ...]:
        """Take each tally at ``now``, in one step, and answer their counts in order."""
        if not tallies:
            return ()
        at = millis(now)
        calls = [self._arguments(tally, at) for tally in tallies]
        try:
            answers = await self._pipeline(calls)
            missing = [i for i, answer in enumerate(answers) if isinstance(answer, NoScriptError)]
            if missing:  # a restarted or flushed server: load the script, send those again
                await self._client.script_load(self._script.script)
                for i, answer in zip(
                    missing, await self._pipeline([calls[i] for i in missing]), strict=True
                ):
                    answers[i] = answer
        except REDIS_FAILURES as e:
            raise unavailable("the Redis signal counter failed", e) from e
        for answer in answers:
            if isinstance(answer, Exception):
                await relearn_slots(self._client, answer)
                raise unavailable("the Redis signal counter failed", answer) from answer
        return tuple(int(answer) for answer in answers)

    def _arguments(self, tally: Tally, now: int) -> tuple[str, list[Any]]:
        member = tally.member
        if member is None:
            member = f"{now}-{self._instance}-{next(self._sequence)}"
        window = tally.window // MILLISECOND
        return self._prefix + tally.key, [now, window, int(tally.add), member, tally.cap]

    async def _pipeline(self, calls: list[tuple[str, list[Any]]]) -> list[Any]:
        """Every call's answer (or error), sent in one pipeline.

        A cluster's pipeline refuses scripts: there each call goes on its own, all at
        once (each key may live on another node anyway).
        """
        if isinstance(self._client, RedisCluster):
            return list(
                await asyncio.gather(
                    *(self._client.evalsha(self._script.sha, 1, key, *args) for key, args in calls),
                    return_exceptions=True,
                )
            )
        pipe = self._client.pipeline(transaction=False)
        for key, args in calls:
            pipe.evalsha(self._script.sha, 1, key, *args)
        try:
            return list(await pipe.execute(raise_on_error=False))
        except REDIS_FAILURES as e:
            await relearn_slots(self._client, e)
            raise
