"""The heuristic ``BotDefence``: behaviour counted by a ``SignalCounter``, judged by a policy.

Each assessment is one call of the counter (one Redis round trip on the production
profile): the request is counted per account, per address and per device, its
account is added to its address's accounts, and its account's refusals are read.
``BotPolicy`` turns the counts and the order's timing into a verdict. Each suspect is
logged (``bot_suspected``) with its reasons, user, address and score.
"""

from __future__ import annotations

from typing import Any

import structlog

from openticket.application.bot_policy import BotPolicy
from openticket.application.ports.bot_defence import Signal, Verdict
from openticket.application.ports.signal_counter import SignalCounter

_log = structlog.get_logger("openticket.gate")


class HeuristicBotDefence:
    """A ``BotDefence`` over a ``SignalCounter`` (memory for one process, Redis for many).

    Deterministic given the signals' moments: the counter counts at ``signal.at``.
    ``AdapterUnavailable`` from the counter goes to the caller.
    """

    def __init__(
        self, counter: SignalCounter, policy: BotPolicy | None = None, *, logger: Any = None
    ) -> None:
        self._counter = counter
        self._policy = policy if policy is not None else BotPolicy()
        self._log = logger if logger is not None else _log

    @property
    def policy(self) -> BotPolicy:
        """The thresholds in use."""
        return self._policy

    async def assess(self, signal: Signal) -> Verdict:
        """Record ``signal`` and judge it; log it when it looks scripted."""
        tallies = self._policy.tallies(signal)
        counts = await self._counter.count([tally for _, tally in tallies], now=signal.at)
        verdict = self._policy.judge(
            signal, [(reason, n) for (reason, _), n in zip(tallies, counts, strict=True)]
        )
        if verdict.suspected:
            self._log.warning(
                "bot_suspected",
                kind=str(signal.kind),
                action=str(verdict.action),
                reasons=list(verdict.reasons),
                score=round(verdict.score, 3),
                user_id=str(signal.user_id),
                session_id=str(signal.session_id),
                address=signal.address,
            )
        return verdict

    async def record_refusal(self, signal: Signal) -> None:
        """Record that ``signal``'s request was refused elsewhere (409, 429)."""
        await self._counter.count([self._policy.refusal_tally(signal)], now=signal.at)
