"""The rate limiter: how many requests one key (a user, an IP address) may make per window.

During a flash sale every API process asks the same limiter, so a user spread over
several processes behind a load balancer still gets exactly ``limit`` requests per
window in total. The window slides: at any moment, a request is allowed only if fewer
than ``limit`` requests of its key were allowed in the ``window`` just before it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Protocol, runtime_checkable

import attrs

_MILLISECOND = timedelta(milliseconds=1)


def _positive(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    if value < 1:
        raise ValueError(f"{attribute.name} must be at least 1, got {value}")


def _at_least_a_millisecond(
    _: object, attribute: attrs.Attribute[timedelta], value: timedelta
) -> None:
    if value < _MILLISECOND:
        raise ValueError(f"{attribute.name} must be at least 1 ms, got {value}")


@attrs.frozen
class RateLimit:
    """At most ``limit`` allowed requests in any ``window`` (a sliding window).

    ``limit`` is at least 1 and ``window`` at least one millisecond: limiters count
    time in whole milliseconds, so a window is cut to whole milliseconds.
    """

    limit: int = attrs.field(validator=_positive)
    window: timedelta = attrs.field(validator=_at_least_a_millisecond)


@attrs.frozen
class RateDecision:
    """The limiter's answer to one request.

    ``remaining`` is how many more requests the key may make right now (0 when refused).
    ``retry_after`` is the number of seconds until a request of the key would be
    allowed: 0 when this one was allowed, more than 0 and at most the window when it
    was refused (more than the window only if the processes' clocks disagree).
    ``reset_after`` is the number of seconds until ``remaining`` next grows: until the
    oldest request the key counts leaves the window (a full window right after the
    key's first request). Clients are told it as the RateLimit field's ``t``.
    """

    allowed: bool
    remaining: int
    retry_after: float
    reset_after: float = 0.0


@runtime_checkable
class RateLimiter(Protocol):
    """Sliding-window rate limits per key, exact across every process that shares the store.

    Rules every adapter keeps (``openticket.testing.contracts.RateLimiterContract``
    checks them):

    - A request is allowed when fewer than ``limit.limit`` requests of ``key`` were
      allowed during the ``limit.window`` before it; an allowed request counts from
      its moment until one window later (excluded).
    - Only allowed requests count. A refused request changes nothing, so a client
      that keeps retrying while refused does not extend its own lockout, and the
      store keeps at most ``limit`` entries per key however hard it is flooded.
    - Checking and counting are one atomic step: of any number of concurrent
      requests, from one process or many, exactly as many are allowed as the limit
      leaves room for.
    - Keys are independent. Use one limit per key: requests under another limit
      (say, per IP and per user) belong under another key, such as ``"ip:…"`` and
      ``"user:…"``. A key's counted requests are only kept for the window of the
      limit it is used with.
    - Time comes from the adapter's clock, in whole milliseconds.

    Raises ``AdapterUnavailable`` when the backing service cannot be reached. Whether
    the request was counted is then unknown (at worst it was, which errs on the safe
    side); the caller decides whether to let it through.
    """

    async def hit(self, key: str, limit: RateLimit) -> RateDecision:
        """Count one request of ``key`` if ``limit`` allows it now, and say whether it did."""
        ...
