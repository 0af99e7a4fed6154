"""Bot defence: how much a queue join or an order looks scripted, judged from behaviour.

The gate asks the ``BotDefence`` about every join of a session's waiting room and
every order placed, with a :class:`Signal` describing the request (who, from which
address and device, when, and for an order when its buyer joined and was admitted).
The answer is a :class:`Verdict`: let it through, send the joiner to the back of the
queue, or refuse the order (403 ``bot_suspected``), with a score and the reasons, as
stable machine words, that an operator reads in the log.

A refusal decided elsewhere (409 seat taken, 429 too many requests) is told with
:meth:`BotDefence.record_refusal`: many of them in a row are one more sign of a script.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Protocol, runtime_checkable

import attrs

from openticket.domain.shared import SessionId, UserId


class SignalKind(StrEnum):
    """What the buyer asked for: to join a waiting room, or to place an order."""

    JOIN = "join"
    ORDER = "order"


class BotAction(StrEnum):
    """What the gate does with a request.

    ``ALLOW``: as usual. ``SEND_BACK``: the join is taken, at the back of the queue (the
    place a joiner arriving now would get, or behind everyone already waiting).
    ``REFUSE``: the order is answered 403 ``bot_suspected`` and holds nothing.
    """

    ALLOW = "allow"
    SEND_BACK = "send_back"
    REFUSE = "refuse"


class BotReason(StrEnum):
    """Why a request looks scripted: the stable words of :attr:`Verdict.reasons`."""

    ACCOUNT_VELOCITY = "account_velocity"
    """Too many joins and orders by one account in a short time."""
    ADDRESS_VELOCITY = "address_velocity"
    """Too many joins and orders from one client address in a short time."""
    DEVICE_VELOCITY = "device_velocity"
    """Too many joins and orders from one device id in a short time."""
    ACCOUNTS_PER_ADDRESS = "accounts_per_address"
    """More accounts behind one client address than a household or office has."""
    INHUMAN_TIMING = "inhuman_timing"
    """An order sooner after its buyer joined or was admitted than a person can click."""
    REPEATED_REFUSALS = "repeated_refusals"
    """The account was refused (409, 429) again and again and keeps trying."""


@attrs.frozen(kw_only=True)
class Signal:
    """One request the gate asks about.

    ``address`` is the client's address as the gate trusts it (``X-Forwarded-For`` only
    through a trusted proxy), ``None`` if unknown; ``device_id`` the client's own device
    header, ``None`` if it sent none (a client can forge it: it only ever adds
    suspicion). ``at`` is the request's moment, timezone-aware, from the gate's clock.
    For an order, ``joined_at`` and ``admitted_at`` are when its buyer joined the
    session's waiting room and was admitted (from the admission), ``None`` for a
    session without a queue.
    """

    kind: SignalKind
    session_id: SessionId
    user_id: UserId
    at: datetime
    address: str | None = None
    device_id: str | None = None
    joined_at: datetime | None = None
    admitted_at: datetime | None = None

    def __attrs_post_init__(self) -> None:
        for name in ("at", "joined_at", "admitted_at"):
            moment = getattr(self, name)
            if moment is not None and moment.tzinfo is None:
                raise ValueError(f"a signal's {name} must be timezone-aware, got {moment}")


def _a_share(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{attribute.name} must be between 0 and 1, got {value}")


@attrs.frozen
class Verdict:
    """The bot defence's answer about one :class:`Signal`.

    ``score`` in [0, 1] says how scripted the request looks: above 0.5 exactly when
    ``reasons`` is not empty. ``action`` is ``ALLOW`` when there is no reason, else
    ``SEND_BACK`` for a join and ``REFUSE`` for an order.
    """

    action: BotAction
    score: float = attrs.field(default=0.0, validator=_a_share)
    reasons: tuple[str, ...] = ()

    @property
    def suspected(self) -> bool:
        """Whether the request looked scripted (anything but ``ALLOW``)."""
        return self.action is not BotAction.ALLOW


ALLOWED = Verdict(BotAction.ALLOW)
"""A verdict with nothing to hold against the request."""


@runtime_checkable
class BotDefence(Protocol):
    """Scores queue joins and orders from behaviour, and says what to do with each.

    Rules every adapter keeps:

    - ``assess`` records the signal, whatever the verdict, then judges it with
      everything recorded before, across every API process sharing the adapter's store:
      a script that keeps trying while sent back stays suspect.
    - A join is answered ``ALLOW`` or ``SEND_BACK``, an order ``ALLOW`` or ``REFUSE``.
    - Deterministic given the clock: the same signals with the same moments, in the
      same order, get the same verdicts (no randomness, no reading of another clock).
    - Never refuses a paced human: a buyer who joins once, orders seconds after being
      admitted, retries a few times after a 409, and shares an address with a
      household or an office, is allowed with the default settings.

    Both methods raise ``AdapterUnavailable`` when the backing store cannot be reached.
    The caller should then let the request through and log it: a gate that refuses
    every buyer while its store blinks does more harm than a bot.
    """

    async def assess(self, signal: Signal) -> Verdict:
        """Record ``signal`` and judge it."""
        ...

    async def record_refusal(self, signal: Signal) -> None:
        """Record that ``signal``'s request was refused elsewhere (409, 429)."""
        ...
