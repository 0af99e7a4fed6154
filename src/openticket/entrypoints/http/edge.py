"""What every answer carries for browsers and proxies: CORS, compression, safe headers.

``edge_headers`` runs on every answer, after everything else (Litestar's
``before_send``), so it also sees CORS preflights, unknown paths and errors:

- ``X-Content-Type-Options: nosniff`` and ``Referrer-Policy: no-referrer``;
- ``Content-Security-Policy``: nothing may load or frame an API answer; the docs page
  may load its own scripts and styles from this server and nothing else;
- ``Strict-Transport-Security`` when the request came over HTTPS (directly, or as a
  trusted proxy says in ``X-Forwarded-Proto``) and ``hsts_seconds`` is not 0;
- ``Cache-Control: no-store`` on ``/api/`` answers that did not choose one: orders,
  tickets, tokens and accounts are personal, and a shared cache must not keep them;
- ``Retry-After`` on any ``503`` that lacks it;
- ``Vary`` naming ``Accept-Encoding`` on compressed and cacheable answers, and
  ``Origin`` when only some origins may read them, so that caches keep the forms
  apart (Litestar's CORS replaces ``Vary`` with ``Origin`` alone).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection

from litestar.config.compression import CompressionConfig
from litestar.config.cors import CORSConfig
from litestar.datastructures import MutableScopeHeaders
from litestar.types import Message, Scope

from openticket.entrypoints.http.policy import HttpPolicy
from openticket.entrypoints.http.problems import RETRY_AFTER_SECONDS
from openticket.entrypoints.http.proxies import TrustedProxies, forward
from openticket.entrypoints.http.rate_limit import RATE_LIMIT_HEADERS

API_CSP = "default-src 'none'; frame-ancestors 'none'"
"""An API answer is data: it loads nothing and is framed by no page."""

DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline';"
    " img-src 'self' data:; connect-src 'self'; font-src 'self';"
    " base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
"""The docs page runs the packaged Swagger UI and reads the schema from this server only.

Swagger UI sets inline styles on its elements, hence ``'unsafe-inline'`` for styles
(never for scripts); "Try it out" calls this same API (``connect-src 'self'``).
"""

COMPRESSION_MINIMUM_BYTES = 1024
"""Smaller answers (an order, a payment) go as they are: compressing them costs more
time than it saves bytes."""

CORS_ALLOWED_HEADERS = (
    "Authorization",
    "Content-Type",
    "If-None-Match",
    "X-Admission-Token",
    "X-Request-Id",
)
"""Request headers a page of an allowed origin may send."""

CORS_EXPOSED_HEADERS = (*RATE_LIMIT_HEADERS, "ETag", "X-Request-Id")
"""Answer headers a page of an allowed origin may read."""

BeforeSend = Callable[[Message, Scope], Awaitable[None]]


def cors_config(policy: HttpPolicy) -> CORSConfig | None:
    """CORS for the origins the policy names; None (no CORS at all) when it names none.

    Bearer tokens travel in ``Authorization``, never in cookies, so credentials are not
    allowed: a page of another origin can only do what its user's token lets it.
    """
    if not policy.cors_origins:
        return None
    return CORSConfig(
        allow_origins=list(policy.cors_origins),
        allow_methods=["GET", "POST", "DELETE"],
        allow_headers=list(CORS_ALLOWED_HEADERS),
        expose_headers=list(CORS_EXPOSED_HEADERS),
        allow_credentials=False,
        max_age=600,
    )


def compression_config() -> CompressionConfig:
    """Brotli when the client takes it, else gzip, for answers of 1 KiB and more.

    Moderate levels: a seat map is compressed on every poll, so speed matters more than
    the last few per cent of size.
    """
    return CompressionConfig(
        backend="brotli",
        minimum_size=COMPRESSION_MINIMUM_BYTES,
        brotli_quality=4,
        brotli_gzip_fallback=True,
        gzip_compress_level=6,
    )


def _vary(headers: MutableScopeHeaders, name: str) -> None:
    """Add ``name`` to ``Vary`` unless it is there already."""
    present = {
        item.strip().lower() for value in headers.getall("vary", []) for item in value.split(",")
    }
    if name.lower() in present or "*" in present:
        return
    values = [v for v in headers.getall("vary", []) if v.strip()]
    headers["Vary"] = ", ".join([*values, name])


def edge_headers(policy: HttpPolicy, docs_paths: Collection[str]) -> BeforeSend:
    """The ``before_send`` hook that gives every HTTP answer the edge's headers."""
    proxies = TrustedProxies(policy.trusted_proxies)
    hsts = f"max-age={policy.hsts_seconds}" if policy.hsts_seconds > 0 else None
    some_origins = bool(policy.cors_origins) and "*" not in policy.cors_origins

    async def hook(message: Message, scope: Scope) -> None:
        if message["type"] != "http.response.start":
            return
        forward(scope, proxies)  # unknown paths skip the route middleware that does it
        path: str = scope.get("path", "")
        message.setdefault("headers", [])
        headers = MutableScopeHeaders.from_message(message)
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "no-referrer")
        headers.setdefault("Content-Security-Policy", DOCS_CSP if path in docs_paths else API_CSP)
        if hsts is not None and scope.get("scheme") == "https":
            headers.setdefault("Strict-Transport-Security", hsts)
        if path.startswith("/api/") and "cache-control" not in headers:
            headers["Cache-Control"] = "no-store"
        if message["status"] == 503 and "retry-after" not in headers:
            headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        if "content-encoding" in headers or "etag" in headers:
            # a cacheable answer (and its 304) may come compressed or not
            _vary(headers, "Accept-Encoding")
        if some_origins:
            _vary(headers, "Origin")

    return hook
