"""The browser suite's fixtures: one ``openticket serve`` (embedded profile, demo data),
Debian's Chromium driven by Playwright, pages at phone and desktop sizes, screenshots
and an axe-core accessibility check.

Chromium is the system's (``/usr/bin/chromium``, installed by ``.ci/run``), never a
download. When it is missing the tests fail in CI and are skipped elsewhere, like a
missing service.

Playwright's sync API runs its own event loop in the test's thread: it is started per
module, so no pytest-asyncio test of another module ever runs while it is alive.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import attrs
import httpx
import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Error,
    Page,
    Response,
    sync_playwright,
)
from tests.conftest import (
    DEFAULT_DATABASE_URL,
    DEFAULT_NATS_URL,
    DEFAULT_REDIS_URL,
    _serving,
    _working,
    production_deployment,
    service_missing,
)

from openticket.testing.turnstile import TEST_SECRET_PASSES, TurnstileServer

CHROMIUM = os.environ.get("OPENTICKET_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"
"""Where ``shoot`` saves: ``build/screenshots/<name>-<phone|desktop>.png``."""

DEVICES: dict[str, dict[str, Any]] = {
    "phone": {
        "viewport": {"width": 390, "height": 844},
        "device_scale_factor": 2,
        "is_mobile": True,
        "has_touch": True,
    },
    "desktop": {"viewport": {"width": 1280, "height": 800}},
}
"""The two sizes every page is tried at (a phone held upright, a laptop)."""

QUEUE_ADMIT_PER_SECOND = 1
"""The waiting room lets one buyer in a second: a buyer behind others sees the line move."""

BLOCKING_IMPACTS = ("serious", "critical")
BUYER_PASSWORD = "a-long-password"
"""The password of every buyer the tests make."""


TURNSTILE_SITE_KEY = "1x00000000000000000000AA"
"""Cloudflare's published test site key (its widget always passes)."""


@attrs.frozen
class Site:
    """The served platform and what its demo set up."""

    base_url: str
    session_id: str
    """The demo session on sale now."""
    queued_session_id: str
    """The demo session sold through a waiting room."""
    demo_password: str
    turnstile: TurnstileServer
    """The loopback siteverify the server checks waiting-room challenges with."""

    def api(self) -> httpx.Client:
        """A client of the site's API (the tests' own set-up, not what a page does)."""
        return httpx.Client(base_url=self.base_url, timeout=10)


def _printed(pattern: str, printed: str) -> str:
    found = re.search(pattern, printed, re.MULTILINE)
    assert found, f"serve did not print {pattern!r}:\n{printed}"
    return found.group(1)


PROFILE = os.environ.get("OPENTICKET_BROWSER_PROFILE", "embedded")
"""``embedded`` (one ``serve`` in memory) or ``production``: ``serve`` and two workers on
PostgreSQL, Redis and NATS (tox env ``browser-production``)."""


@contextlib.contextmanager
def _production() -> Iterator[dict[str, str]]:
    """A production deployment's shared settings (its schema, prefixes), cleaned after."""
    urls = (
        os.environ.get("OPENTICKET_TEST_DATABASE_URL", DEFAULT_DATABASE_URL),
        os.environ.get("OPENTICKET_TEST_REDIS_URL", DEFAULT_REDIS_URL),
        os.environ.get("OPENTICKET_TEST_NATS_URL", DEFAULT_NATS_URL),
    )
    loop = asyncio.new_event_loop()
    deployment = production_deployment(*urls)
    try:
        env = loop.run_until_complete(deployment.__aenter__())
        try:
            yield env
        finally:
            loop.run_until_complete(deployment.__aexit__(None, None, None))
    finally:
        loop.close()


