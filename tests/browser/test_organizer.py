"""An organizer sets up a sale in the browser: a venue from a seat-map JSON (a broken
one first), an event, a price category and a session, then opens its dashboard."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import Locator, Page, expect

from .conftest import Site, api_buyer, assert_accessible, shoot, sign_in

pytestmark = pytest.mark.browser

SEAT_MAP = {
    "areas": [
        {
            "area_id": "S",
            "name": "Stalls",
            "rows": [{"row": "1", "seats": [1, 2, 3, 4]}, {"row": "2", "seats": [1, 2, 3, 4]}],
        },
        {"area_id": "G", "name": "Gallery", "rows": [{"row": "1", "seats": [1, 2, 3, 4]}]},
    ]
}
SEATS = 12
LIVE = 5_000
"""How long a sale may take to reach the dashboard (ms)."""


def section(page: Page, heading: str) -> Locator:
    """The part of the page under the heading ``heading`` (its form and messages)."""
    return page.locator("section").filter(has=page.get_by_role("heading", name=heading, exact=True))


def submit(part: Locator) -> None:
    """Send the section's form with its (only) submit button."""
    part.locator("button[type=submit], input[type=submit]").click()


def fill_or_choose(field: Locator, value: str) -> None:
    """Type ``value`` in a text input, or choose it in a select."""
    if field.evaluate("e => e.tagName") == "SELECT":
        field.select_option(value)
    else:
        field.fill(value)


def choose(select: Locator, text: str) -> None:
    """Choose the option whose text starts with ``text`` (it may say more, as a count)."""
    option = select.locator("option", has_text=re.compile(rf"^{re.escape(text)}\b"))
    expect(option).to_have_count(1)
    select.select_option(option.get_attribute("value"))


def local(when: datetime) -> str:
    """A ``datetime-local`` input's value."""
    return when.strftime("%Y-%m-%dT%H:%M")


def create_venue(page: Page, name: str) -> None:
    """A venue from a seat-map JSON; a broken JSON typed in first, which the page
    refuses, then a file that fills the box."""
    venue = section(page, "Create a venue")
    venue.get_by_label("Venue name").fill(name)
    venue.get_by_label("City").fill("Tainan")
    seat_map = venue.get_by_label("Seat map (JSON)")
    expect(seat_map).to_have_id("seat-map-json")
    seat_map.fill('{"areas": [')
    submit(venue)
    expect(venue.get_by_role("alert")).to_have_text(re.compile(r"\S"))
    expect(venue.get_by_text("Venue created")).to_have_count(0)
    shoot(page, "organizer-venue-error")
    assert_accessible(page)

    venue.get_by_label("Or upload a JSON file").set_input_files(
        files=[
            {
                "name": "hall.json",
                "mimeType": "application/json",
                "buffer": json.dumps(SEAT_MAP, indent=2).encode(),
            }
        ]
    )
    expect(seat_map).to_have_value(re.compile(r'"Stalls"'))
    submit(venue)
    expect(venue.get_by_role("status")).to_contain_text("Venue created")


def create_event(page: Page, venue_name: str, name: str) -> None:
    """An event at the venue."""
    event = section(page, "Create an event")
    choose(event.get_by_label("Venue", exact=True), venue_name)
    event.get_by_label("Event name").fill(name)
    event.get_by_label("Description").fill("Chamber music")
    submit(event)
    expect(event.get_by_role("status")).to_have_text(re.compile(r"\S"))


def add_price_category(page: Page, event_name: str) -> None:
    """One price for both areas of the venue."""
    category = section(page, "Add a price category")
    choose(category.get_by_label("Event", exact=True), event_name)
    category.get_by_label("Category name").fill("Everywhere")
    areas = category.get_by_label("Areas")
    if areas.count() == 1 and areas.evaluate("e => e.tagName") in {"INPUT", "TEXTAREA"}:
        areas.fill("S, G")
    else:
        category.get_by_role("checkbox", name=re.compile("Stalls|^S$")).check()
        category.get_by_role("checkbox", name=re.compile("Gallery|^G$")).check()
    category.get_by_label("Price", exact=True).fill("950")
    fill_or_choose(category.get_by_label("Currency"), "TWD")
    category.get_by_label("Quota").fill(str(SEATS))
    submit(category)
    expect(category.get_by_role("status")).to_have_text(re.compile(r"\S"))


