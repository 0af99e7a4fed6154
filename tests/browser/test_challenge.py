"""A sale that asks for a human check before its waiting room: the page shows Turnstile's
widget, joins only with the token it gives, and the server verifies that token.

Cloudflare's script cannot be reached from the test machines: the browser is given a
stand-in at its address (as the payment tests speak to loopback Stripe and LINE Pay)
that draws one button and hands the page a token when it is pressed. The server checks
the token with the loopback siteverify the site runs.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from playwright.sync_api import Page, Route, expect

from openticket.testing.turnstile import DUMMY_TOKEN

from .conftest import BUYER_PASSWORD, Site, assert_accessible, new_email, shoot, sign_up

pytestmark = pytest.mark.browser

STAND_IN = f"""
window.turnstile = {{
  render(element, options) {{
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = "I am a person";
    button.addEventListener("click", () => options.callback("{DUMMY_TOKEN}"));
    element.append(button);
    return "widget-1";
  }},
  reset() {{}},
}};
"""
"""Turnstile's explicit-render API, as much of it as the page uses."""


def _challenged_sale(client: httpx.Client, site: Site) -> str:
    """A venue, an event, a price and a session with ``challenge_required``; its id."""
    token = client.post(
        "/api/auth/token",
        json={"email": "organizer@openticket.local", "password": site.demo_password},
    )
    assert token.status_code == 200, token.text
    organizer = {"Authorization": f"Bearer {token.json()['access_token']}"}

    def made(path: str, body: dict[str, object]) -> dict[str, object]:
        answer = client.post(path, json=body, headers=organizer)
        assert answer.status_code == 201, answer.text
        created: dict[str, object] = answer.json()
        return created

    seat_map = {
        "areas": [{"area_id": "H", "name": "Hall", "rows": [{"row": "1", "seats": [1, 2, 3]}]}]
    }
    venue = made(
        "/api/venues", {"name": "Checked hall", "address": {"city": "Taipei"}, "seat_map": seat_map}
    )
    event = made(
        "/api/events", {"venue_id": venue["venue_id"], "name": "Checked show", "description": ""}
    )
    made(
        f"/api/events/{event['event_id']}/price-categories",
        {"name": "Hall", "area_ids": ["H"], "price": {"amount": "500.00", "currency": "TWD"}},
    )
    now = datetime.now(UTC)
    session = made(
        f"/api/events/{event['event_id']}/sessions",
        {
            "start_time": (now + timedelta(days=7)).isoformat(),
            "end_time": (now + timedelta(days=7, hours=2)).isoformat(),
            "sale_start_time": (now - timedelta(minutes=1)).isoformat(),
            "sale_end_time": (now + timedelta(days=6)).isoformat(),
            "queue_enabled": True,
            "challenge_required": True,
        },
    )
    return str(session["session_id"])


def test_the_waiting_room_joins_only_with_a_solved_human_check(page: Page, site: Site) -> None:
    with site.api() as client:
        session_id = _challenged_sale(client, site)

    def stand_in(route: Route) -> None:
        route.fulfill(status=200, content_type="text/javascript", body=STAND_IN)

    page.route("https://challenges.cloudflare.com/**", stand_in)
    sign_up(page, "Checked Buyer", new_email(), BUYER_PASSWORD)
    page.goto(f"/sessions/{session_id}")
    check = page.get_by_role("button", name="I am a person")
    expect(check).to_be_visible()
    join = page.get_by_role("button", name="Join the waiting room")
    checked_before = len(site.turnstile.calls)

    join.click()  # not solved yet: the page says so and joins nobody
    expect(page.locator("#queue-error")).to_contain_text("human check")
    assert len(site.turnstile.calls) == checked_before  # nothing was sent to be checked
    shoot(page, "session-challenge")
    assert_accessible(page)

    check.click()
    join.click()
    expect(page.locator("#queue-status")).to_contain_text("admitted", ignore_case=True)
    checked = site.turnstile.calls[checked_before:]
    assert [c["response"] for c in checked] == [DUMMY_TOKEN]  # the widget's token, once
    expect(page.locator("#challenge")).to_be_hidden()