@contextlib.contextmanager
def _deployed(env: dict[str, str]) -> Iterator[tuple[str, str]]:
    """``serve --demo`` of ``env``'s profile; in production, with two workers beside it."""
    if PROFILE != "production":
        with _serving(env) as served:
            yield served
        return
    with _production() as shared:
        env = {**shared, **env}
        last = int(env["OPENTICKET_PARTITIONS"]) - 1
        with (
            _working(env, f"0-{last // 2}", "browser-1"),
            _working(env, f"{last // 2 + 1}-{last}", "browser-2"),
            _serving(env, demo=True) as served,
        ):
            yield served


@pytest.fixture(scope="session")
def site() -> Iterator[Site]:
    """``openticket serve`` on a free port with its demo sale (see ``PROFILE``).

    Rate limits and the bot defence are off (one loopback address plays every buyer, at
    a machine's pace), the waiting room admits one buyer a second, and the mock is the
    only payment provider.
    """
    with TurnstileServer(secret=TEST_SECRET_PASSES) as turnstile:
        env = {
            # challenge_required sessions: Cloudflare's test keys, verified on loopback
            "OPENTICKET_TURNSTILE_SECRET": TEST_SECRET_PASSES,
            "OPENTICKET_TURNSTILE_SITE_KEY": TURNSTILE_SITE_KEY,
            "OPENTICKET_TURNSTILE_VERIFY_URL": turnstile.siteverify_url,
            "OPENTICKET_RATE_LIMIT_PER_IP": "0",
            "OPENTICKET_RATE_LIMIT_PER_USER": "0",
            "OPENTICKET_BOT_DEFENCE": "false",
            "OPENTICKET_QUEUE_ADMIT_PER_SECOND": str(QUEUE_ADMIT_PER_SECOND),
            # the mock provider only, whatever the machine has configured
            "OPENTICKET_STRIPE_API_KEY": "",
            "OPENTICKET_LINEPAY_CHANNEL_ID": "",
            "OPENTICKET_LINEPAY_CHANNEL_SECRET": "",
        }
        with _deployed(env) as (base_url, printed):
            yield Site(
                base_url=base_url,
                session_id=_printed(r"^demo session on sale now: (\S+)$", printed),
                queued_session_id=_printed(
                    r"^demo session on sale through a waiting room: (\S+)$", printed
                ),
                demo_password=_printed(r"^demo accounts, password '([^']+)'", printed),
                turnstile=turnstile,
            )


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Chromium (the system's), for the tests of one module."""
    if not Path(CHROMIUM).is_file():
        service_missing("Chromium", CHROMIUM, FileNotFoundError(CHROMIUM))
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(params=list(DEVICES))
def device(request: pytest.FixtureRequest) -> str:
    """``phone`` or ``desktop``: every test runs at both sizes."""
    return str(request.param)


def other_device(device: str) -> str:
    """The size a test's second browser uses."""
    return "desktop" if device == "phone" else "phone"


OpenPage = Callable[..., Page]
"""``open_page(device=None)``: a new page in a browser context of its own."""


@pytest.fixture
def open_page(browser: Browser, site: Site, device: str) -> Iterator[OpenPage]:
    """Pages in fresh browser contexts (no shared storage), at the test's size or another.

    A script error, a Content-Security-Policy violation or an answer of 5xx on any of
    them fails the test.
    """
    contexts = []
    problems: list[str] = []

    def make(size: str | None = None) -> Page:
        context = browser.new_context(base_url=site.base_url, **DEVICES[size or device])
        context.set_default_timeout(10_000)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda e: problems.append(f"{page.url}: script error: {e}"))

        def console(message: ConsoleMessage) -> None:
            if "Content Security Policy" in message.text:
                problems.append(f"{page.url}: {message.text}")

        def answered(response: Response) -> None:
            if response.status >= 500:
                problems.append(f"{page.url}: {response.url} answered {response.status}")

        page.on("console", console)
        page.on("response", answered)
        return page

    yield make
    for context in contexts:
        context.close()
    assert not problems, "\n".join(problems)


