"""Rate limits on the API: per client address and per signed-in user, before any work.

Every ``/api/`` request counts against its address's limit and, when it carries a valid
bearer token, against its user's. Over either limit the answer is ``429`` problem+json
``rate_limited`` with ``Retry-After`` (whole seconds), before the body is read or the
route runs. Payment webhooks are not limited: providers retry and must get through.
With Redis the windows are shared by every API process, so the limit is exact across
them. A limiter that cannot be reached lets requests through (logged): the limits
protect the API, they must not take it down.
"""

from __future__ import annotations

import math
from typing import Any

import attrs
import structlog
from litestar.enums import ScopeType
from litestar.exceptions import TooManyRequestsException
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send

from openticket.application.identity.service import IdentityService
from openticket.application.ports.errors import AdapterUnavailable
from openticket.application.ports.identity import InvalidToken
from openticket.application.ports.rate_limit import RateDecision, RateLimit, RateLimiter

_EXEMPT_PREFIXES = ("/api/webhooks/",)
_log = structlog.get_logger("openticket.http")


@attrs.frozen
class RateLimits:
    """The limiter and the limits it enforces (``None``: that kind is not limited)."""

    limiter: RateLimiter
    per_user: RateLimit | None
    per_ip: RateLimit | None

    @property
    def active(self) -> bool:
        """Whether any limit applies."""
        return self.per_user is not None or self.per_ip is not None


def _bearer(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
    return None


def _refuse(decision: RateDecision, what: str) -> TooManyRequestsException:
    wait = max(1, math.ceil(decision.retry_after))
    return TooManyRequestsException(
        detail=f"too many requests from this {what}; try again in {wait} s",
        headers={"Retry-After": str(wait)},
    )


class RateLimitMiddleware(ASGIMiddleware):
    """Counts each API request against its address and its user; refuses with 429."""

    scopes = (ScopeType.HTTP,)

    def __init__(self, limits: RateLimits, identity: IdentityService) -> None:
        self._limits = limits
        self._identity = identity

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        """Check the limits, then pass the request on."""
        path: str = scope.get("path", "")
        if path.startswith("/api/") and not path.startswith(_EXEMPT_PREFIXES):
            await self._check(scope)
        await next_app(scope, receive, send)

    async def _check(self, scope: Scope) -> None:
        try:
            await self._count(scope)
        except AdapterUnavailable as e:
            # fail open: a limiter that cannot count must not take the API down with it
            _log.warning("rate_limiter_unavailable", error=str(e))

    async def _count(self, scope: Scope) -> None:
        limits = self._limits
        if limits.per_ip is not None:
            client: Any = scope.get("client")
            address = client[0] if client else "unknown"
            decision = await limits.limiter.hit(f"ip:{address}", limits.per_ip)
            if not decision.allowed:
                raise _refuse(decision, "address")
        if limits.per_user is not None:
            token = _bearer(scope)
            if token is None:
                return
            try:
                requester = self._identity.authenticate(token)
            except InvalidToken:
                return  # the route's guard answers 401
            decision = await limits.limiter.hit(f"user:{requester.user_id}", limits.per_user)
            if not decision.allowed:
                raise _refuse(decision, "user")
