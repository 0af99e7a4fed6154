"""The buyer's pages and what they read: a ticket's QR code, the pages' shells."""

from __future__ import annotations

import io
import re
import uuid
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import pytest
import segno

from .conftest import Api, in_process
from .test_waiting_room import queued_sale

pytestmark = pytest.mark.e2e

SVG_NS = "{http://www.w3.org/2000/svg}"


async def bought(api: Api, who: dict[str, str], *seats: str) -> list[dict[str, str]]:
    """Hold ``seats``, pay with the mock; the buyer's tickets once they are issued."""
    placed = await api.client.post(
        "/api/orders", json={"session_id": api.session_id, "seat_ids": list(seats)}, headers=who
    )
    assert placed.status_code == 201, placed.text
    paid = await api.client.post(
        f"/api/orders/{placed.json()['order_id']}/payments", json={"provider": "mock"}, headers=who
    )
    assert paid.json()["status"] == "succeeded", paid.text
    tickets: list[dict[str, str]] = []

    async def issued() -> bool:
        tickets[:] = (await api.client.get("/api/me/tickets", headers=who)).json()["items"]
        return len(tickets) == len(seats)

    await api.eventually(issued)
    return tickets


def modules(svg: ET.Element) -> str:
    """The drawing of an SVG QR code: its path's outline."""
    path = svg.find(f"{SVG_NS}path")
    assert path is not None
    return path.attrib["d"]


@pytest.mark.production
async def test_a_buyer_reads_the_qr_code_of_each_of_their_tickets(api: Api) -> None:
    alice = await api.buyer("alice")
    tickets = await bought(api, alice, "B-2-1", "B-2-2")
    drawings = set()
    for ticket in tickets:
        answer = await api.client.get(
            f"/api/me/tickets/{ticket['ticket_id']}/qr.svg", headers=alice
        )
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("image/svg+xml")
        assert not answer.text.startswith("<?xml")
        svg = ET.fromstring(answer.text)  # noqa: S314 (this server's answer, a few kB)
        assert svg.tag == f"{SVG_NS}svg"
        title = svg.find(f"{SVG_NS}title")
        assert title is not None
        assert title.text == f"Ticket for seat {ticket['seat_id']}"
        # the drawing is the ticket's own code, the one the door scans
        reference = io.BytesIO()
        segno.make(ticket["qr_code"], error="m").save(reference, kind="svg", scale=8)
        expected = ET.fromstring(reference.getvalue())  # noqa: S314 (made just above)
        assert modules(svg) == modules(expected)
        drawings.add(modules(svg))
    assert len(drawings) == 2


@pytest.mark.production
async def test_nobody_else_reads_a_tickets_qr_code_but_an_admin(api: Api) -> None:
    alice, bob = await api.buyer("alice"), await api.buyer("bob")
    (ticket,) = await bought(api, alice, "B-3-1")
    path = f"/api/me/tickets/{ticket['ticket_id']}/qr.svg"
    for answer in (
        await api.client.get(path, headers=bob),
        await api.client.get(f"/api/me/tickets/{uuid.uuid4()}/qr.svg", headers=alice),
    ):
        assert answer.status_code == 404
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert answer.json()["code"] == "not_found"
        assert ticket["qr_code"] not in answer.text
    anonymous = await api.client.get(path)
    assert anonymous.status_code == 401
    assert anonymous.json()["code"] == "unauthorized"
    admin = await api.token("admin@openticket.local")
    assert (await api.client.get(path, headers=admin)).status_code == 200


async def test_the_ticket_read_is_the_owners_or_an_admins(api: Api) -> None:
    """The use case behind the QR code: ``get_ticket`` checks who asks."""
    from openticket.application.access import Requester
    from openticket.application.errors import NotFound
    from openticket.domain.identity import Role
    from openticket.domain.shared import TicketId, UserId

    if api.container is None:
        pytest.skip("reads the application in process")
    alice = await api.buyer("alice")
    (ticket,) = await bought(api, alice, "B-3-2")
    me = (await api.client.get("/api/me", headers=alice)).json()
    app = api.container.app()
    ticket_id = TicketId(uuid.UUID(ticket["ticket_id"]))
    owner = Requester(UserId(uuid.UUID(me["user_id"])))
    assert (await app.get_ticket(owner, ticket_id)).seat_id == "B-3-2"
    admin = Requester(UserId(uuid.uuid4()), frozenset({Role.ADMIN}))
    assert (await app.get_ticket(admin, ticket_id)).qr_code == ticket["qr_code"]
    with pytest.raises(NotFound):
        await app.get_ticket(Requester(UserId(uuid.uuid4())), ticket_id)
    with pytest.raises(NotFound):
        await app.get_ticket(owner, TicketId(uuid.uuid4()))


