"""The Turnstile verifier against the loopback siteverify: pass, fail, reuse, expiry, outages."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import httpx
import pytest
from structlog.testing import capture_logs

from openticket.adapters.challenge import NoChallenge, TurnstileVerifier
from openticket.application.ports.challenge import ChallengeResult, ChallengeVerifier
from openticket.application.ports.errors import AdapterUnavailable
from openticket.testing.turnstile import (
    DUMMY_TOKEN,
    TEST_SECRET_FAILS,
    TEST_SECRET_PASSES,
    TEST_SECRET_SPENT,
    TurnstileServer,
)

SECRET = "0x4AAAAAAAturnstileTestsSecret"
BUYER = "198.51.100.23"


@pytest.fixture(scope="module")
def server() -> Iterator[TurnstileServer]:
    with TurnstileServer(SECRET) as running:
        yield running


@pytest.fixture
async def verifier(server: TurnstileServer) -> AsyncIterator[TurnstileVerifier]:
    verifier = TurnstileVerifier(SECRET, url=server.siteverify_url, timeout=5)
    yield verifier
    await verifier.stop()


def test_both_verifiers_are_challenge_verifiers() -> None:
    assert isinstance(TurnstileVerifier(SECRET), ChallengeVerifier)
    assert isinstance(NoChallenge(), ChallengeVerifier)


# --- the answers --------------------------------------------------------------------------


async def test_a_fresh_token_passes_with_what_the_widget_was_given(
    server: TurnstileServer, verifier: TurnstileVerifier
) -> None:
    token = server.issue_token(action="join", hostname="tickets.example", cdata="session-7")
    before = datetime.now(UTC)
    result = await verifier.verify(token, address=BUYER)
    assert result.ok, result
    assert result.error_codes == ()
    assert (result.hostname, result.action, result.cdata) == (
        "tickets.example",
        "join",
        "session-7",
    )
    assert result.challenge_ts is not None
    assert before - timedelta(seconds=1) <= result.challenge_ts <= datetime.now(UTC)


async def test_a_token_used_once_fails_the_second_time(
    server: TurnstileServer, verifier: TurnstileVerifier
) -> None:
    token = server.issue_token()
    assert (await verifier.verify(token, address=BUYER)).ok
    again = await verifier.verify(token, address=BUYER)
    assert not again.ok
    assert again.error_codes == ("timeout-or-duplicate",)


async def test_a_retry_with_the_same_idempotency_key_gets_the_first_answer(
    server: TurnstileServer, verifier: TurnstileVerifier
) -> None:
    token, key = server.issue_token(action="join"), str(uuid4())
    first = await verifier.verify(token, address=BUYER, idempotency_key=key)
    retried = await verifier.verify(token, address=BUYER, idempotency_key=key)
    assert first.ok
    assert retried == first
    other = await verifier.verify(token, address=BUYER, idempotency_key=str(uuid4()))
    assert other.error_codes == ("timeout-or-duplicate",)


async def test_a_token_older_than_five_minutes_has_expired(
    server: TurnstileServer, verifier: TurnstileVerifier
) -> None:
    now = datetime.now(UTC)
    stale = server.issue_token(issued_at=now - timedelta(seconds=301))
    result = await verifier.verify(stale, address=BUYER)
    assert not result.ok
    assert result.error_codes == ("timeout-or-duplicate",)
    nearly = server.issue_token(issued_at=now - timedelta(seconds=290))
    assert (await verifier.verify(nearly, address=BUYER)).ok


async def test_a_token_the_widget_never_issued_is_invalid(verifier: TurnstileVerifier) -> None:
    result = await verifier.verify("0.forged-token", address=BUYER)
    assert result == ChallengeResult(ok=False, error_codes=("invalid-input-response",))


async def test_a_wrong_secret_fails_every_token_and_is_logged(server: TurnstileServer) -> None:
    verifier = TurnstileVerifier("0x4AAAAAAAsomeoneElsesSecret", url=server.siteverify_url)
    try:
        with capture_logs() as logs:
            result = await verifier.verify(server.issue_token(), address=BUYER)
    finally:
        await verifier.stop()
    assert result.error_codes == ("invalid-input-secret",)
    assert not result.ok
    assert [(e["event"], e["log_level"]) for e in logs] == [("turnstile_secret_refused", "error")]


@pytest.mark.parametrize(
    ("secret", "ok", "codes"),
    [
        (TEST_SECRET_PASSES, True, ()),
        (TEST_SECRET_FAILS, False, ("invalid-input-response",)),
        (TEST_SECRET_SPENT, False, ("timeout-or-duplicate",)),
    ],
)
async def test_cloudflares_test_secrets(
    server: TurnstileServer, secret: str, ok: bool, codes: tuple[str, ...]
) -> None:
    verifier = TurnstileVerifier(secret, url=server.siteverify_url)
    try:
        results = [await verifier.verify(DUMMY_TOKEN, address=None) for _ in range(2)]
    finally:
        await verifier.stop()
    assert [(r.ok, r.error_codes) for r in results] == [(ok, codes)] * 2


# --- what is sent, and what is not ----------------------------------------------------------


async def test_the_secret_token_address_and_idempotency_key_are_sent(
    server: TurnstileServer, verifier: TurnstileVerifier
) -> None:
    token, key = server.issue_token(), str(uuid4())
    await verifier.verify(token, address=BUYER, idempotency_key=key)
    assert server.calls[-1] == {
        "secret": SECRET,
        "response": token,
        "remoteip": BUYER,
        "idempotency_key": key,
    }
    await verifier.verify(server.issue_token(), address=None)
    assert set(server.calls[-1]) == {"secret", "response"}


async def test_an_empty_token_fails_without_a_call(
    server: TurnstileServer, verifier: TurnstileVerifier
) -> None:
    calls = len(server.calls)
    result = await verifier.verify("", address=BUYER)
    assert result == ChallengeResult(ok=False, error_codes=("missing-input-response",))
    assert len(server.calls) == calls


async def test_a_token_longer_than_2048_characters_fails_without_a_call(
    server: TurnstileServer, verifier: TurnstileVerifier
) -> None:
    calls = len(server.calls)
    result = await verifier.verify("x" * 2049, address=BUYER)
    assert result == ChallengeResult(ok=False, error_codes=("invalid-input-response",))
    assert len(server.calls) == calls
    await verifier.verify("x" * 2048, address=BUYER)  # the longest a token may be: asked
    assert len(server.calls) == calls + 1


async def test_a_token_for_another_site_or_widget_fails_when_they_are_expected(
    server: TurnstileServer,
) -> None:
    verifier = TurnstileVerifier(
        SECRET,
        url=server.siteverify_url,
        expected_hostnames=["tickets.example"],
        expected_action="join",
    )
    try:
        right = await verifier.verify(
            server.issue_token(hostname="tickets.example", action="join"), address=BUYER
        )
        elsewhere = await verifier.verify(
            server.issue_token(hostname="phish.example", action="join"), address=BUYER
        )
        other_widget = await verifier.verify(
            server.issue_token(hostname="tickets.example", action="login"), address=BUYER
        )
    finally:
        await verifier.stop()
    assert right.ok
    assert (elsewhere.ok, elsewhere.error_codes) == (False, ("hostname-mismatch",))
    assert (other_widget.ok, other_widget.error_codes) == (False, ("action-mismatch",))


# --- outages ----------------------------------------------------------------------------------


async def test_an_unreachable_siteverify_is_unavailable() -> None:
    with TurnstileServer(SECRET) as gone:
        url = gone.siteverify_url
    verifier = TurnstileVerifier(SECRET, url=url, timeout=2)
    try:
        with pytest.raises(AdapterUnavailable) as raised:
            await verifier.verify("0.some-token", address=BUYER)
    finally:
        await verifier.stop()
    assert isinstance(raised.value.__cause__, httpx.ConnectError)


async def test_a_slow_siteverify_is_unavailable(server: TurnstileServer) -> None:
    verifier = TurnstileVerifier(SECRET, url=server.siteverify_url, timeout=0.2)
    server.delay_next(1.0)
    try:
        with pytest.raises(AdapterUnavailable) as raised:
            await verifier.verify(server.issue_token(), address=BUYER)
    finally:
        await verifier.stop()
    assert isinstance(raised.value.__cause__, httpx.TimeoutException)


@pytest.mark.parametrize(
    ("status", "body", "content_type"),
    [
        (500, b"upstream failed", "text/plain"),
        (503, {"success": False, "error-codes": ["internal-error"]}, "application/json"),
        (200, {"success": False, "error-codes": ["internal-error"]}, "application/json"),
        (200, b"<html>Just a moment...</html>", "text/html"),
        (200, {"ok": True}, "application/json"),
    ],
)
async def test_an_answer_that_verifies_nothing_is_unavailable(
    server: TurnstileServer,
    verifier: TurnstileVerifier,
    status: int,
    body: bytes | dict[str, object],
    content_type: str,
) -> None:
    server.answer_next(status, body, content_type=content_type)
    with pytest.raises(AdapterUnavailable):
        await verifier.verify(server.issue_token(), address=BUYER)


async def test_a_shared_client_is_left_open(server: TurnstileServer) -> None:
    async with httpx.AsyncClient() as shared:
        verifier = TurnstileVerifier(SECRET, url=server.siteverify_url, client=shared)
        assert (await verifier.verify(server.issue_token(), address=BUYER)).ok
        await verifier.stop()
        assert not shared.is_closed
        assert (await verifier.verify(server.issue_token(), address=BUYER)).ok


def test_a_verifier_needs_a_secret() -> None:
    with pytest.raises(ValueError, match="secret"):
        TurnstileVerifier("")


# --- the loopback server itself -----------------------------------------------------------------


async def test_the_server_takes_json_bodies_too(server: TurnstileServer) -> None:
    token = server.issue_token(action="join")
    async with httpx.AsyncClient() as http:
        answer = await http.post(server.siteverify_url, json={"secret": SECRET, "response": token})
        bad = await http.post(
            server.siteverify_url, content=b"secret", headers={"Content-Type": "text/plain"}
        )
    assert answer.json()["success"] is True
    assert answer.json()["action"] == "join"
    assert bad.status_code == 400
    assert bad.json()["error-codes"] == ["bad-request"]


async def test_the_server_wants_a_secret_and_a_response(server: TurnstileServer) -> None:
    async with httpx.AsyncClient() as http:
        no_secret = await http.post(server.siteverify_url, data={"response": "0.x"})
        no_token = await http.post(server.siteverify_url, data={"secret": SECRET})
    assert no_secret.json()["error-codes"] == ["missing-input-secret"]
    assert no_token.json()["error-codes"] == ["missing-input-response"]


# --- no challenge ------------------------------------------------------------------------------


async def test_no_challenge_passes_any_token_without_asking_anyone() -> None:
    verifier = NoChallenge()
    for token in ("", "anything", "x" * 5000):
        assert (await verifier.verify(token, address=None)).ok