def create_session(page: Page, event_name: str) -> Locator:
    """A session on sale from now on, without a waiting room; the section it is in."""
    now = datetime.now(UTC).astimezone()
    session = section(page, "Create a session")
    choose(session.get_by_label("Event", exact=True), event_name)
    session.get_by_label("Starts").fill(local(now + timedelta(days=20)))
    session.get_by_label("Ends").fill(local(now + timedelta(days=20, hours=2)))
    session.get_by_label("Sale opens").fill(local(now - timedelta(minutes=5)))
    session.get_by_label("Sale closes").fill(local(now + timedelta(days=19)))
    expect(session.get_by_label("Sell through a waiting room")).not_to_be_checked()
    session.get_by_label("Seats per order").fill("4")
    submit(session)
    expect(session.get_by_role("status")).to_have_text(re.compile(r"\S"))
    return session


def test_organizer_sets_up_a_sale(page: Page, site: Site) -> None:
    sign_in(page, "organizer@openticket.local", site.demo_password, then="/organizer")
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    shoot(page, "organizer")
    assert_accessible(page)
    venue_name = f"Hall {uuid.uuid4().hex[:6]}"
    event_name = f"{venue_name} opening night"

    create_venue(page, venue_name)
    create_event(page, venue_name, event_name)
    add_price_category(page, event_name)
    session = create_session(page, event_name)
    shoot(page, "organizer-session-created")
    assert_accessible(page)

    public = session.get_by_role("link", name="Open the public page")
    href = public.get_attribute("href")
    assert href is not None
    assert re.search(r"/sessions/[0-9a-f-]{36}$", href), href
    expect(page.get_by_role("heading", name="Your sessions")).to_be_visible()

    session.get_by_role("link", name="Open the sales dashboard").click()
    page.wait_for_url(re.compile(r"/organizer/sessions/[0-9a-f-]{36}$"))
    expect(page.locator("#stat-available")).to_have_text(str(SEATS))
    for stat in ("held", "sold", "queue"):
        expect(page.locator(f"#stat-{stat}")).to_have_text("0")
    expect(page.locator("#stat-orders-per-minute")).to_have_text(re.compile(r"^\s*0"))
    expect(page.locator("svg[role=img][aria-label]")).to_be_visible()
    shoot(page, "organizer-dashboard")
    assert_accessible(page)

    session_id = href.rsplit("/", 1)[1]
    with site.api() as client:
        buyer = api_buyer(client)
        order = client.post(
            "/api/orders", json={"session_id": session_id, "seat_ids": ["S-1-1"]}, headers=buyer
        )
        assert order.status_code == 201, order.text
        expect(page.locator("#stat-held")).to_have_text("1", timeout=LIVE)
        expect(page.locator("#stat-available")).to_have_text(str(SEATS - 1))
        paid = client.post(
            f"/api/orders/{order.json()['order_id']}/payments",
            json={"provider": "mock"},
            headers=buyer,
        )
        assert paid.status_code == 201, paid.text
    expect(page.locator("#stat-sold")).to_have_text("1", timeout=LIVE)
    expect(page.locator("#stat-held")).to_have_text("0")

    page.goto(href)
    expect(page.locator("[data-seat-id]")).to_have_count(SEATS)
    expect(page.locator('[data-seat-id="G-1-4"]')).to_have_attribute("data-status", "available")
    expect(page.locator('[data-seat-id="S-1-1"]')).to_have_attribute("data-status", "sold")


def test_others_are_told_the_organizer_pages_are_not_theirs(page: Page, site: Site) -> None:
    sign_in(page, "staff@openticket.local", site.demo_password, then="/organizer")
    expect(page.get_by_text("Setting up a sale is for organizers")).to_be_visible()
    expect(page.get_by_label("Venue name")).to_be_hidden()
    assert_accessible(page)
