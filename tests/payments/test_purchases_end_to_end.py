"""Two purchases over real HTTP with ``openticket serve``: paid with Stripe (settled by
the loopback Stripe's signed webhook) and with LINE Pay (settled when the buyer's browser
comes back through the confirm redirect)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from .conftest import STRIPE_KEY, StripeBuyer, free_port, stripe_webhook_to
from .linepay_server import LinePayServer

if TYPE_CHECKING:
    from tests.conftest import ServeProcess

pytestmark = pytest.mark.e2e

PASSWORD = "a-buyers-password"
SECRET = "whsec_end_to_end"
CHANNEL_ID, CHANNEL_SECRET = "1656005555", "end-to-end-channel-secret"
QUIET = {"OPENTICKET_RATE_LIMIT_PER_IP": "0", "OPENTICKET_RATE_LIMIT_PER_USER": "0"}


async def _buyer(http: httpx.AsyncClient) -> dict[str, str]:
    email = f"buyer-{uuid.uuid4().hex[:8]}@example.com"
    registered = await http.post(
        "/api/auth/register", json={"email": email, "password": PASSWORD, "display_name": "B"}
    )
    assert registered.status_code == 201, registered.text
    token = await http.post("/api/auth/token", json={"email": email, "password": PASSWORD})
    return {"Authorization": f"Bearer {token.json()['access_token']}"}


async def _hold(http: httpx.AsyncClient, me: dict[str, str], *seats: str) -> dict[str, Any]:
    events = (await http.get("/api/events")).json()["items"]
    session = (await http.get(f"/api/events/{events[0]['event_id']}")).json()["sessions"][0]
    placed = await http.post(
        "/api/orders",
        json={"session_id": session["session_id"], "seat_ids": list(seats)},
        headers=me,
    )
    assert placed.status_code == 201, placed.text
    order: dict[str, Any] = placed.json()
    return order


async def _start(
    http: httpx.AsyncClient, me: dict[str, str], order: dict[str, Any], provider: str
) -> dict[str, Any]:
    """Start paying ``order``: 201, pending until the provider says otherwise."""
    started = await http.post(
        f"/api/orders/{order['order_id']}/payments", json={"provider": provider}, headers=me
    )
    assert started.status_code == 201, started.text
    payment: dict[str, Any] = started.json()
    assert payment["status"] == "pending"
    return payment


async def _until_completed(http: httpx.AsyncClient, me: dict[str, str], order_id: str) -> None:
    deadline = time.monotonic() + 15
    while (await http.get(f"/api/orders/{order_id}", headers=me)).json()["status"] != "completed":
        assert time.monotonic() < deadline, "the order was never completed"
        await asyncio.sleep(0.1)


@pytest.mark.stripe
async def test_a_purchase_paid_with_stripe_settles_by_its_webhook(
    serve_process: ServeProcess, stripe_server: str
) -> None:
    env = {
        **QUIET,
        "OPENTICKET_STRIPE_API_KEY": STRIPE_KEY,
        "OPENTICKET_STRIPE_WEBHOOK_SECRET": SECRET,
        "OPENTICKET_STRIPE_API_BASE": stripe_server,
    }
    with serve_process(env) as (api, printed):
        assert "stripe" in printed
        await stripe_webhook_to(stripe_server, f"{api}/api/webhooks/stripe", SECRET)
        async with httpx.AsyncClient(base_url=api, timeout=15) as http:
            me = await _buyer(http)
            order = await _hold(http, me, "A-9-1", "A-9-2")
            payment = await _start(http, me, order, "stripe")
            assert payment["amount"] == {"amount": "5600.00", "currency": "TWD"}
            intent = payment["client_secret"].split("_secret_")[0]
            # the buyer's browser confirms with Stripe.js; Stripe tells us by webhook
            confirmed = await StripeBuyer(stripe_server).pay(intent, "4242424242424242")
            assert confirmed["status"] == "succeeded"
            await _until_completed(http, me, order["order_id"])
            tickets = (await http.get("/api/me/tickets", headers=me)).json()["items"]
            assert sorted(t["seat_id"] for t in tickets) == ["A-9-1", "A-9-2"]


@pytest.fixture
def linepay_server() -> Iterator[LinePayServer]:
    with LinePayServer(channel_id=CHANNEL_ID, channel_secret=CHANNEL_SECRET) as server:
        yield server


@pytest.mark.linepay
async def test_a_purchase_paid_with_line_pay_settles_when_the_buyer_comes_back(
    serve_process: ServeProcess, linepay_server: LinePayServer
) -> None:
    port = free_port()
    env = {
        **QUIET,
        "OPENTICKET_LINEPAY_CHANNEL_ID": CHANNEL_ID,
        "OPENTICKET_LINEPAY_CHANNEL_SECRET": CHANNEL_SECRET,
        "OPENTICKET_LINEPAY_API_BASE": linepay_server.base_url,
        "OPENTICKET_PUBLIC_URL": f"http://127.0.0.1:{port}",
    }
    with serve_process(env, port=port) as (api, printed):
        assert "linepay" in printed
        async with httpx.AsyncClient(base_url=api, timeout=15) as http:
            me = await _buyer(http)
            order = await _hold(http, me, "B-5-1")
            payment = await _start(http, me, order, "linepay")
            # the buyer approves on LINE Pay's page, which sends the browser back to us
            async with httpx.AsyncClient(follow_redirects=True, timeout=15) as browser:
                back = await browser.get(payment["redirect_url"], params={"action": "approve"})
            assert back.url.path == "/api/payments/linepay/confirm"
            assert back.status_code == 200, back.text
            assert back.json()["status"] == "succeeded"
            await _until_completed(http, me, order["order_id"])
            tickets = (await http.get("/api/me/tickets", headers=me)).json()["items"]
            assert [t["seat_id"] for t in tickets] == ["B-5-1"]
            transaction = back.url.params["transactionId"]
            stored = linepay_server.transactions[transaction]
            assert (stored["status"], stored["amount"]) == ("confirmed", 1200)
