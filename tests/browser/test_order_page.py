"""An order's page follows the order live: held, then paid, without reloading."""

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
)

pytestmark = pytest.mark.browser


def test_the_order_page_turns_paid_while_open(page: Page, site: Site) -> None:
    email = new_email()
    with site.api() as client:
        buyer = api_buyer(client, email)
        seats = available_seats(client, site.session_id, 2, area="A")
        order = client.post(
            "/api/orders", json={"session_id": site.session_id, "seat_ids": seats}, headers=buyer
        )
        assert order.status_code == 201, order.text
        order_id = order.json()["order_id"]

        sign_in(page, email, BUYER_PASSWORD, then=f"/orders/{order_id}")
        status = page.locator("#order").get_by_role("status")
        expect(status).to_have_text("Seats held")
        for seat_id in seats:
            expect(page.get_by_text(seat_id)).to_be_visible()
        shoot(page, "order")
        assert_accessible(page)

        paid = client.post(
            f"/api/orders/{order_id}/payments", json={"provider": "mock"}, headers=buyer
        )
        assert paid.status_code == 201, paid.text
    expect(status).to_have_text("Paid")
    expect(page.get_by_role("link", name="See my tickets")).to_be_visible()
    shoot(page, "order-paid")
    assert_accessible(page)
