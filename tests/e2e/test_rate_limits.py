"""Rate limits on the API: per address and per user, answered with 429 and Retry-After.

Every limited answer tells its limits in the IETF ``RateLimit-Policy`` and ``RateLimit``
fields (draft-ietf-httpapi-ratelimit-headers-11); the embedded profile never limits
loopback clients.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import attrs
import httpx
import pytest
from dependency_injector import providers
from litestar import Litestar
from litestar.testing import AsyncTestClient

from openticket.adapters.memory import FakeClock, MemoryPasswordHasher
from openticket.entrypoints.bootstrap import build_container
from openticket.entrypoints.container import Container
from openticket.entrypoints.demo import seed_demo
from openticket.entrypoints.settings import Settings

pytestmark = pytest.mark.e2e

PASSWORD = "demo-password-1"

Response = httpx.Response


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def limited_container(request: pytest.FixtureRequest, clock: FakeClock) -> Container:
    """The embedded profile with small limits: 8 requests per address, 4 per user, a minute."""
    per_ip, per_user = getattr(request, "param", (8, 4))
    container = build_container(
        Settings(
            demo_password=PASSWORD,
            rate_limit_per_ip=per_ip,
            rate_limit_per_user=per_user,
            rate_limit_window_seconds=60,
            jwt_secret="rate-limit-tests-signing-secret-32b!",
        ),
        clock=clock,
        password_hasher=MemoryPasswordHasher(),
    )
    await seed_demo(container.app(), container.identity(), clock, PASSWORD)
    return container


@pytest.fixture
def limited_app(limited_container: Container) -> Litestar:
    return limited_container.http_app()


@pytest.fixture
async def limited(limited_app: Litestar) -> AsyncIterator[AsyncTestClient[Any]]:
    """A client of the limited API (its address is ``testclient``, never loopback)."""
    async with AsyncTestClient(app=limited_app) as client:
        yield client


async def test_an_address_over_its_limit_gets_429_with_retry_after_as_problem_json(
    limited: AsyncTestClient[Any],
) -> None:
    answers = [await limited.get("/api/events") for _ in range(10)]
    assert [a.status_code for a in answers] == [200] * 8 + [429] * 2
    refused = answers[-1]
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["code"] == "rate_limited"
    assert refused.json()["status"] == 429
    assert 1 <= int(refused.headers["retry-after"]) <= 60


@pytest.mark.parametrize("limited_container", [(100, 4)], indirect=True)
async def test_a_user_over_their_limit_is_refused_while_others_go_on(
    limited: AsyncTestClient[Any],
) -> None:
    token = await limited.post(
        "/api/auth/token", json={"email": "organizer@openticket.local", "password": PASSWORD}
    )
    me = {"Authorization": f"Bearer {token.json()['access_token']}"}
    mine = [(await limited.get("/api/me", headers=me)).status_code for _ in range(6)]
    assert mine == [200] * 4 + [429] * 2
    assert (await limited.get("/api/events")).status_code == 200  # no token: only the address


@pytest.mark.parametrize("limited_container", [(2, 2)], indirect=True)
async def test_health_and_payment_webhooks_are_not_limited(
    limited: AsyncTestClient[Any],
) -> None:
    for _ in range(5):
        assert (await limited.get("/health/live")).status_code == 200
        webhook = await limited.post("/api/webhooks/mock", content=b"{}")
        assert webhook.status_code != 429


def rate_limit(answer: Response) -> dict[str, dict[str, int]]:
    """The ``RateLimit`` field as ``{policy: {"r": …, "t": …}}``."""
    parsed: dict[str, dict[str, int]] = {}
    for item in answer.headers["ratelimit"].split(","):
        name, *params = item.strip().split(";")
        assert re.fullmatch(r'"[a-z]+"', name), answer.headers["ratelimit"]
        parsed[name.strip('"')] = {k: int(v) for k, v in (p.split("=") for p in params)}
    return parsed


async def test_limited_answers_say_the_policy_and_what_is_left_then_429_says_it_too(
    limited: AsyncTestClient[Any], clock: FakeClock
) -> None:
    first = await limited.get("/api/events")
    assert first.headers["ratelimit-policy"] == '"ip";q=8;w=60, "user";q=4;w=60'
    assert rate_limit(first) == {"ip": {"r": 7, "t": 60}}
    clock.advance(20)
    answers = [await limited.get("/api/events") for _ in range(8)]
    assert [a.status_code for a in answers] == [200] * 7 + [429]
    assert [rate_limit(a)["ip"]["r"] for a in answers] == [6, 5, 4, 3, 2, 1, 0, 0]
    # the first request leaves the sliding window 40 s from now: the quota grows then
    assert {rate_limit(a)["ip"]["t"] for a in answers} == {40}
    refused = answers[-1]
    assert refused.headers["ratelimit-policy"] == first.headers["ratelimit-policy"]
    assert int(refused.headers["retry-after"]) >= rate_limit(refused)["ip"]["t"]
    assert refused.json()["code"] == "rate_limited"


@pytest.mark.parametrize("limited_container", [(100, 2)], indirect=True)
async def test_a_signed_in_user_is_told_both_of_their_quotas(
    limited: AsyncTestClient[Any],
) -> None:
    token = await limited.post(
        "/api/auth/token", json={"email": "organizer@openticket.local", "password": PASSWORD}
    )
    me = {"Authorization": f"Bearer {token.json()['access_token']}"}
    answers = [await limited.get("/api/me", headers=me) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert [rate_limit(a)["user"]["r"] for a in answers] == [1, 0, 0]
    assert [rate_limit(a)["ip"]["r"] for a in answers] == [98, 97, 96]
    assert answers[-1].headers["retry-after"]


async def test_answers_outside_the_api_carry_no_rate_limit(limited: AsyncTestClient[Any]) -> None:
    for path in ("/health/live", "/metrics", "/schema/openapi.json"):
        answer = await limited.get(path)
        assert answer.status_code == 200, path
        assert "ratelimit" not in answer.headers, path


@pytest.mark.parametrize("address", ["127.0.0.1", "127.8.9.10", "::1"])
async def test_the_embedded_profile_never_limits_loopback_clients(
    limited_app: Litestar, address: str
) -> None:
    transport = httpx.ASGITransport(app=limited_app, client=(address, 40_000))
    async with (
        AsyncTestClient(app=limited_app),
        httpx.AsyncClient(transport=transport, base_url="http://api.test") as local,
    ):
        answers = [await local.get("/api/events") for _ in range(12)]
    assert {a.status_code for a in answers} == {200}
    assert "ratelimit" not in answers[-1].headers


async def test_the_production_profile_limits_loopback_clients_too(
    limited_container: Container,
) -> None:
    policy = limited_container.http_policy()
    assert not policy.limit_loopback  # the embedded profile's rule...
    limited_container.http_policy.override(
        providers.Object(attrs.evolve(policy, limit_loopback=True))  # ...and production's
    )
    app = limited_container.http_app()
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40_000))
    async with (
        AsyncTestClient(app=app),
        httpx.AsyncClient(transport=transport, base_url="http://api.test") as local,
    ):
        answers = [await local.get("/api/events") for _ in range(9)]
    assert [a.status_code for a in answers] == [200] * 8 + [429]
