"""Rate limits on the API: per client address and per signed-in user, before any work.

Every ``/api/`` request counts against its address's limit and, when it carries a valid
bearer token, against its user's. Over either limit the answer is ``429`` problem+json
``rate_limited`` with ``Retry-After`` (whole seconds), before the body is read or the
route runs. Payment webhooks are not limited: providers retry and must get through.
With Redis the windows are shared by every API process, so the limit is exact across
them. A limiter that cannot be reached lets requests through (logged): the limits
protect the API, they must not take it down.

The address is the client's as ``ForwardedClientMiddleware`` decided it (the peer, or
the client a trusted proxy forwarded). In the embedded profile loopback clients are
never limited (``HttpPolicy.limit_loopback``): they are the developer's own.

Every limited answer, the ``429`` included, tells the client its limits in the IETF
fields of draft-ietf-httpapi-ratelimit-headers-11: ``RateLimit-Policy`` names each
quota (``"ip";q=1200;w=60, "user";q=300;w=60``) and ``RateLimit`` what is left of the
ones this request counted against (``"ip";r=1150;t=42``): ``r`` requests, and ``t``
seconds until the oldest request counted leaves the sliding window.
"""

from __future__ import annotations

import math
from typing import Any

import attrs
import structlog
from litestar.enums import ScopeType
from litestar.exceptions import TooManyRequestsException
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from openticket.application.identity.service import IdentityService
from openticket.application.ports.errors import AdapterUnavailable
from openticket.application.ports.identity import InvalidToken
from openticket.application.ports.rate_limit import RateDecision, RateLimit, RateLimiter
from openticket.entrypoints.http.proxies import is_loopback

_EXEMPT_PREFIXES = ("/api/webhooks/",)
RATE_LIMIT_HEADERS = ("RateLimit", "RateLimit-Policy", "Retry-After")
"""The fields a client reads its limits from (exposed to browser pages by CORS)."""
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

    def policy_field(self) -> str:
        """The ``RateLimit-Policy`` value: every quota, named as ``RateLimit`` names it."""
        quotas = (("ip", self.per_ip), ("user", self.per_user))
        return ", ".join(
            f'"{name}";q={limit.limit};w={_whole_seconds(limit.window.total_seconds())}'
            for name, limit in quotas
            if limit is not None
        )


def _whole_seconds(seconds: float) -> int:
    """At least one second: the fields carry whole, non-zero seconds."""
    return max(1, math.ceil(seconds))


def _service_limits(counted: list[tuple[str, RateDecision]]) -> str:
    """The ``RateLimit`` value for the quotas a request counted against."""
    return ", ".join(
        f'"{name}";r={decision.remaining};t={max(0, math.ceil(decision.reset_after))}'
        for name, decision in counted
    )


def _bearer(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
    return None


def _refuse(decision: RateDecision, what: str, headers: dict[str, str]) -> TooManyRequestsException:
    wait = max(1, math.ceil(decision.retry_after))
    return TooManyRequestsException(
        detail=f"too many requests from this {what}; try again in {wait} s",
        headers={**headers, "Retry-After": str(wait)},
    )


class RateLimitMiddleware(ASGIMiddleware):
    """Counts each API request against its address and its user; refuses with 429.

    ``limit_loopback`` False (the embedded profile) lets loopback clients through
    uncounted.
    """

    scopes = (ScopeType.HTTP,)

    def __init__(
        self, limits: RateLimits, identity: IdentityService, *, limit_loopback: bool = True
    ) -> None:
        self._limits = limits
        self._identity = identity
        self._limit_loopback = limit_loopback
        self._policy = limits.policy_field().encode("latin-1")

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        """Check the limits, then pass the request on with the limits in its answer."""
        path: str = scope.get("path", "")
        if not path.startswith("/api/") or path.startswith(_EXEMPT_PREFIXES):
            await next_app(scope, receive, send)
            return
        client: Any = scope.get("client")
        address = str(client[0]) if client else "unknown"
        if not self._limit_loopback and is_loopback(address):
            await next_app(scope, receive, send)
            return
        counted = await self._check(scope, address)
        if not counted:
            await next_app(scope, receive, send)
            return
        fields = [
            (b"ratelimit-policy", self._policy),
            (b"ratelimit", _service_limits(counted).encode("latin-1")),
        ]

        async def send_with_limits(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *fields]
            await send(message)

        await next_app(scope, receive, send_with_limits)

    async def _check(self, scope: Scope, address: str) -> list[tuple[str, RateDecision]]:
        """The quotas the request counted against; none when the limiter is down."""
        try:
            return await self._count(scope, address)
        except AdapterUnavailable as e:
            # fail open: a limiter that cannot count must not take the API down with it
            _log.warning("rate_limiter_unavailable", error=str(e))
            return []

    async def _count(self, scope: Scope, address: str) -> list[tuple[str, RateDecision]]:
        limits = self._limits
        counted: list[tuple[str, RateDecision]] = []
        if limits.per_ip is not None:
            decision = await limits.limiter.hit(f"ip:{address}", limits.per_ip)
            counted.append(("ip", decision))
            if not decision.allowed:
                raise _refuse(decision, "address", self._fields(counted))
        if limits.per_user is not None:
            token = _bearer(scope)
            if token is None:
                return counted
            try:
                requester = self._identity.authenticate(token)
            except InvalidToken:
                return counted  # the route's guard answers 401
            decision = await limits.limiter.hit(f"user:{requester.user_id}", limits.per_user)
            counted.append(("user", decision))
            if not decision.allowed:
                raise _refuse(decision, "user", self._fields(counted))
        return counted

    def _fields(self, counted: list[tuple[str, RateDecision]]) -> dict[str, str]:
        return {
            "RateLimit-Policy": self._policy.decode("latin-1"),
            "RateLimit": _service_limits(counted),
        }
