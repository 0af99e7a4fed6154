"""A buyer creates an account, signs out, signs in again, and the home page knows them."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from .conftest import Site, assert_accessible, new_email, shoot, sign_up

pytestmark = pytest.mark.browser

PASSWORD = "an-account-password"


def test_sign_up_sign_out_and_sign_in_again(page: Page, site: Site) -> None:
    page.goto("/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Sessions on sale")
    expect(page.get_by_role("link", name="Choose seats").first).to_be_visible()
    shoot(page, "home")
    assert_accessible(page)

    page.goto("/signup")
    expect(page.get_by_role("heading", level=1)).to_have_text("Create an account")
    shoot(page, "signup")
    assert_accessible(page)

    email = new_email()
    sign_up(page, "Ada Buyer", email, PASSWORD)
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_text("Ada Buyer")).to_be_visible()
    expect(nav.get_by_role("link", name="My tickets")).to_be_visible()
    expect(nav.get_by_role("link", name="Organizer")).to_be_hidden()
    shoot(page, "home-signed-in")
    assert_accessible(page)

    nav.get_by_role("button", name="Sign out").click()
    expect(nav.get_by_role("link", name="Sign in")).to_be_visible()
    expect(nav.get_by_role("link", name="My tickets")).to_be_hidden()

    page.goto("/signin")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("Wrong email or password.")
    shoot(page, "signin-wrong-password")
    assert_accessible(page)

    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{site.base_url}/")
    expect(nav.get_by_text("Ada Buyer")).to_be_visible()


def test_an_email_taken_says_so(page: Page) -> None:
    email = new_email()
    sign_up(page, "First", email, PASSWORD)
    page.get_by_role("button", name="Sign out").click()

    page.goto("/signup")
    page.get_by_label("Your name").fill("Second")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create my account").click()
    expect(page.get_by_role("alert")).to_contain_text("An account with this email exists")
    expect(page).to_have_url(re.compile(r"/signup$"))
