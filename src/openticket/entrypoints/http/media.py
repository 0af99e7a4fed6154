"""Request bodies are JSON of exactly the documented types, or they are refused.

Checked after the guards (who asks comes first, as for every part of the body), on
the routes that take a JSON body:

- any media type but ``application/json`` or ``application/*+json`` (parameters such
  as ``charset=utf-8`` allowed) is 415, before the body is read;
- the body is checked strictly against the route's body type: a number where the
  document says a string (a time given as a Unix timestamp), a string where it says a
  number, is 400 ``validation_error`` with a pointer to the field. Litestar's own
  conversion is lenient and would take them. A number with no fraction (``62.0``) is
  an integer, as JSON Schema says.

Payment webhooks take their provider's own payload and are not checked here.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
from litestar import Request
from litestar.exceptions import HTTPException, ValidationException

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


_AT = re.compile(r"^(?P<message>.*?) - at `\$(?P<path>[^`]*)`$", re.DOTALL)
_STEP = re.compile(r"\.([^.\[\]]+)|\[(\d+)\]")


def _problem_of(error: msgspec.ValidationError) -> dict[str, str]:
    """The error ``Expected `str`, got `int` - at `$.seats[0]``` of msgspec, in Litestar's shape."""
    matched = _AT.match(str(error))
    if matched is None:
        return {"message": str(error), "key": "data", "source": "body"}
    steps = [name or index for name, index in _STEP.findall(matched.group("path"))]
    key = "".join(f"[{step}]" if step.isdecimal() else f".{step}" for step in steps)
    return {"message": matched.group("message"), "key": key.lstrip(".") or "data", "source": "body"}


async def require_json(request: Request[Any, Any, Any]) -> None:
    """``before_request`` hook: a route with a JSON body gets JSON of its type, or refuses."""
    if request.method not in JSON_BODY_METHODS or not _has_body(request):
        return
    data = request.route_handler.parsed_fn_signature.parameters.get("data")
    if data is None:
        return
    content_type = request.headers.get("content-type", "")
    if not is_json(content_type):
        shown = content_type.split(";", 1)[0].strip() or "none"
        raise UnsupportedMediaType(
            detail=f"the body must be application/json, not {shown}",
            headers={"Accept-Post": "application/json"},
        )
    try:
        raw = msgspec.json.decode(await request.body())
    except msgspec.DecodeError:
        return  # not JSON at all: Litestar says so in its own words
    try:
        msgspec.convert(_integral(raw), type=data.annotation, strict=True)
    except msgspec.ValidationError as e:
        raise ValidationException(
            detail=f"Validation failed for {request.method} {request.url.path}",
            extra=[_problem_of(e)],
        ) from e


def _integral(value: Any) -> Any:
    """JSON's ``62.0`` is the integer 62 (JSON Schema says so too); other values as given."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_integral(item) for item in value]
    if isinstance(value, dict):
        return {key: _integral(item) for key, item in value.items()}
    return value
