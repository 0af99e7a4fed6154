"""Stripe and LINE Pay through the whole platform: the HTTP API in process, the loopback
providers on their ports. Each payments item of reliability.md (13-19) is a test here,
and so is a late payment after expiry, refunded exactly once, for each provider.

Time is a ``FakeClock`` started at the real now (the loopback Stripe signs webhooks with
the real time). The app's own sweeper is kept out of the way: the tests sweep when they
mean to (:meth:`Shop.sweep`), so that only the news they deliver moves a payment.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import attrs
import httpx
import pytest
from litestar.testing import AsyncTestClient

from openticket.adapters.memory import FakeClock, MemoryPasswordHasher
from openticket.entrypoints.bootstrap import build_container
from openticket.entrypoints.container import Container
from openticket.entrypoints.demo import seed_demo
from openticket.entrypoints.settings import Settings

from .conftest import STRIPE_KEY, StripeBuyer
from .linepay_server import LinePayServer

pytestmark = [pytest.mark.stripe, pytest.mark.linepay]

PASSWORD = "a-buyers-password"
WEBHOOK_SECRET = "whsec_platform_tests"
CHANNEL_ID, CHANNEL_SECRET = "1656009999", "platform-channel-secret"
TTL = 120


@pytest.fixture(scope="module")
def linepay_server() -> Iterator[LinePayServer]:
    with LinePayServer(channel_id=CHANNEL_ID, channel_secret=CHANNEL_SECRET) as server:
        yield server


@attrs.define
class Shop:
    """The API in process, its container and clock, and a buyer's helpers."""

    client: AsyncTestClient[Any]
    container: Container
    clock: FakeClock
    session_id: str
    stripe_base: str
    linepay: LinePayServer

    async def buyer(self, name: str) -> dict[str, str]:
        email = f"{name}-{time.monotonic_ns()}@example.com"
        registered = await self.client.post(
            "/api/auth/register",
            json={"email": email, "password": PASSWORD, "display_name": name},
        )
        assert registered.status_code == 201, registered.text
        token = await self.client.post(
            "/api/auth/token", json={"email": email, "password": PASSWORD}
        )
        return {"Authorization": f"Bearer {token.json()['access_token']}"}

    async def hold(self, who: dict[str, str], *seats: str) -> dict[str, Any]:
        placed = await self.client.post(
            "/api/orders",
            json={"session_id": self.session_id, "seat_ids": list(seats)},
            headers=who,
        )
        assert placed.status_code == 201, placed.text
        order: dict[str, Any] = placed.json()
        return order

    async def pay(self, who: dict[str, str], order: dict[str, Any], provider: str) -> Any:
        started = await self.client.post(
            f"/api/orders/{order['order_id']}/payments", json={"provider": provider}, headers=who
        )
        assert started.status_code == 201, started.text
        return started.json()

    async def order(self, who: dict[str, str], order: dict[str, Any]) -> dict[str, Any]:
        found: dict[str, Any] = (
            await self.client.get(f"/api/orders/{order['order_id']}", headers=who)
        ).json()
        return found

    async def tickets(self, who: dict[str, str]) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = (
            await self.client.get("/api/me/tickets", headers=who)
        ).json()["items"]
        return items

    async def seat(self, seat: str) -> str:
        seats = (await self.client.get(f"/api/sessions/{self.session_id}/seats")).json()
        return next(str(s["status"]) for s in seats["items"] if s["seat_id"] == seat)

    async def sweep(self) -> None:
        """One pass of the housekeeping (expiry, reconciliation), in the app's own loop."""
        portal = self.client.blocking_portal
        await asyncio.wrap_future(portal.start_task_soon(self.container.app().sweep))

    async def eventually(self, check: Callable[[], Awaitable[bool]], seconds: float = 5) -> None:
        deadline = time.monotonic() + seconds
        while not await check():
            assert time.monotonic() < deadline, "the condition never held"
            await asyncio.sleep(0.02)

    def stripe_webhook(self, kind: str, thing: dict[str, Any], event_id: str) -> tuple[Any, bytes]:
        """A webhook as Stripe signs it, at the shop's time."""
        body = json.dumps({"id": event_id, "type": kind, "data": {"object": thing}}).encode()
        at = int(self.clock.now().timestamp())
        mac = hmac.new(WEBHOOK_SECRET.encode(), f"{at}.".encode() + body, hashlib.sha256)
        return {"Stripe-Signature": f"t={at},v1={mac.hexdigest()}"}, body

    async def deliver(self, headers: dict[str, str], body: bytes) -> httpx.Response:
        return await self.client.post("/api/webhooks/stripe", content=body, headers=headers)

    async def stripe_refunds(self, intent: str) -> list[int]:
        async with httpx.AsyncClient(base_url=self.stripe_base, auth=(STRIPE_KEY, "")) as http:
            listed = await http.get("/v1/refunds", params={"payment_intent": intent})
        return [int(r["amount"]) for r in listed.json()["data"]]


