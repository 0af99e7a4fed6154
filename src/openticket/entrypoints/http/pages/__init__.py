"""The web pages: what a buyer, an organizer and door staff open in a browser.

``buyer.py``, ``organizer.py`` and ``staff.py`` hold each one's pages; this module
what they share: the template engine, the assets' address, the security policy.

Server-rendered with Jinja (``../templates/``), each page a shell of semantic HTML
that small JavaScript modules (``../static/web/js/``) bring to life over the same API
and live feeds every other client uses. No front-end build and nothing from a CDN:
the files ship in the package and are served at ``/assets/<version>/``, a new
release being a new URL, so browsers may keep them for a day.

Security (``docs/web.md``):

- The bearer token lives in the tab's ``sessionStorage``, never in a cookie, so a
  page of another site cannot make the browser send it (no CSRF to defend against);
  it never goes in a URL except the WebSocket query api.md specifies.
- Every page carries ``PAGE_CSP``: scripts and styles from this server only, no
  inline script, no framing; with Stripe configured, Stripe.js and its frames too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from litestar import Router
from litestar.datastructures import CacheControlHeader
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Template
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig

from openticket._version import __version__
from openticket.application.ports.clock import Clock
from openticket.domain.catalog import Session

TEMPLATES = Path(__file__).parent.parent / "templates"
WEB_ASSETS = Path(__file__).parent.parent / "static" / "web"
ASSETS_PATH = f"/assets/{__version__}"
"""Where the pages' scripts and styles are served; the release is part of the path."""

_TURNSTILE = "https://challenges.cloudflare.com"


def page_csp(*, stripe: bool = False, turnstile: bool = False) -> str:
    """A page's Content-Security-Policy: this server only, plus what it must embed.

    ``stripe``: Stripe.js, its frames and API, as Stripe requires for its card form;
    ``turnstile``: Cloudflare Turnstile's script and frame, for the waiting room's
    challenge. Never an inline script, never ``eval``.
    """
    script, img, connect, frame = ["'self'"], ["'self'", "blob:", "data:"], ["'self'"], []
    if stripe:
        script.append("https://js.stripe.com")
        img.append("https://*.stripe.com")
        connect.append("https://api.stripe.com")
        frame += ["https://js.stripe.com", "https://hooks.stripe.com"]
    if turnstile:
        script.append(_TURNSTILE)
        frame.append(_TURNSTILE)
    return "; ".join(
        [
            "default-src 'none'",
            f"script-src {' '.join(script)}",
            "style-src 'self'",
            f"img-src {' '.join(img)}",
            f"connect-src {' '.join(connect)}",
            *([f"frame-src {' '.join(frame)}"] if frame else []),
            "font-src 'self'",
            "manifest-src 'self'",
            "form-action 'self'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
        ]
    )


PAGE_CSP = page_csp()
"""A page loads its own scripts and styles from this server and talks to it only."""

MAX_LISTED_EVENTS = 50
"""The home page lists at most this many events (the API pages through the rest)."""


def template_config() -> TemplateConfig[JinjaTemplateEngine]:
    """Jinja over ``templates/`` (autoescaped), with ``asset()`` for versioned URLs."""
    config = TemplateConfig(directory=TEMPLATES, engine=JinjaTemplateEngine)

    def register(engine: JinjaTemplateEngine) -> None:
        engine.engine.globals["asset"] = lambda name: f"{ASSETS_PATH}/{name}"
        engine.engine.globals["version"] = __version__

    config.engine_callback = register
    return config


def assets() -> Router:
    """``GET /assets/<version>/…``: the pages' scripts and styles, cacheable for a day."""
    return create_static_files_router(
        path=ASSETS_PATH,
        directories=[WEB_ASSETS],
        cache_control=CacheControlHeader(public=True, max_age=86_400),
        include_in_schema=False,
    )


def page(name: str, *, title: str, csp: str = PAGE_CSP, **context: Any) -> Template:
    """The template ``name`` as a page: its title, its data, its security policy."""
    return Template(
        template_name=name,
        context={"title": title, **context},
        headers={"Content-Security-Policy": csp},
    )


def on_sale_view(session: Session, clock: Clock) -> dict[str, Any]:
    """What the home page shows of one session."""
    now = clock.now()
    return {
        "session_id": str(session.session_id),
        "start_time": session.start_time,
        "sale_start_time": session.sale_start_time,
        "sale_end_time": session.sale_end_time,
        "on_sale": session.sale_start_time <= now < session.sale_end_time,
        "queue_enabled": session.queue_enabled,
    }
