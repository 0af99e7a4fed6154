"""Door staff check a ticket in: the first time it is let in, the second time refused."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from .conftest import (
    BUYER_PASSWORD,
    Site,
    api_buyer,
    assert_accessible,
    available_seats,
    new_email,
    shoot,
    sign_in,
    sign_up,
)

pytestmark = pytest.mark.browser


def bought_ticket(site: Site) -> str:
    """A ticket of the demo session, bought over the API; the code on it."""
    with site.api() as client:
        buyer = api_buyer(client)
        seats = available_seats(client, site.session_id, 1, area="A")
        order = client.post(
            "/api/orders", json={"session_id": site.session_id, "seat_ids": seats}, headers=buyer
        )
        assert order.status_code == 201, order.text
        paid = client.post(
            f"/api/orders/{order.json()['order_id']}/payments",
            json={"provider": "mock"},
            headers=buyer,
        )
        assert paid.status_code == 201, paid.text
        tickets = client.get("/api/me/tickets", headers=buyer)
        assert tickets.status_code == 200, tickets.text
        (ticket,) = tickets.json()["items"]
        return str(ticket["qr_code"])


def test_staff_check_a_ticket_in_once(page: Page, site: Site) -> None:
    code = bought_ticket(site)
    sign_in(page, "staff@openticket.local", site.demo_password, then="/staff/check-in")
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    shoot(page, "check-in")
    assert_accessible(page)

    result = page.locator("#check-in-result")
    page.get_by_label("QR code").fill(code)
    page.get_by_role("button", name="Check in").click()
    expect(result).to_contain_text("Checked in")
    expect(result).to_have_attribute("role", "status")
    shoot(page, "check-in-done")
    assert_accessible(page)

    page.get_by_label("QR code").fill(code)
    page.get_by_role("button", name="Check in").click()
    expect(result).to_contain_text("Already used")
    shoot(page, "check-in-already-used")

    page.get_by_label("QR code").fill("not-a-ticket-code")
    page.get_by_role("button", name="Check in").click()
    expect(result).to_contain_text("Unknown ticket")


def test_a_buyer_gets_no_check_in_form(page: Page) -> None:
    sign_up(page, "Not Staff", new_email(), BUYER_PASSWORD)
    page.goto("/staff/check-in")
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    expect(page.get_by_text("Checking tickets in is for door staff")).to_be_visible()
    expect(page.get_by_role("button", name="Check in")).to_be_hidden()
