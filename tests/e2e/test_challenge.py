"""A session may require a human check before its waiting room is joined (Turnstile).

The platform asks a loopback siteverify server that speaks Cloudflare's protocol
(``openticket.testing.turnstile``): in process, and with
``OPENTICKET_E2E_STORAGE=production`` from serve's own process.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from openticket.testing.turnstile import TurnstileServer

from .conftest import Api, deployment, in_process
from .test_http_contract import assert_problem
from .test_waiting_room import queued_sale

pytestmark = [pytest.mark.e2e, pytest.mark.production]

SECRET = "0x4AAAAAAAe2eTurnstileSecretKey"  # the loopback server's


@pytest.fixture
def turnstile() -> Iterator[TurnstileServer]:
    with TurnstileServer(SECRET) as server:
        yield server


@pytest.fixture
async def challenged(
    request: pytest.FixtureRequest,
    production_env: dict[str, str] | None,
    turnstile: TurnstileServer,
) -> AsyncIterator[Api]:
    """The platform of this run's profile, verifying Turnstile tokens with the loopback."""
    if production_env is not None:
        env = {
            **production_env,
            "OPENTICKET_TURNSTILE_SECRET": SECRET,
            "OPENTICKET_TURNSTILE_VERIFY_URL": turnstile.siteverify_url,
        }
        async with deployment(request, env) as remote:
            yield remote
        return
    async with in_process(
        request, turnstile_secret=SECRET, turnstile_verify_url=turnstile.siteverify_url
    ) as local:
        yield local


async def test_a_join_needs_a_solved_challenge_once(
    challenged: Api, turnstile: TurnstileServer
) -> None:
    api = challenged
    session_id = await queued_sale(api, challenge_required=True)
    alice, bob = await api.buyer("alice"), await api.buyer("bob")
    path = f"/api/sessions/{session_id}/queue"

    missing = await api.client.post(path, headers=alice)
    assert "X-Challenge-Token" in assert_problem(missing, 403, "challenge_failed")["detail"]
    forged = await api.client.post(path, headers={**alice, "X-Challenge-Token": "0.forged"})
    assert_problem(forged, 403, "challenge_failed")

    token = turnstile.issue_token()
    joined = await api.client.post(path, headers={**alice, "X-Challenge-Token": token})
    assert joined.status_code == 201, joined.text
    assert turnstile.calls[-1]["response"] == token
    assert turnstile.calls[-1]["secret"] == SECRET
    # once in, joining again needs no new challenge
    again = await api.client.post(path, headers=alice)
    assert again.status_code == 201, again.text
    assert again.json()["queue_id"] == joined.json()["queue_id"]
    # a token proves one challenge: bob cannot join with alice's
    reused = await api.client.post(path, headers={**bob, "X-Challenge-Token": token})
    assert "timeout-or-duplicate" in assert_problem(reused, 403, "challenge_failed")["detail"]


async def test_a_session_without_a_challenge_needs_no_token(
    challenged: Api, turnstile: TurnstileServer
) -> None:
    api = challenged
    session_id = await queued_sale(api)
    alice = await api.buyer("alice")
    joined = await api.client.post(f"/api/sessions/{session_id}/queue", headers=alice)
    assert joined.status_code == 201, joined.text
    assert turnstile.calls == []


async def test_without_a_verifier_a_challenged_session_answers_503(api: Api) -> None:
    session_id = await queued_sale(api, challenge_required=True)
    alice = await api.buyer("alice")
    answer = await api.client.post(f"/api/sessions/{session_id}/queue", headers=alice)
    assert (
        "OPENTICKET_TURNSTILE_SECRET"
        in assert_problem(answer, 503, "challenge_unavailable")["detail"]
    )
