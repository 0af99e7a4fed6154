"""Admission tokens: what a buyer let in from a waiting room shows when ordering.

A token names one user and one session and runs out at a fixed moment (the end of the
admission). It is signed, so no process needs to remember it: any API process checks
it with the shared key. Whether it may still be used (not spent) is the waiting room's
business (``WaitingRoomStore.is_admitted``), not the token's.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol, runtime_checkable

import attrs

from openticket.domain.shared import SessionId, UserId


@attrs.frozen
class Admission:
    """What an admission token says: who may order in which session, until when."""

    user_id: UserId
    session_id: SessionId
    until: datetime


@runtime_checkable
class AdmissionTokens(Protocol):
    """Signs and reads admission tokens.

    Rules: ``read(issue(a)) == a`` (times to the whole second, rounded down) until
    ``a.until``; a token that was altered, signed with another key, made for another
    purpose (an access token) or run out reads as ``None``.
    """

    def issue(self, admission: Admission) -> str:
        """A signed token for ``admission``."""
        ...

    def read(self, token: str) -> Admission | None:
        """The admission a token stands for, or ``None`` if it is not a valid one now."""
        ...
