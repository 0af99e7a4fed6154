"""Rate limits on the API: per address and per user, answered with 429 and Retry-After."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from openticket.adapters.memory import FakeClock, MemoryPasswordHasher
from openticket.entrypoints.bootstrap import build_container
from openticket.entrypoints.demo import seed_demo
from openticket.entrypoints.settings import Settings

pytestmark = pytest.mark.e2e

PASSWORD = "demo-password-1"


@pytest.fixture
async def limited(request: pytest.FixtureRequest) -> AsyncIterator[AsyncTestClient[Any]]:
    """An API with small limits: 8 requests per address, 4 per user, per minute."""
    per_ip, per_user = getattr(request, "param", (8, 4))
    clock = FakeClock()
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
    async with AsyncTestClient(app=container.http_app()) as client:
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


@pytest.mark.parametrize("limited", [(100, 4)], indirect=True)
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


@pytest.mark.parametrize("limited", [(2, 2)], indirect=True)
async def test_health_and_payment_webhooks_are_not_limited(
    limited: AsyncTestClient[Any],
) -> None:
    for _ in range(5):
        assert (await limited.get("/health/live")).status_code == 200
        webhook = await limited.post("/api/webhooks/mock", content=b"{}")
        assert webhook.status_code != 429
