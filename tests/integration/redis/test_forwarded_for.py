"""Reliability check 33 through a real server: ``openticket serve`` on uvicorn.

A client forging ``X-Forwarded-For`` keeps its own address, and so its own rate limit,
unless it comes through a proxy named in ``OPENTICKET_TRUSTED_PROXIES``. uvicorn by
default believes the header from 127.0.0.1; serve turns that off, and the app alone
decides. The production profile limits loopback clients, so a Redis-backed serve shows it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
import pytest

if TYPE_CHECKING:
    from tests.conftest import ServeProcess

pytestmark = pytest.mark.redis

LIMIT = 5


@pytest.fixture
def limited_env(redis_url: str, key_prefix: str) -> dict[str, str]:
    """serve with Redis (the production profile's limits) and a small per-address limit."""
    return {
        "OPENTICKET_REDIS_URL": redis_url,
        "OPENTICKET_REDIS_PREFIX": key_prefix,
        "OPENTICKET_JWT_SECRET": "forwarded-for-tests-signing-secret-32b",
        "OPENTICKET_RATE_LIMIT_PER_IP": str(LIMIT),
        "OPENTICKET_RATE_LIMIT_WINDOW_SECONDS": "60",
    }


def _forged(base: str, count: int) -> list[httpx.Response]:
    """``count`` reads, each claiming another client address."""
    with httpx.Client(base_url=base, timeout=10) as http:
        return [
            http.get("/api/events", headers={"X-Forwarded-For": f"203.0.113.{n}"})
            for n in range(1, count + 1)
        ]


def test_a_forged_forwarded_for_does_not_buy_a_fresh_limit(
    limited_env: dict[str, str], serve_process: ServeProcess
) -> None:
    with serve_process(limited_env) as (base, _):
        answers = _forged(base, LIMIT + 1)
    assert [a.status_code for a in answers] == [200] * LIMIT + [429]
    refused = answers[-1]
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert int(refused.headers["retry-after"]) >= 1
    assert '"ip";r=0' in refused.headers["ratelimit"]


def test_through_a_trusted_proxy_each_forwarded_client_has_its_own_limit(
    limited_env: dict[str, str], serve_process: ServeProcess
) -> None:
    env = {**limited_env, "OPENTICKET_TRUSTED_PROXIES": "127.0.0.1/32,::1"}
    with serve_process(env) as (base, _):
        answers = _forged(base, LIMIT + 1)
        with httpx.Client(base_url=base, timeout=10) as http:
            again = [
                http.get("/api/events", headers={"X-Forwarded-For": "203.0.113.1"})
                for _ in range(LIMIT)
            ]
    assert [a.status_code for a in answers] == [200] * (LIMIT + 1)
    # the first forwarded client has now made LIMIT + 1 requests of its own
    assert [a.status_code for a in again][-1] == 429