@pytest.fixture
async def shop(
    request: pytest.FixtureRequest, stripe_server: str, linepay_server: LinePayServer
) -> AsyncIterator[Shop]:
    """The platform; ``indirect`` parameters override settings (e.g. a slow sweeper)."""
    clock = FakeClock(datetime.now(UTC))
    overrides: dict[str, Any] = getattr(request, "param", {})
    settings = Settings(
        hold_ttl_seconds=TTL,
        demo_password=PASSWORD,
        sweep_interval_seconds=overrides.get("sweep_interval_seconds", 3600),
        jwt_secret="payments-platform-tests-signing-secret!",
        rate_limit_per_ip=0,
        rate_limit_per_user=0,
        stripe_api_key=STRIPE_KEY,
        stripe_webhook_secret=WEBHOOK_SECRET,
        stripe_api_base=stripe_server,
        linepay_channel_id=CHANNEL_ID,
        linepay_channel_secret=CHANNEL_SECRET,
        linepay_api_base=linepay_server.base_url,
        payment_timeout_seconds=1,
    )
    container = build_container(settings, clock=clock, password_hasher=MemoryPasswordHasher())
    demo = await seed_demo(container.app(), container.identity(), clock, PASSWORD)
    assert demo is not None
    async with AsyncTestClient(app=container.http_app()) as client:
        yield Shop(client, container, clock, str(demo.session_id), stripe_server, linepay_server)


# --- Stripe ---------------------------------------------------------------------------------



async def paid_at_stripe(shop: Shop, seat: str) -> tuple[dict[str, str], dict[str, Any], str]:
    """A buyer whose card went through at Stripe; no webhook delivered yet."""
    me = await shop.buyer("stripe")
    order = await shop.hold(me, seat)
    started = await shop.pay(me, order, "stripe")
    assert started["status"] == "pending"
    assert started["client_secret"].startswith("pi_")
    intent = started["client_secret"].split("_secret_")[0]
    confirmed = await StripeBuyer(shop.stripe_base).pay(intent, "4242424242424242")
    assert confirmed["status"] == "succeeded"
    return me, order, intent


async def test_a_stripe_event_delivered_twice_at_once_is_processed_once(shop: Shop) -> None:
    """Reliability #13."""
    me, order, intent = await paid_at_stripe(shop, "A-2-1")
    headers, body = shop.stripe_webhook("payment_intent.succeeded", {"id": intent}, "evt_13")
    answers = await asyncio.gather(shop.deliver(headers, body), shop.deliver(headers, body))
    assert [a.status_code for a in answers] == [200, 200]
    assert (await shop.order(me, order))["status"] == "completed"
    assert [t["seat_id"] for t in await shop.tickets(me)] == ["A-2-1"]
    again = await shop.deliver(headers, body)
    assert again.status_code == 200
    assert [t["seat_id"] for t in await shop.tickets(me)] == ["A-2-1"]


