"""A buyer picks two seats on the map, pays with the mock and sees two QR tickets; a
second browser on the same session sees those seats turn held, then sold, live."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Locator, Page, expect

from .conftest import (
    BUYER_PASSWORD,
    OpenPage,
    Site,
    assert_accessible,
    available_seats,
    new_email,
    other_device,
    shoot,
    sign_up,
)

pytestmark = pytest.mark.browser

LIVE = 5_000
"""How long a change may take to reach another browser (ms)."""


def seat(page: Page, seat_id: str) -> Locator:
    """A seat of the map, by what a screen reader announces."""
    return page.get_by_role("button", name=re.compile(rf"^Seat {re.escape(seat_id)},"))


def status_of(page: Page, seat_id: str) -> Locator:
    """A seat of the map, by the contract's data attribute (whatever its status)."""
    return page.locator(f'[data-seat-id="{seat_id}"]')


def open_session(page: Page, session_id: str) -> None:
    """The session's page, its seat map drawn."""
    page.goto(f"/sessions/{session_id}")
    seat_map = page.get_by_role("group", name="Seat map").or_(
        page.get_by_role("application", name="Seat map")
    )
    expect(seat_map).to_be_visible()


def hold_seats(buyer: Page, picked: list[str]) -> None:
    """Pick the seats on the map and hold them; the countdown runs."""
    hold = buyer.get_by_role("button", name="Hold seats")
    expect(hold).to_be_disabled()
    for seat_id in picked:
        seat(buyer, seat_id).click()
        expect(seat(buyer, seat_id)).to_have_attribute("aria-pressed", "true")
    expect(hold).to_be_enabled()
    shoot(buyer, "session-picked")
    hold.click()
    countdown = buyer.locator("#countdown")
    expect(countdown).to_have_attribute("role", "timer")
    expect(countdown).to_have_text(re.compile(r"\d+:\d\d"))


def pay_with_the_mock(buyer: Page) -> None:
    """Choose the mock provider and pay; the page says so or shows the tickets."""
    pay_with = buyer.get_by_label("Pay with")
    expect(pay_with).to_have_id("provider")
    offered = pay_with.locator("option").evaluate_all("options => options.map(o => o.value)")
    assert offered == ["mock"], f"the embedded profile pays with the mock only: {offered}"
    pay_with.select_option("mock")
    buyer.get_by_role("button", name="Pay", exact=True).click()
    paid = buyer.get_by_text("Paid", exact=True).or_(buyer.locator(".ticket"))
    expect(paid.first).to_be_visible()
    if not re.search(r"/tickets$", buyer.url):
        shoot(buyer, "session-paid")
        buyer.get_by_role("link", name="See my tickets").click()
    buyer.wait_for_url(re.compile(r"/tickets$"))


def see_qr_tickets(buyer: Page, picked: list[str]) -> None:
    """The tickets page lists one ticket per seat, each with its QR code shown."""
    tickets = buyer.locator(".ticket")
    expect(tickets).to_have_count(len(picked))
    for seat_id in picked:
        qr = buyer.get_by_role("img", name=f"QR code for seat {seat_id}")
        expect(qr).to_be_visible()
        expect(qr).to_have_attribute("src", re.compile(r"^blob:"))
        qr.evaluate("img => img.decode()")
        assert qr.evaluate("img => img.naturalWidth") > 0, f"the QR code of {seat_id} is empty"
        expect(tickets.filter(has=qr)).to_have_attribute("data-ticket-id", re.compile(r"\S"))
    expect(buyer.get_by_role("button", name="Print tickets")).to_be_visible()


