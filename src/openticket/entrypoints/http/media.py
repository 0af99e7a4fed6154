"""Request bodies are JSON: any other media type is refused with 415 before it is read.

Checked after the guards (who asks comes first, as for every part of the body) and
before the body is decoded, on the routes that take a JSON body. A JSON body is
``application/json`` or any ``application/*+json``, with or without parameters such
as ``charset=utf-8``. Payment webhooks take their provider's own payload and are not
checked here.
"""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.exceptions import HTTPException

JSON_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class UnsupportedMediaType(HTTPException):
    """415: the body is not JSON."""

    status_code = 415


def is_json(content_type: str) -> bool:
    """Whether a ``Content-Type`` value names JSON."""
    media = content_type.split(";", 1)[0].strip().lower()
    kind, _, subtype = media.partition("/")
    return kind == "application" and (subtype == "json" or subtype.endswith("+json"))


def _has_body(request: Request[Any, Any, Any]) -> bool:
    length = request.headers.get("content-length")
    if length is not None:
        return length.strip() not in {"", "0"}
    return "transfer-encoding" in request.headers


async def require_json(request: Request[Any, Any, Any]) -> None:
    """``before_request`` hook: a route with a JSON body gets JSON or answers 415."""
    if request.method not in JSON_BODY_METHODS or not _has_body(request):
        return
    if "data" not in request.route_handler.parsed_fn_signature.parameters:
        return
    content_type = request.headers.get("content-type", "")
    if not is_json(content_type):
        shown = content_type.split(";", 1)[0].strip() or "none"
        raise UnsupportedMediaType(
            detail=f"the body must be application/json, not {shown}",
            headers={"Accept-Post": "application/json"},
        )