async def test_stripe_events_out_of_order_end_right(shop: Shop) -> None:
    """Reliability #14: a failure after the success is refused; a refund's news first
    leaves the order without its seats and the money back, whatever comes after; a
    refund made at Stripe after the order completed refunds the order."""
    me, order, intent = await paid_at_stripe(shop, "A-2-2")
    for kind, thing, event_id in (
        ("payment_intent.succeeded", {"id": intent}, "evt_14a"),
        ("payment_intent.payment_failed", {"id": intent}, "evt_14b"),
    ):
        assert (await shop.deliver(*shop.stripe_webhook(kind, thing, event_id))).status_code == 200
    assert (await shop.order(me, order))["status"] == "completed"

    other, second, intent2 = await paid_at_stripe(shop, "A-2-3")
    async with httpx.AsyncClient(base_url=shop.stripe_base, auth=(STRIPE_KEY, "")) as http:
        refunded = await http.post("/v1/refunds", data={"payment_intent": intent2})
        assert refunded.status_code == 200  # refunded in Stripe's dashboard, say
    for kind, thing, event_id in (
        ("charge.refunded", {"payment_intent": intent2, "refunded": True}, "evt_14c"),
        ("payment_intent.succeeded", {"id": intent2}, "evt_14d"),
    ):
        assert (await shop.deliver(*shop.stripe_webhook(kind, thing, event_id))).status_code == 200
    assert (await shop.order(other, second))["status"] == "failed"
    assert await shop.tickets(other) == []
    assert await shop.seat("A-2-3") == "available"
    assert await shop.stripe_refunds(intent2) == [280000]  # no second refund of ours

    async with httpx.AsyncClient(base_url=shop.stripe_base, auth=(STRIPE_KEY, "")) as http:
        assert (await http.post("/v1/refunds", data={"payment_intent": intent})).status_code == 200
    back = ("charge.refunded", {"payment_intent": intent, "refunded": True}, "evt_14e")
    assert (await shop.deliver(*shop.stripe_webhook(*back))).status_code == 200
    assert (await shop.order(me, order))["status"] == "refunded"
    assert [t["status"] for t in await shop.tickets(me)] == ["voided"]
    assert await shop.seat("A-2-2") == "available"


@pytest.mark.parametrize(
    "tamper",
    ["missing", "garbled", "flipped", "stale", "future", "wrong secret"],
)
async def test_a_bad_stripe_signature_is_400_and_changes_nothing(shop: Shop, tamper: str) -> None:
    """Reliability #15 and #16."""
    me, order, intent = await paid_at_stripe(shop, "A-3-1")
    headers, body = shop.stripe_webhook("payment_intent.succeeded", {"id": intent}, "evt_15")
    moved = 0
    if tamper == "missing":
        headers = {}
    elif tamper == "garbled":
        headers = {"Stripe-Signature": "t=x,v1=nothing"}
    elif tamper == "flipped":
        body = body.replace(b'"evt_15"', b'"evt_16"')
    elif tamper in ("stale", "future"):  # signed now, arriving 301 s later / earlier
        moved = 301 if tamper == "stale" else -301
    else:
        at = int(shop.clock.now().timestamp())
        mac = hmac.new(b"whsec_wrong", f"{at}.".encode() + body, hashlib.sha256).hexdigest()
        headers = {"Stripe-Signature": f"t={at},v1={mac}"}
    shop.clock.advance(moved)
    answer = await shop.deliver(headers, body)
    shop.clock.advance(-moved)
    assert answer.status_code == 400
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert (await shop.order(me, order))["status"] == "payment_pending"
    assert await shop.tickets(me) == []