def test_buy_two_seats_while_another_browser_watches(
    open_page: OpenPage, site: Site, device: str
) -> None:
    with site.api() as client:
        picked = available_seats(client, site.session_id, 2, area="B")

    watcher = open_page(other_device(device))
    open_session(watcher, site.session_id)
    expect(watcher.get_by_role("link", name="Sign in to buy")).to_be_visible()
    for seat_id in picked:
        expect(status_of(watcher, seat_id)).to_have_attribute("data-status", "available")
    area, row, number = picked[0].split("-")
    announced = f"Seat {picked[0]}, area {area} row {row} number {number}, TWD 1,200.00"
    expect(seat(watcher, picked[0])).to_have_attribute("aria-label", f"{announced}, available")
    shoot(watcher, "session-signed-out")
    assert_accessible(watcher)

    buyer = open_page()
    sign_up(buyer, "Grace Buyer", new_email(), BUYER_PASSWORD)
    open_session(buyer, site.session_id)
    shoot(buyer, "session")
    assert_accessible(buyer)

    hold_seats(buyer, picked)
    for seat_id in picked:
        expect(status_of(watcher, seat_id)).to_have_attribute("data-status", "held", timeout=LIVE)
    summary = buyer.locator("main").get_by_text(re.compile("|".join(picked)))
    expect(summary.first).to_be_visible()
    expect(buyer.get_by_role("button", name="Cancel order")).to_be_visible()
    shoot(buyer, "session-held")
    assert_accessible(buyer)
    shoot(watcher, "session-watching-held")

    pay_with_the_mock(buyer)
    for seat_id in picked:
        expect(status_of(watcher, seat_id)).to_have_attribute("data-status", "sold", timeout=LIVE)
    expect(seat(watcher, picked[0])).to_have_attribute("aria-label", f"{announced}, sold")
    shoot(watcher, "session-watching-sold")

    see_qr_tickets(buyer, picked)
    shoot(buyer, "tickets")
    assert_accessible(buyer)


def test_a_seat_held_elsewhere_leaves_the_selection(
    open_page: OpenPage, site: Site, device: str
) -> None:
    with site.api() as client:
        first, second = available_seats(client, site.session_id, 2, area="B")
    buyers = [open_page(), open_page(other_device(device))]
    for n, page in enumerate(buyers):
        sign_up(page, f"Buyer {n}", new_email(), BUYER_PASSWORD)
        open_session(page, site.session_id)
    slow, fast = buyers
    seat(slow, first).click()
    seat(slow, second).click()
    expect(seat(slow, first)).to_have_attribute("aria-pressed", "true")

    seat(fast, first).click()
    fast.get_by_role("button", name="Hold seats").click()
    expect(fast.locator("#countdown")).to_be_visible()

    expect(status_of(slow, first)).to_have_attribute("data-status", "held", timeout=LIVE)
    expect(seat(slow, first)).not_to_have_attribute("aria-pressed", "true")
    expect(seat(slow, second)).to_have_attribute("aria-pressed", "true")
    expect(slow.get_by_role("status").filter(has_text=first)).to_be_visible()
    fast.get_by_role("button", name="Cancel order").click()
    expect(status_of(slow, first)).to_have_attribute("data-status", "available", timeout=LIVE)


def test_the_picker_keeps_to_the_per_order_cap_from_the_keyboard_too(
    page: Page, site: Site
) -> None:
    with site.api() as client:
        cap = client.get(f"/api/sessions/{site.session_id}").json()["max_seats_per_order"]
        seats = available_seats(client, site.session_id, cap + 1, area="B")
    sign_up(page, "Keyboard Buyer", new_email(), BUYER_PASSWORD)
    open_session(page, site.session_id)

    for n, seat_id in enumerate(seats[:cap]):
        seat(page, seat_id).press("Enter" if n % 2 else "Space")
        expect(seat(page, seat_id)).to_have_attribute("aria-pressed", "true")
    one_too_many = seat(page, seats[cap])
    one_too_many.press("Enter")
    expect(one_too_many).not_to_have_attribute("aria-pressed", "true")
    expect(page.get_by_role("status").filter(has_text=str(cap))).to_be_visible()
    shoot(page, "session-cap")

    seat(page, seats[0]).press("Space")
    expect(seat(page, seats[0])).not_to_have_attribute("aria-pressed", "true")
    one_too_many.press("Enter")
    expect(one_too_many).to_have_attribute("aria-pressed", "true")
