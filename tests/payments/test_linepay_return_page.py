"""The buyer's browser back from LINE Pay lands on the order's page; API clients still
read the payment as JSON."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient

from openticket.adapters.memory import FakeClock, MemoryPasswordHasher
from openticket.entrypoints.bootstrap import build_container
from openticket.entrypoints.demo import seed_demo
from openticket.entrypoints.settings import Settings

from .linepay_server import LinePayServer

pytestmark = [pytest.mark.e2e, pytest.mark.linepay]

PASSWORD = "a-buyers-password"
CHANNEL_ID, CHANNEL_SECRET = "1656005556", "return-page-channel-secret"
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


@pytest.fixture
def linepay_server() -> Iterator[LinePayServer]:
    with LinePayServer(channel_id=CHANNEL_ID, channel_secret=CHANNEL_SECRET) as server:
        yield server


class Shop:
    """The platform with LINE Pay, a buyer, and the way back from LINE Pay's page."""

    def __init__(self, client: AsyncTestClient[Any], session_id: str) -> None:
        self.client = client
        self.session_id = session_id
        self.me: dict[str, str] = {}

    async def sign_up(self) -> None:
        login = {"email": "pat@example.com", "password": PASSWORD}
        registered = await self.client.post(
            "/api/auth/register", json=login | {"display_name": "Pat"}
        )
        assert registered.status_code == 201
        token = await self.client.post("/api/auth/token", json=login)
        self.me = {"Authorization": f"Bearer {token.json()['access_token']}"}

    async def at_linepay(self, seat: str, action: str) -> tuple[str, str]:
        """Hold ``seat``, start paying with LINE Pay, ``action`` on its page: the order and
        the address LINE Pay sends the browser back to (not followed yet)."""
        placed = await self.client.post(
            "/api/orders",
            json={"session_id": self.session_id, "seat_ids": [seat]},
            headers=self.me,
        )
        order_id: str = placed.json()["order_id"]
        started = await self.client.post(
            f"/api/orders/{order_id}/payments", json={"provider": "linepay"}, headers=self.me
        )
        assert started.status_code == 201, started.text
        async with httpx.AsyncClient() as browser:
            page = await browser.get(started.json()["redirect_url"], params={"action": action})
        back = httpx.URL(page.headers["location"])
        return order_id, f"{back.path}?{back.query.decode()}"

    async def status(self, order_id: str) -> str:
        answer = await self.client.get(f"/api/orders/{order_id}", headers=self.me)
        status: str = answer.json()["status"]
        return status


@pytest.fixture
async def shop(linepay_server: LinePayServer) -> AsyncIterator[Shop]:
    clock = FakeClock()
    settings = Settings(
        demo_password=PASSWORD,
        jwt_secret="linepay-return-page-signing-secret!!",
        rate_limit_per_ip=0,
        rate_limit_per_user=0,
        bot_defence=False,
        linepay_channel_id=CHANNEL_ID,
        linepay_channel_secret=CHANNEL_SECRET,
        linepay_api_base=linepay_server.base_url,
    )
    container = build_container(settings, clock=clock, password_hasher=MemoryPasswordHasher())
    demo = await seed_demo(container.app(), container.identity(), clock, PASSWORD)
    assert demo is not None
    async with AsyncTestClient(app=container.http_app()) as client:
        shop = Shop(client, str(demo.session_id))
        await shop.sign_up()
        yield shop


async def test_a_browser_back_from_linepay_lands_on_its_paid_order(
    shop: Shop, linepay_server: LinePayServer
) -> None:
    order_id, back = await shop.at_linepay("B-2-1", "approve")
    landed = await shop.client.get(back, headers={"Accept": BROWSER_ACCEPT}, follow_redirects=False)
    assert landed.status_code == 303
    assert landed.headers["location"] == f"/orders/{order_id}"
    assert await shop.status(order_id) == "completed"
    transaction = httpx.URL(back).params["transactionId"]
    assert linepay_server.transactions[transaction]["status"] == "confirmed"
    page = await shop.client.get(
        landed.headers["location"], headers={"Accept": BROWSER_ACCEPT}, follow_redirects=False
    )
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert f'data-order-id="{order_id}"' in page.text
    again = await shop.client.get(
        back, headers={"Accept": BROWSER_ACCEPT}, follow_redirects=False
    )  # back twice
    assert (again.status_code, again.headers["location"]) == (303, f"/orders/{order_id}")
    assert linepay_server.transactions[transaction]["confirm_calls"] == 1


async def test_an_api_client_back_from_linepay_reads_the_payment(shop: Shop) -> None:
    for accept, seat in (("application/json", "B-2-2"), ("*/*", "B-2-3")):
        order_id, back = await shop.at_linepay(seat, "approve")
        answer = await shop.client.get(back, headers={"Accept": accept})
        assert answer.status_code == 200, accept
        assert answer.headers["content-type"].startswith("application/json")
        assert (answer.json()["order_id"], answer.json()["status"]) == (order_id, "succeeded")


async def test_a_browser_that_cancelled_at_linepay_sees_its_failed_order(shop: Shop) -> None:
    order_id, back = await shop.at_linepay("B-2-4", "cancel")
    landed = await shop.client.get(back, headers={"Accept": BROWSER_ACCEPT}, follow_redirects=False)
    assert (landed.status_code, landed.headers["location"]) == (303, f"/orders/{order_id}")
    assert await shop.status(order_id) == "failed"


async def test_a_forged_return_is_a_problem_for_a_browser_too(shop: Shop) -> None:
    order_id, back = await shop.at_linepay("B-2-5", "approve")
    forged = httpx.URL(back).copy_set_param("transactionId", "2026120299999999999")
    answer = await shop.client.get(
        str(forged), headers={"Accept": BROWSER_ACCEPT}, follow_redirects=False
    )
    assert answer.status_code == 404
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert await shop.status(order_id) == "payment_pending"