async def test_a_stripe_call_that_times_out_is_retried_with_the_same_key(shop: Shop) -> None:
    """Reliability #17: the first answer is lost; the retry finds the same intent."""
    me = await shop.buyer("retry")
    order = await shop.hold(me, "A-3-2")
    async with httpx.AsyncClient(base_url=shop.stripe_base) as http:
        await http.post("/_config/delay_next", json={"path": "/v1/payment_intents", "seconds": 2})
    started = await shop.pay(me, order, "stripe")
    intent = started["client_secret"].split("_secret_")[0]
    async with httpx.AsyncClient(base_url=shop.stripe_base, auth=(STRIPE_KEY, "")) as http:
        listed = (await http.get("/v1/payment_intents", params={"limit": 100})).json()["data"]
    mine = [i["id"] for i in listed if i["metadata"].get("order_id") == order["order_id"]]
    assert mine == [intent]
    again = await shop.pay(me, order, "stripe")  # the buyer reloads the page: the same one
    assert again["payment_id"] == started["payment_id"]
    assert again["client_secret"] == started["client_secret"]


async def test_a_late_stripe_payment_after_expiry_is_refunded_exactly_once(shop: Shop) -> None:
    me, order, intent = await paid_at_stripe(shop, "A-3-3")  # its webhook is late
    shop.clock.advance(TTL + 1)
    await shop.sweep()  # the order expires; cancelling its intent finds the money in
    assert (await shop.order(me, order))["status"] == "expired"
    assert await shop.stripe_refunds(intent) == [280000]
    late = shop.stripe_webhook("payment_intent.succeeded", {"id": intent}, "evt_late")
    assert (await shop.deliver(*late)).status_code == 200
    await shop.sweep()
    assert await shop.stripe_refunds(intent) == [280000]
    assert await shop.tickets(me) == []
    assert await shop.seat("A-3-3") == "available"


async def test_an_unpaid_stripe_order_that_expires_cancels_its_intent(shop: Shop) -> None:
    """Nothing can be charged for an order that ended: the intent is cancelled at Stripe."""
    me = await shop.buyer("gone")
    order = await shop.hold(me, "A-3-4")
    started = await shop.pay(me, order, "stripe")
    intent = started["client_secret"].split("_secret_")[0]
    shop.clock.advance(TTL + 1)
    await shop.sweep()
    async with httpx.AsyncClient(base_url=shop.stripe_base, auth=(STRIPE_KEY, "")) as http:
        found = await http.get(f"/v1/payment_intents/{intent}")
    assert found.json()["status"] == "canceled"
    late = await StripeBuyer(shop.stripe_base).pay(intent, "4242424242424242")
    assert "error" in late  # a cancelled intent takes no card
    assert (await shop.order(me, order))["status"] == "expired"


# --- LINE Pay -------------------------------------------------------------------------------


async def approved_at_linepay(shop: Shop, seat: str) -> tuple[dict[str, str], dict[str, Any], str]:
    """A buyer who approved on LINE Pay's page; the way back to us, not yet followed."""
    me = await shop.buyer("linepay")
    order = await shop.hold(me, seat)
    started = await shop.pay(me, order, "linepay")
    assert started["status"] == "pending"
    async with httpx.AsyncClient() as browser:
        page = await browser.get(started["redirect_url"], params={"action": "approve"})
    assert page.status_code == 302
    back = httpx.URL(page.headers["location"])
    assert back.path == "/api/payments/linepay/confirm"
    return me, order, f"{back.path}?{back.query.decode()}"


