"""A session sold through a waiting room: the buyer joins behind others, watches their
place move up without reloading, is let in, and holds seats with the admission."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import Page, expect

from .conftest import (
    BUYER_PASSWORD,
    QUEUE_ADMIT_PER_SECOND,
    Site,
    api_buyer,
    assert_accessible,
    available_seats,
    new_email,
    shoot,
    sign_up,
)

pytestmark = pytest.mark.browser

AHEAD = 4
"""Buyers who join just before the one in the browser."""


def _number(text: str) -> int | None:
    found = re.search(r"\d+", text)
    return int(found.group()) if found else None


def test_queue_position_moves_up_to_admission(page: Page, site: Site) -> None:
    sign_up(page, "Queue Buyer", new_email(), BUYER_PASSWORD)
    page.goto(f"/sessions/{site.queued_session_id}")
    room = page.locator("#waiting-room")
    join = room.get_by_role("button", name="Join the waiting room")
    expect(join).to_be_visible()
    shoot(page, "session-queue")
    assert_accessible(page)

    with site.api() as client:
        for _ in range(AHEAD):
            joined = client.post(
                f"/api/sessions/{site.queued_session_id}/queue", headers=api_buyer(client)
            )
            assert joined.status_code == 201, joined.text
        wanted = available_seats(client, site.queued_session_id, 1, area="A")
    join.click()

    position = page.locator("#queue-position")
    status = page.locator("#queue-status")
    expect(status).to_contain_text("waiting", ignore_case=True)
    expect(position).to_have_text(re.compile(r"\d"))
    hold = page.get_by_role("button", name="Hold seats")
    assert not (hold.is_visible() and hold.is_enabled()), "seats can be held before admission"
    shoot(page, "session-queue-waiting")
    assert_accessible(page)

    seen: list[int] = []
    deadline = time.monotonic() + AHEAD / QUEUE_ADMIT_PER_SECOND + 10
    while "admitted" not in status.inner_text().lower() and time.monotonic() < deadline:
        shown = _number(position.inner_text())
        if shown is not None and (not seen or shown != seen[-1]):
            seen.append(shown)
        page.wait_for_timeout(100)
    expect(status).to_contain_text("admitted", ignore_case=True)
    assert seen, "no position was shown while waiting"
    assert seen == sorted(seen, reverse=True), f"the position went back: {seen}"
    assert len(seen) >= 2, f"the position never moved before admission: {seen}"
    shoot(page, "session-queue-admitted")
    assert_accessible(page)

    page.get_by_role("button", name=re.compile(rf"^Seat {wanted[0]},")).click()
    hold.click()
    expect(page.locator("#countdown")).to_have_text(re.compile(r"\d+:\d\d"))
