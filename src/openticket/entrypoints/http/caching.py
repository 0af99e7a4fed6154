"""Validators and freshness for the catalog reads: ``ETag``, ``Cache-Control``, ``304``.

During a sale thousands of buyers poll the same seat map. Each read answers a weak
``ETag`` (a hash of the JSON body: weak, so one validator serves the gzip, brotli and
plain forms alike) and a ``Cache-Control``; a client, CDN or browser that sends the
tag back in ``If-None-Match`` gets ``304 Not Modified`` with no body while nothing
changed. The answers are public (the same for every caller), and each controller
says how long one may be used without asking (``docs/decisions.md``).

Controllers opt in with ``response_class = revalidated(...)``; only ``GET``
answers of ``200`` are touched, so the controller's writes answer as before.
"""

from __future__ import annotations

import hashlib
from typing import Any, TypeVar

from litestar import Request, Response
from litestar.enums import HttpMethod
from litestar.response.base import ASGIResponse
from litestar.status_codes import HTTP_200_OK, HTTP_304_NOT_MODIFIED

T = TypeVar("T")

REVALIDATE = "public, no-cache"
"""Store it, but ask every time: a 304 costs no body. For what changes any second."""

VENUE_LIFETIME = "public, max-age=300"
"""A venue never changes once created: five minutes without asking."""

_READS = frozenset({HttpMethod.GET})
_KEPT_ON_304 = ("cache-control", "etag", "vary", "expires", "content-location", "date")
"""Fields a 304 repeats from the 200 it stands for (RFC 9110 §15.4.5)."""


def weak_etag(body: bytes) -> str:
    """A weak entity tag naming ``body``: equal bodies, equal tags."""
    return f'W/"{hashlib.blake2b(body, digest_size=16).hexdigest()}"'


def matches(if_none_match: str, etag: str) -> bool:
    """Whether an ``If-None-Match`` value names ``etag`` (weak comparison, RFC 9110 §13.1.2).

    A value that cannot be read names nothing, so the full answer is sent.
    """
    if if_none_match.strip() == "*":
        return True
    wanted = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == wanted for tag in if_none_match.split(","))


def revalidated(cache_control: str) -> type[Response[Any]]:
    """A response class that gives ``GET`` answers an ``ETag``, ``cache_control``, and 304s."""

    class RevalidatedResponse(Response[T]):
        """A JSON answer with a validator, answered 304 when the client holds it already."""

        def to_asgi_response(
            self, app: Any, request: Request[Any, Any, Any], **kwargs: Any
        ) -> ASGIResponse:
            answer = super().to_asgi_response(app, request, **kwargs)
            if request.method not in _READS or answer.status_code != HTTP_200_OK:
                return answer
            etag = weak_etag(answer.body)
            answer.headers["ETag"] = etag
            answer.headers.setdefault("Cache-Control", cache_control)
            if not matches(request.headers.get("if-none-match", ""), etag):
                return answer
            kept = {
                name: value
                for name, value in answer.headers.items()
                if name.lower() in _KEPT_ON_304
            }
            return ASGIResponse(status_code=HTTP_304_NOT_MODIFIED, headers=kept)

    return RevalidatedResponse
