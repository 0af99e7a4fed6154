"""Cloudflare Turnstile behind the ``ChallengeVerifier`` port (the siteverify API).

::

    POST https://challenges.cloudflare.com/turnstile/v0/siteverify
         (form) secret, response (the token), remoteip?, idempotency_key?
    200  {"success": bool, "error-codes": [...], "challenge_ts", "hostname", "action", "cdata"}

A token is at most 2048 characters and lives 300 seconds; siteverify accepts it once
(``timeout-or-duplicate`` afterwards, or once it is too old) unless the call repeats
the first one's ``idempotency_key``, which answers the first result again. Tokens that
cannot be genuine fail here without a call: an empty one with
``missing-input-response``, a longer one with ``invalid-input-response``.

A time-out, a refused connection, a 5xx, an answer that is not siteverify's JSON, or
``internal-error`` raise ``AdapterUnavailable``; retrying with the same idempotency key
is safe. ``invalid-input-secret`` (a wrong secret: every buyer would fail) is logged as
an error.

Cloudflare's test secrets work with any token: ``1x0000000000000000000000000000000AA``
always passes, ``2x0000000000000000000000000000000AA`` always fails,
``3x0000000000000000000000000000000AA`` answers ``timeout-or-duplicate``.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any, Final

import httpx
import structlog

from openticket.application.ports.challenge import ChallengeResult
from openticket.application.ports.errors import AdapterUnavailable

SITEVERIFY_URL: Final = "https://challenges.cloudflare.com/turnstile/v0/siteverify"
MAX_TOKEN_LENGTH: Final = 2048
TEST_SECRET_PASSES: Final = "1x0000000000000000000000000000000AA"  # noqa: S105  # published test key
TEST_SECRET_FAILS: Final = "2x0000000000000000000000000000000AA"  # noqa: S105  # published test key
TEST_SECRET_SPENT: Final = "3x0000000000000000000000000000000AA"  # noqa: S105  # published test key

_SECRET_REFUSED: Final = frozenset({"missing-input-secret", "invalid-input-secret"})

_log = structlog.get_logger("openticket.gate")


class TurnstileVerifier:
    """A ``ChallengeVerifier`` asking Cloudflare Turnstile's siteverify; see the module.

    ``client`` is an HTTP client to share (left open by :meth:`stop`); without one the
    verifier makes its own with ``timeout`` seconds per call. With
    ``expected_hostnames`` or ``expected_action``, a token solved on another site or
    for another widget fails (``hostname-mismatch``, ``action-mismatch``): a token
    proves a challenge on any page that shows our site key.
    """

    def __init__(
        self,
        secret: str,
        *,
        url: str = SITEVERIFY_URL,
        client: httpx.AsyncClient | None = None,
        timeout: float = 10.0,
        expected_hostnames: Collection[str] | None = None,
        expected_action: str | None = None,
    ) -> None:
        if not secret:
            raise ValueError("Turnstile needs the widget's secret key")
        self._secret = secret
        self._url = url
        self._own_client = client is None
        self._http = client if client is not None else httpx.AsyncClient(timeout=timeout)
        self._timeout = timeout
        self._hostnames = frozenset(expected_hostnames) if expected_hostnames else None
        self._action = expected_action

    async def stop(self) -> None:
        """Close the HTTP connections (of a client the verifier made itself)."""
        if self._own_client:
            await self._http.aclose()

    async def verify(
        self, token: str, *, address: str | None, idempotency_key: str | None = None
    ) -> ChallengeResult:
        """Ask siteverify whether ``token`` proves a solved challenge."""
        if not token:
            return ChallengeResult(ok=False, error_codes=("missing-input-response",))
        if len(token) > MAX_TOKEN_LENGTH:
            return ChallengeResult(ok=False, error_codes=("invalid-input-response",))
        form = {"secret": self._secret, "response": token}
        if address:
            form["remoteip"] = address
        if idempotency_key:
            form["idempotency_key"] = idempotency_key
        try:
            response = await self._http.post(self._url, data=form, timeout=self._timeout)
        except httpx.HTTPError as e:
            raise AdapterUnavailable(f"Turnstile's siteverify did not answer: {e!r}") from e
        if response.status_code >= 500:
            raise AdapterUnavailable(f"Turnstile's siteverify answered {response.status_code}")
        result = _result(response)
        if "internal-error" in result.error_codes:
            raise AdapterUnavailable("Turnstile's siteverify had an internal error")
        if _SECRET_REFUSED & set(result.error_codes):
            _log.error("turnstile_secret_refused", error_codes=list(result.error_codes))
        return self._expected(result)

    def _expected(self, result: ChallengeResult) -> ChallengeResult:
        """``result``, failed if the challenge was solved on another site or widget."""
        if not result.ok:
            return result
        if self._hostnames is not None and result.hostname not in self._hostnames:
            return ChallengeResult(
                ok=False,
                error_codes=("hostname-mismatch",),
                hostname=result.hostname,
                action=result.action,
                cdata=result.cdata,
                challenge_ts=result.challenge_ts,
            )
        if self._action is not None and result.action != self._action:
            return ChallengeResult(
                ok=False,
                error_codes=("action-mismatch",),
                hostname=result.hostname,
                action=result.action,
                cdata=result.cdata,
                challenge_ts=result.challenge_ts,
            )
        return result


def _result(response: httpx.Response) -> ChallengeResult:
    """The JSON answer of siteverify as a result; anything else means it could not verify."""
    try:
        answer: Any = response.json()
    except ValueError as e:
        raise AdapterUnavailable(
            f"Turnstile's siteverify answered {response.status_code} without JSON"
        ) from e
    if not isinstance(answer, dict) or not isinstance(answer.get("success"), bool):
        raise AdapterUnavailable(
            f"Turnstile's siteverify answered {response.status_code}: {answer!r:.200}"
        )
    codes = answer.get("error-codes")
    return ChallengeResult(
        ok=answer["success"],
        error_codes=tuple(c for c in codes if isinstance(c, str))
        if isinstance(codes, list)
        else (),
        hostname=_text(answer.get("hostname")),
        action=_text(answer.get("action")),
        cdata=_text(answer.get("cdata")),
        challenge_ts=_moment(answer.get("challenge_ts")),
    )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _moment(value: object) -> datetime | None:
    """An ISO 8601 moment (``2026-12-02T10:00:00.123Z``), in UTC; ``None`` if not one."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