async def test_a_forged_linepay_redirect_is_not_a_payment(shop: Shop) -> None:
    """Reliability #18: wrong transactionId or orderId → 404, nothing confirmed; an amount
    in the query is ignored: LINE Pay is asked for the amount we stored."""
    me, order, back = await approved_at_linepay(shop, "B-1-1")
    query = dict(httpx.URL(back).params)
    transaction, reference = query["transactionId"], query["orderId"]
    for forged in (
        {"transactionId": "2026120299999999999", "orderId": reference},
        {"transactionId": transaction, "orderId": "00000000-0000-0000-0000-000000000000"},
        {"transactionId": transaction},
    ):
        answer = await shop.client.get("/api/payments/linepay/confirm", params=forged)
        assert answer.status_code in (400, 404), forged
        assert answer.headers["content-type"].startswith("application/problem+json")
    assert shop.linepay.transactions[transaction]["confirm_calls"] == 0
    assert (await shop.order(me, order))["status"] == "payment_pending"
    confirmed = await shop.client.get(f"{back}&amount=1")  # a forged amount: ignored
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["status"] == "succeeded"
    stored = shop.linepay.transactions[transaction]
    assert (stored["status"], stored["confirm_calls"]) == ("confirmed", 1)
    assert (await shop.order(me, order))["status"] == "completed"
    assert [t["seat_id"] for t in await shop.tickets(me)] == ["B-1-1"]
    again = await shop.client.get(back)  # the browser comes back twice
    assert again.json()["status"] == "succeeded"
    assert shop.linepay.transactions[transaction]["confirm_calls"] == 1


async def test_a_linepay_confirm_that_times_out_is_reconciled_by_the_check(shop: Shop) -> None:
    """Reliability #19: every confirm answer is lost after LINE Pay took the money; the
    buyer gets 503; the sweeper's check finds it paid; a repeated confirm is a no-op."""
    me, order, back = await approved_at_linepay(shop, "B-1-2")
    transaction = dict(httpx.URL(back).params)["transactionId"]
    for _ in range(3):  # the service's three tries
        shop.linepay.delay_next(f"/{transaction}/confirm", 1.5)
    answer = await shop.client.get(back)
    assert answer.status_code == 503
    assert answer.headers["content-type"].startswith("application/problem+json")

    await shop.sweep()  # reconciliation confirms again: 1152, and the check says paid
    assert (await shop.order(me, order))["status"] == "completed"
    assert [t["seat_id"] for t in await shop.tickets(me)] == ["B-1-2"]
    assert shop.linepay.transactions[transaction]["status"] == "confirmed"
    again = await shop.client.get(back)
    assert again.json()["status"] == "succeeded"
    assert len(await shop.tickets(me)) == 1


async def test_a_linepay_approval_after_expiry_takes_no_money(shop: Shop) -> None:
    """The buyer approves after the hold ran out: nothing is confirmed, nothing taken."""
    me = await shop.buyer("slow")
    order = await shop.hold(me, "B-1-3")
    started = await shop.pay(me, order, "linepay")
    shop.clock.advance(TTL + 1)
    await shop.sweep()
    assert (await shop.order(me, order))["status"] == "expired"
    async with httpx.AsyncClient() as browser:
        page = await browser.get(started["redirect_url"], params={"action": "approve"})
    back = httpx.URL(page.headers["location"])
    late = await shop.client.get(f"{back.path}?{back.query.decode()}")
    assert late.json()["status"] == "failed"
    transaction = back.params["transactionId"]
    assert shop.linepay.transactions[transaction]["confirm_calls"] == 0
    assert shop.linepay.transactions[transaction]["refunds"] == []


async def test_a_late_linepay_payment_after_expiry_is_refunded_exactly_once(shop: Shop) -> None:
    """The confirm took the money but its answers were lost, and the order expired before
    anyone asked again: the check finds the money, and it is refunded once."""
    me, order, back = await approved_at_linepay(shop, "B-1-4")
    transaction = dict(httpx.URL(back).params)["transactionId"]
    for _ in range(3):
        shop.linepay.delay_next(f"/{transaction}/confirm", 1.5)
    assert (await shop.client.get(back)).status_code == 503
    shop.clock.advance(TTL + 1)
    await shop.sweep()  # expired; settling its payment finds the money in: refunded
    assert shop.linepay.transactions[transaction]["refunds"] == [1200]
    await shop.sweep()
    assert shop.linepay.transactions[transaction]["refunds"] == [1200]
    assert (await shop.order(me, order))["status"] == "expired"
    assert await shop.tickets(me) == []
