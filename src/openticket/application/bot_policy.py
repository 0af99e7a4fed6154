"""The heuristic bot policy: which counts to take for a request, and the verdict they earn.

Pure: :meth:`BotPolicy.tallies` says what to count for a :class:`Signal` (a list of
:class:`Tally` for a ``SignalCounter``), and :meth:`BotPolicy.judge` turns the counts
into a :class:`Verdict`. The adapter that asks the counter and logs the suspects is
``openticket.adapters.bot_defence.HeuristicBotDefence``.

The signals, each with its reason word and its default threshold:

==========================  ====================================================  ===========
reason                      suspect when                                          default
==========================  ====================================================  ===========
``account_velocity``        joins + orders of one account in a window > limit     20 / 1 min
``address_velocity``        joins + orders from one address in a window > limit   60 / 1 min
``device_velocity``         joins + orders from one device id in a window > limit 20 / 1 min
``accounts_per_address``    distinct accounts behind one address > limit          20 / 10 min
``repeated_refusals``       refusals (409, 429) of one account > limit            20 / 5 min
``inhuman_timing``          an order sooner after admission (or join) than        1.5 s
                            ``minimum_think_time``
==========================  ====================================================  ===========

Why these numbers: a paced buyer joins once (a refresh or two joins again), orders
seconds after being admitted, and may retry after a seat was taken: a handful of
requests a minute, a few dozen refusals at the very worst in a contested sale. A
household or an office shares one address (a NAT) among a handful of buyers, a few
requests each. Each limit leaves several times that, so that the 1,000 paced buyers of
the scenario test (spread over 300 addresses) show none. A person needs well over a
second to see the page that admits them, pick seats and press the button; a script
orders within milliseconds. Behind a carrier-grade NAT or a large campus, where
hundreds of buyers share one address, raise ``requests_per_address`` and
``accounts_per_address``.

The score is that of the worst signal: a count's is ``count / (2 × limit)``, the
timing's ``minimum / (2 × elapsed)``, capped at 1. It is above 0.5 exactly when a
signal is past its threshold: 0.5 at the threshold, 1 at twice it (or half the time).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import timedelta

import attrs

from openticket.application.ports.bot_defence import (
    BotAction,
    BotReason,
    Signal,
    SignalKind,
    Verdict,
)
from openticket.application.ports.signal_counter import Tally

_MILLISECOND = timedelta(milliseconds=1)


def _positive(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    if value < 1:
        raise ValueError(f"{attribute.name} must be at least 1, got {value}")


def _at_least_a_millisecond(
    _: object, attribute: attrs.Attribute[timedelta], value: timedelta
) -> None:
    if value < _MILLISECOND:
        raise ValueError(f"{attribute.name} must be at least 1 ms, got {value}")


def _not_negative(_: object, attribute: attrs.Attribute[timedelta], value: timedelta) -> None:
    if value < timedelta(0):
        raise ValueError(f"{attribute.name} must not be negative, got {value}")


@attrs.frozen
class Threshold:
    """At most ``limit`` in any ``window`` is human; one more is suspect."""

    limit: int = attrs.field(validator=_positive)
    window: timedelta = attrs.field(validator=_at_least_a_millisecond)


@attrs.frozen(kw_only=True)
class BotPolicy:
    """The thresholds of the heuristic bot defence (the module docstring explains them)."""

    requests_per_account: Threshold = Threshold(20, timedelta(minutes=1))
    requests_per_address: Threshold = Threshold(60, timedelta(minutes=1))
    requests_per_device: Threshold = Threshold(20, timedelta(minutes=1))
    accounts_per_address: Threshold = Threshold(20, timedelta(minutes=10))
    refusals_per_account: Threshold = Threshold(20, timedelta(minutes=5))
    minimum_think_time: timedelta = attrs.field(
        default=timedelta(seconds=1.5), validator=_not_negative
    )
    """The least time a person takes from being admitted (or joining) to ordering."""

    def tallies(self, signal: Signal) -> tuple[tuple[BotReason, Tally], ...]:
        """What to count for ``signal``: each tally with the reason it stands for.

        Every signal adds one request to its account (and address and device, when
        known), its account to its address's distinct accounts, and reads its
        account's refusals. Each count is capped at twice its limit, where its score
        reaches 1.
        """
        user = str(signal.user_id)
        counts = [
            (BotReason.ACCOUNT_VELOCITY, _request(f"account:{user}", self.requests_per_account)),
            (
                BotReason.REPEATED_REFUSALS,
                Tally(
                    key=refusals_key(signal),
                    window=self.refusals_per_account.window,
                    add=False,
                    cap=2 * self.refusals_per_account.limit,
                ),
            ),
        ]
        if signal.address is not None:
            address = signal.address
            counts.append(
                (
                    BotReason.ADDRESS_VELOCITY,
                    _request(f"address:{address}", self.requests_per_address),
                )
            )
            counts.append(
                (
                    BotReason.ACCOUNTS_PER_ADDRESS,
                    Tally(
                        key=f"bot:address-accounts:{address}",
                        window=self.accounts_per_address.window,
                        member=user,
                        cap=2 * self.accounts_per_address.limit,
                    ),
                )
            )
        if signal.device_id is not None:
            device = _device_key(signal.device_id)
            counts.append((BotReason.DEVICE_VELOCITY, _request(device, self.requests_per_device)))
        return tuple(counts)

    def refusal_tally(self, signal: Signal) -> Tally:
        """What to count when ``signal``'s request was refused elsewhere."""
        return Tally(
            key=refusals_key(signal),
            window=self.refusals_per_account.window,
            cap=2 * self.refusals_per_account.limit,
        )

    def judge(self, signal: Signal, counts: Sequence[tuple[BotReason, int]]) -> Verdict:
        """The verdict on ``signal`` given the counts of its :meth:`tallies`, in order."""
        thresholds = {
            BotReason.ACCOUNT_VELOCITY: self.requests_per_account,
            BotReason.ADDRESS_VELOCITY: self.requests_per_address,
            BotReason.DEVICE_VELOCITY: self.requests_per_device,
            BotReason.ACCOUNTS_PER_ADDRESS: self.accounts_per_address,
            BotReason.REPEATED_REFUSALS: self.refusals_per_account,
        }
        reasons: list[str] = []
        score = 0.0
        for reason, count in counts:
            limit = thresholds[reason].limit
            score = max(score, min(1.0, count / (2 * limit)))
            if count > limit:
                reasons.append(reason)
        timing = self.timing_score(signal)
        if timing is not None:
            score = max(score, timing)
            if timing > 0.5:
                reasons.append(BotReason.INHUMAN_TIMING)
        if not reasons:
            return Verdict(BotAction.ALLOW, score)
        action = BotAction.SEND_BACK if signal.kind is SignalKind.JOIN else BotAction.REFUSE
        return Verdict(action, score, tuple(sorted(reasons)))

    def timing_score(self, signal: Signal) -> float | None:
        """How inhuman an order's timing is (``None`` for a join or an order with no queue).

        Measured from the buyer's admission, or from the join when the admission is not
        known: ``minimum / (2 × elapsed)``, capped at 1 (1 as well for an order at or
        before that moment).
        """
        if signal.kind is not SignalKind.ORDER:
            return None
        since = [m for m in (signal.joined_at, signal.admitted_at) if m is not None]
        if not since or self.minimum_think_time <= timedelta(0):
            return None
        elapsed = signal.at - max(since)
        if elapsed <= timedelta(0):
            return 1.0
        return min(1.0, self.minimum_think_time / (2 * elapsed))


def refusals_key(signal: Signal) -> str:
    """The key of ``signal``'s account's refusals."""
    return f"bot:refusals:{signal.user_id}"


def _request(name: str, threshold: Threshold) -> Tally:
    return Tally(key=f"bot:{name}", window=threshold.window, cap=2 * threshold.limit)


def _device_key(device_id: str) -> str:
    """A device's key: its id hashed, short and plain whatever the client's header held."""
    raw = device_id.encode("utf-8", "surrogatepass")
    digest = hashlib.blake2b(raw, digest_size=12).hexdigest()
    return f"device:{digest}"
