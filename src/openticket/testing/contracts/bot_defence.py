"""The ``BotDefence`` contract: scripted buyers are sent back or refused, paced buyers never.

The scenarios of issue 16 and reliability check 34, on a fake timeline (each signal
carries its moment): 1,000 joins from one address, by 1,000 accounts or by one; 1,000
accounts ordering 5 ms after their admission; and 1,000 paced buyers who join over ten
minutes from 300 shared addresses and order 3 to 30 seconds after admission, some
retrying after a refusal.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import datetime, timedelta
from uuid import UUID, uuid4

import attrs

from openticket.adapters.memory.clock import DEFAULT_START
from openticket.application.ports.bot_defence import (
    BotAction,
    BotDefence,
    Signal,
    SignalKind,
    Verdict,
)
from openticket.domain.shared import SessionId, UserId


@attrs.frozen
class Step:
    """One thing a buyer does on the timeline: a join or an order, maybe refused after."""

    signal: Signal
    refused: bool = False
    """The order was refused elsewhere (409) after the bot defence let it through."""


def _user() -> UserId:
    return UserId(uuid4())


def _seconds(value: float) -> timedelta:
    return timedelta(seconds=value)


def paced_buyers(
    session_id: SessionId,
    *,
    buyers: int = 1000,
    addresses: int = 300,
    seed: int = 16,
    start: datetime = DEFAULT_START,
) -> list[Step]:
    """The steps of ``buyers`` paced people, in time order (deterministic per ``seed``).

    Each buyer joins at a moment spread over ten minutes, from one of ``addresses``
    addresses (a household or office NAT holds a handful), with a device id of their
    own four times in five; one in seven joins again (a refresh) seconds later. Each is
    admitted after up to five minutes in the queue and orders 3 to 30 seconds later;
    one in five is refused (the seats were taken) one to three times and tries again
    2 to 10 seconds after each refusal. Their status polls never reach the bot defence.
    """
    rng = random.Random(seed)  # noqa: S311  # a repeatable timeline, not a secret
    steps: list[Step] = []
    for n in range(buyers):
        user = UserId(UUID(int=rng.getrandbits(128)))
        place = rng.randrange(addresses)
        address = f"198.51.{place // 250}.{place % 250}"
        device = f"device-{n}" if rng.random() < 0.8 else None

        def signal(
            kind: SignalKind,
            at: datetime,
            joined_at: datetime | None = None,
            admitted_at: datetime | None = None,
            *,
            user: UserId = user,
            address: str = address,
            device: str | None = device,
        ) -> Signal:
            return Signal(
                kind=kind,
                session_id=session_id,
                user_id=user,
                at=at,
                address=address,
                device_id=device,
                joined_at=joined_at,
                admitted_at=admitted_at,
            )

        joined = start + _seconds(rng.uniform(0, 600))
        steps.append(Step(signal(SignalKind.JOIN, joined)))
        if rng.random() < 1 / 7:
            steps.append(Step(signal(SignalKind.JOIN, joined + _seconds(rng.uniform(2, 20)))))
        admitted = joined + _seconds(rng.uniform(0, 300))
        ordered = admitted + _seconds(rng.uniform(3, 30))
        refusals = rng.randint(1, 3) if rng.random() < 0.2 else 0
        for _ in range(refusals):
            steps.append(Step(signal(SignalKind.ORDER, ordered, joined, admitted), refused=True))
            ordered += _seconds(rng.uniform(2, 10))
        steps.append(Step(signal(SignalKind.ORDER, ordered, joined, admitted)))
    steps.sort(key=lambda step: step.signal.at)
    return steps


async def play(defence: BotDefence, steps: list[Step]) -> list[Verdict]:
    """Assess every step in order (recording the refusals); the verdicts, in order."""
    verdicts = []
    for step in steps:
        verdicts.append(await defence.assess(step.signal))
        if step.refused:
            await defence.record_refusal(step.signal)
    return verdicts


class BotDefenceContract:
    """What every ``BotDefence`` adapter must do with its default settings.

    Subclass it once per adapter and define the async fixture ``bot_defence``: a fresh
    defence (or one over a store of the test's own).
    """

    scripted_allowance: int = 20
    """How many of a script's first requests from one address or account may pass."""

    script_pace: timedelta = timedelta(milliseconds=5)

    @staticmethod
    def _session() -> SessionId:
        return SessionId(uuid4())

    def _script(self, n: int) -> Iterator[datetime]:
        for i in range(n):
            yield DEFAULT_START + i * self.script_pace

    def _assert_scripted_joins_sent_back(self, verdicts: list[Verdict]) -> None:
        actions = [v.action for v in verdicts]
        assert set(actions) <= {BotAction.ALLOW, BotAction.SEND_BACK}, set(actions)
        allowed = actions.count(BotAction.ALLOW)
        assert 1 <= allowed <= self.scripted_allowance, allowed
        assert actions == [BotAction.ALLOW] * allowed + [BotAction.SEND_BACK] * (
            len(actions) - allowed
        )
        for verdict in verdicts[allowed:]:
            assert verdict.reasons, verdict
            assert verdict.score > 0.5, verdict

    async def test_a_thousand_joins_from_one_address_by_a_thousand_accounts_are_sent_back(
        self, bot_defence: BotDefence
    ) -> None:
        """All but the first few of a script's joins from one address go to the back."""
        session = self._session()
        verdicts = [
            await bot_defence.assess(
                Signal(
                    kind=SignalKind.JOIN,
                    session_id=session,
                    user_id=_user(),
                    at=at,
                    address="203.0.113.66",
                )
            )
            for at in self._script(1000)
        ]
        self._assert_scripted_joins_sent_back(verdicts)

    async def test_a_thousand_joins_by_one_account_are_sent_back(
        self, bot_defence: BotDefence
    ) -> None:
        """One account joining again and again: all but its first few joins go to the back."""
        session, user = self._session(), _user()
        verdicts = [
            await bot_defence.assess(
                Signal(
                    kind=SignalKind.JOIN,
                    session_id=session,
                    user_id=user,
                    at=at,
                    address="203.0.113.67",
                    device_id="scripted",
                )
            )
            for at in self._script(1000)
        ]
        self._assert_scripted_joins_sent_back(verdicts)

    async def test_orders_five_milliseconds_after_admission_are_refused(
        self, bot_defence: BotDefence
    ) -> None:
        """A botnet's 1,000 orders 5 ms after admission are all refused.

        Each account has an address of its own, so each join alone looked human.
        """
        session = self._session()
        for n in range(1000):
            user, address = _user(), f"192.0.{n // 250}.{n % 250}"
            joined = DEFAULT_START + _seconds(n)
            join = Signal(
                kind=SignalKind.JOIN, session_id=session, user_id=user, at=joined, address=address
            )
            assert (await bot_defence.assess(join)).action is BotAction.ALLOW
            admitted = joined + _seconds(1)
            order = attrs.evolve(
                join,
                kind=SignalKind.ORDER,
                at=admitted + self.script_pace,
                joined_at=joined,
                admitted_at=admitted,
            )
            verdict = await bot_defence.assess(order)
            assert verdict.action is BotAction.REFUSE, verdict
            assert verdict.score > 0.5, verdict

    async def test_a_thousand_paced_buyers_are_never_sent_back_or_refused(
        self, bot_defence: BotDefence
    ) -> None:
        """Zero false positives among 1,000 paced buyers sharing 300 addresses."""
        steps = paced_buyers(self._session())
        verdicts = await play(bot_defence, steps)
        suspected = [
            (step.signal, verdict)
            for step, verdict in zip(steps, verdicts, strict=True)
            if verdict.suspected
        ]
        assert suspected == [], f"{len(suspected)} false positives, first: {suspected[:3]}"

    async def test_a_join_is_never_refused_and_an_order_never_sent_back(
        self, bot_defence: BotDefence
    ) -> None:
        """Joins are sent back, orders refused: each kind has its own answer to a suspect."""
        session, user = self._session(), _user()
        for at in self._script(200):
            for kind in SignalKind:
                signal = Signal(
                    kind=kind, session_id=session, user_id=user, at=at, address="203.0.113.68"
                )
                verdict = await bot_defence.assess(signal)
                wrong = BotAction.REFUSE if kind is SignalKind.JOIN else BotAction.SEND_BACK
                assert verdict.action is not wrong, (kind, verdict)

    async def test_an_account_refused_again_and_again_is_suspect(
        self, bot_defence: BotDefence
    ) -> None:
        """A script hammering an order that keeps being refused (409) is itself refused."""
        session, user = self._session(), _user()
        joined = DEFAULT_START
        admitted = joined + _seconds(60)
        verdicts = []
        for n in range(100):
            order = Signal(
                kind=SignalKind.ORDER,
                session_id=session,
                user_id=user,
                at=admitted + _seconds(5 + n * 4),  # every 4 s: under any velocity limit
                address="203.0.113.69",
                joined_at=joined,
                admitted_at=admitted,
            )
            verdicts.append(await bot_defence.assess(order))
            await bot_defence.record_refusal(order)
        assert verdicts[0].action is BotAction.ALLOW
        assert verdicts[-1].action is BotAction.REFUSE, verdicts[-1]