class _Page(HTMLParser):
    """What a page's HTML holds: its scripts, the ids of its elements, inline code."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[str] = []
        self.ids: dict[str, dict[str, str | None]] = {}
        self.inline = 0
        self.options: list[str | None] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if any(name.startswith("on") or name == "style" for name in found):
            self.inline += 1
        if tag == "script":
            self._in_script = True
            if found.get("src"):
                self.scripts.append(found["src"] or "")
        if tag == "option":
            self.options.append(found.get("value"))
        if found.get("id"):
            self.ids[found["id"] or ""] = {"tag": tag, **found}

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline += 1


async def page_of(api: Api, path: str) -> _Page:
    answer = await api.client.get(path, headers={"Accept": "text/html"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/html")
    assert "script-src 'self';" in answer.headers["content-security-policy"]
    parsed = _Page()
    parsed.feed(answer.text)
    assert parsed.inline == 0
    for script in parsed.scripts:
        loaded = await api.client.get(script)
        assert loaded.status_code == 200, script
        assert loaded.headers["content-type"].startswith("text/javascript"), script
    return parsed


@pytest.mark.production
async def test_the_session_page_offers_the_seat_map_and_the_servers_providers(api: Api) -> None:
    page = await page_of(api, f"/sessions/{api.session_id}")
    assert page.ids["seat-map"]["tag"] == "svg"
    assert page.ids["seat-map"]["aria-label"] == "Seat map"
    assert "disabled" in page.ids["hold"]
    assert page.ids["countdown"]["role"] == "timer"
    assert page.ids["provider"]["tag"] == "select"
    assert page.options == ["mock"]  # the embedded profile pays with the mock only
    assert "waiting-room" not in page.ids
    assert any(s.endswith("/js/session.js") for s in page.scripts)


STRIPE = {"stripe_api_key": "sk_test_page", "stripe_webhook_secret": "whsec_page"}


async def test_stripe_is_offered_with_its_publishable_key_and_lets_only_stripe_js_in(
    request: pytest.FixtureRequest,
) -> None:
    async with in_process(request, **STRIPE, stripe_publishable_key="pk_test_page") as api:
        answer = await api.client.get(f"/sessions/{api.session_id}")
        page = _Page()
        page.feed(answer.text)
    assert page.options == ["stripe"]  # the mock stands down once Stripe is configured
    assert page.ids["card-field"]["data-stripe-key"] == "pk_test_page"
    policy = answer.headers["content-security-policy"]
    assert "script-src 'self' https://js.stripe.com;" in policy
    assert "frame-src https://js.stripe.com https://hooks.stripe.com;" in policy
    assert page.inline == 0


async def test_without_a_publishable_key_the_pages_do_not_offer_stripe(
    request: pytest.FixtureRequest,
) -> None:
    async with in_process(request, **STRIPE, mock_payments="on") as api:
        page = await page_of(api, f"/sessions/{api.session_id}")
        answer = await api.client.get(f"/sessions/{api.session_id}")
    assert page.options == ["mock"]
    assert "card-field" not in page.ids
    assert "stripe" not in answer.headers["content-security-policy"]


async def test_a_challenged_sessions_page_shows_turnstile_with_the_site_key(
    request: pytest.FixtureRequest,
) -> None:
    turnstile = {"turnstile_secret": "0x-secret", "turnstile_site_key": "0x-site-key"}
    async with in_process(request, **turnstile) as api:
        challenged = await queued_sale(api, challenge_required=True)
        plain = await queued_sale(api)
        answer = await api.client.get(f"/sessions/{challenged}")
        page = _Page()
        page.feed(answer.text)
        unchallenged = await api.client.get(f"/sessions/{plain}")
    assert page.ids["challenge"]["data-sitekey"] == "0x-site-key"
    assert "challenge-widget" in page.ids
    policy = answer.headers["content-security-policy"]
    assert "script-src 'self' https://challenges.cloudflare.com;" in policy
    assert "frame-src https://challenges.cloudflare.com;" in policy
    assert page.inline == 0
    assert 'id="challenge"' not in unchallenged.text
    assert "cloudflare" not in unchallenged.headers["content-security-policy"]


async def test_without_a_site_key_a_challenged_session_says_joining_will_be_refused(
    request: pytest.FixtureRequest,
) -> None:
    async with in_process(request, turnstile_secret="0x-secret") as api:
        challenged = await queued_sale(api, challenge_required=True)
        answer = await api.client.get(f"/sessions/{challenged}")
    assert 'id="challenge"' not in answer.text
    assert "not set up to show" in answer.text
    assert "cloudflare" not in answer.headers["content-security-policy"]


async def test_a_queued_sessions_page_has_its_waiting_room(api: Api) -> None:
    events = (await api.client.get("/api/events")).json()["items"]
    sessions = (await api.client.get(f"/api/events/{events[0]['event_id']}")).json()["sessions"]
    (queued,) = [s for s in sessions if s["queue_enabled"]]
    page = await page_of(api, f"/sessions/{queued['session_id']}")
    for element in ("waiting-room", "join-queue", "queue-position", "queue-status"):
        assert element in page.ids, element


@pytest.mark.production
async def test_the_tickets_and_order_pages_are_shells_their_scripts_fill(api: Api) -> None:
    tickets = await page_of(api, "/tickets")
    assert tickets.ids["print-tickets"]["tag"] == "button"
    assert any(s.endswith("/js/tickets.js") for s in tickets.scripts)
    order_id = str(uuid.uuid4())
    order = await page_of(api, f"/orders/{order_id}")
    assert order.ids["order"]["data-order-id"] == order_id
    assert any(s.endswith("/js/order.js") for s in order.scripts)
    assert (await api.client.get("/orders/not-an-order")).status_code == 404


async def test_the_pages_scripts_import_only_modules_that_exist(api: Api) -> None:
    page = await page_of(api, f"/sessions/{api.session_id}")
    base = page.scripts[0].rsplit("/", 1)[0]
    seen: set[str] = set()
    waiting = [s.rsplit("/", 1)[1] for s in page.scripts]
    waiting += ["tickets.js", "order.js"]
    while waiting:
        name = waiting.pop()
        if name in seen:
            continue
        seen.add(name)
        source = await api.client.get(f"{base}/{name}")
        assert source.status_code == 200, name
        waiting += re.findall(r'from "\./([\w-]+\.js)"', source.text)
    assert {"api.js", "seatmap.js", "queue.js", "session.js"} <= seen