@pytest.fixture
def page(open_page: OpenPage) -> Page:
    """A page at the test's size."""
    return open_page()


def size_of(page: Page) -> str:
    """``phone`` or ``desktop``, from the page's viewport."""
    viewport = page.viewport_size
    assert viewport is not None
    return "phone" if viewport["width"] < 600 else "desktop"


def shoot(page: Page, name: str) -> Path:
    """Save the whole page as ``build/screenshots/<name>-<phone|desktop>.png``.

    The page must fit its width: a page that scrolls sideways fails the test (a wide
    part, as the seat map, scrolls inside a box of its own).
    """
    overflow = page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 1, f"{page.url} scrolls sideways by {overflow} px at {size_of(page)} width"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}-{size_of(page)}.png"
    page.screenshot(path=str(path), full_page=True, animations="disabled")
    return path


_AXE = Axe()


def assert_accessible(page: Page) -> None:
    """axe-core over the page as it is now: no violation of impact serious or critical."""
    try:
        results = _AXE.run(page)
    except Error as e:  # pragma: no cover - a page that forbids the check is a failure
        pytest.fail(f"axe-core could not run on {page.url}: {e}")
    blocking = [v for v in results.response["violations"] if v["impact"] in BLOCKING_IMPACTS]
    if not blocking:
        return
    lines = [f"{page.url} ({size_of(page)}): {len(blocking)} serious or critical violations"]
    for violation in blocking:
        lines.append(
            f"- {violation['id']} ({violation['impact']}): {violation['help']}"
            f" [{violation['helpUrl']}]"
        )
        for node in violation["nodes"][:5]:
            html = " ".join(node["html"].split())
            lines.append(f"    {', '.join(map(str, node['target']))}: {html[:160]}")
        if len(violation["nodes"]) > 5:
            lines.append(f"    … and {len(violation['nodes']) - 5} more")
    pytest.fail("\n".join(lines), pytrace=False)


def new_email(who: str = "buyer") -> str:
    """An address no account has yet."""
    return f"{who}-{uuid.uuid4().hex[:12]}@example.com"


def sign_up(page: Page, name: str, email: str, password: str) -> None:
    """Create a buyer's account on ``/signup``; the page lands on the home page."""
    page.goto("/signup")
    page.get_by_label("Your name").fill(name)
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Create my account").click()
    page.wait_for_url(lambda url: urlsplit(url).path == "/")


def sign_in(page: Page, email: str, password: str, then: str = "/") -> None:
    """Sign in on ``/signin`` and go on to ``then`` (the tab keeps the token)."""
    page.goto(f"/signin?next={then}")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: urlsplit(url).path == then)


def api_buyer(client: httpx.Client, email: str | None = None) -> dict[str, str]:
    """A new buyer's account (``BUYER_PASSWORD``) made over the API; their
    ``Authorization`` header."""
    email = email or new_email()
    made = client.post(
        "/api/auth/register",
        json={"email": email, "password": BUYER_PASSWORD, "display_name": "Set-up buyer"},
    )
    assert made.status_code == 201, made.text
    token = client.post("/api/auth/token", json={"email": email, "password": BUYER_PASSWORD})
    assert token.status_code == 200, token.text
    return {"Authorization": f"Bearer {token.json()['access_token']}"}


def available_seats(client: httpx.Client, session_id: str, count: int, area: str) -> list[str]:
    """The first ``count`` available seats of ``area``, all in one row."""
    answer = client.get(f"/api/sessions/{session_id}/seats")
    assert answer.status_code == 200, answer.text
    rows: dict[str, list[str]] = {}
    for seat in answer.json()["items"]:
        if seat["area_id"] == area and seat["status"] == "available":
            rows.setdefault(seat["row"], []).append(seat["seat_id"])
    for seats in rows.values():
        if len(seats) >= count:
            return seats[:count]
    raise AssertionError(f"no row of area {area} has {count} seats available")
