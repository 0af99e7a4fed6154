"""The challenge verifier: whether a token from a human-check widget (a CAPTCHA) is genuine.

A session may require a challenge before a buyer joins its waiting room: the page
shows the widget (Cloudflare Turnstile), the browser sends the token it got with the
join, and the gate asks the verifier whether the token is real, fresh and unused.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol, runtime_checkable

import attrs


@attrs.frozen(kw_only=True)
class ChallengeResult:
    """The verifier's answer about one token.

    ``ok`` is whether the token proves a solved challenge; when not, ``error_codes``
    says why in the provider's words (Turnstile's: ``missing-input-response``,
    ``invalid-input-response``, ``timeout-or-duplicate``, ``invalid-input-secret``…).
    ``hostname`` is the site the challenge was solved on, ``action`` and ``cdata`` what
    the page's widget was given, ``challenge_ts`` when it was solved; each ``None``
    when the provider did not say.
    """

    ok: bool
    error_codes: tuple[str, ...] = ()
    hostname: str | None = None
    action: str | None = None
    cdata: str | None = None
    challenge_ts: datetime | None = None


@runtime_checkable
class ChallengeVerifier(Protocol):
    """Checks challenge tokens with their provider.

    Rules every adapter keeps:

    - A token proves one challenge once: verified again, it fails (Turnstile:
      ``timeout-or-duplicate``) unless the call repeats the first one's
      ``idempotency_key``, which answers the first result again (for a retry whose
      answer was lost).
    - A token that cannot be genuine (empty, too long) fails without asking the
      provider.
    - ``address`` is the buyer's address as the gate trusts it; it is passed on so
      that the provider can compare it with the solver's.

    Raises ``AdapterUnavailable`` when the provider cannot be reached or answers
    nothing usable (a time-out, a 5xx, its own internal error). The caller decides: the
    gate answers 503 and the client may retry with the same token.
    """

    async def verify(
        self, token: str, *, address: str | None, idempotency_key: str | None = None
    ) -> ChallengeResult:
        """Ask whether ``token`` proves a solved challenge."""
        ...
