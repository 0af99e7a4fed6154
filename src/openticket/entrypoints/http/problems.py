"""Every error as ``application/problem+json`` (RFC 9457), mapped in this one place."""

from __future__ import annotations

import re
from typing import Any

import structlog
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from openticket.application.errors import ApplicationError
from openticket.application.ports.errors import PortError
from openticket.application.ports.repositories import InvalidCursor
from openticket.domain.shared import DomainError, ValidationError
from openticket.entrypoints.http.schemas import PATTERN_MEANINGS

PROBLEM_JSON = "application/problem+json"

_log = structlog.get_logger("openticket.http")

STATUS_BY_CODE: dict[str, int] = {
    "not_found": 404,
    "forbidden": 403,
    "queue_required": 403,
    "bot_suspected": 403,
    "queue_not_enabled": 409,
    "challenge_failed": 403,
    "challenge_unavailable": 503,
    "unauthorized": 401,
    "user_disabled": 403,
    "seat_unavailable": 409,
    "hold_expired": 409,
    "invalid_transition": 409,
    "already_used": 409,
    "ticket_voided": 409,
    "not_holder": 409,
    "stale_fencing_token": 409,
    "quota_exhausted": 409,
    "user_limit_reached": 409,
    "order_not_due": 409,
    "payment_mismatch": 409,
    "email_taken": 409,
    "conflict": 409,
    "concurrent_update": 409,
    "seat_already_ticketed": 409,
    "sale_not_open": 422,
    "unknown_provider": 422,
    "invalid_input": 422,
    "invalid_signature": 400,
    "payment_provider_error": 502,
    "payment_provider_unavailable": 503,
    "service_unavailable": 503,
    "storage_error": 500,
    "not_in_transaction": 500,
}
"""HTTP status of every stable error code; validation codes not listed are 422."""

RETRY_AFTER_SECONDS = 5
"""``Retry-After`` of a ``503``: a dependency that is down or a partition that moves
to another worker (its lease is 3 s) is usually back within a few seconds, and a
buyer mid-sale should not be sent away for longer."""

TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Payload Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


def problem(
    status: int, code: str, detail: str, *, headers: dict[str, str] | None = None, **extra: Any
) -> Response[dict[str, Any]]:
    """A problem+json response."""
    body = {
        "type": f"urn:openticket:problem:{code}",
        "title": TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "code": code,
        **extra,
    }
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def status_of(error: DomainError | ApplicationError | PortError) -> int:
    """The HTTP status of an error of ours."""
    status = STATUS_BY_CODE.get(error.code)
    if status is not None:
        return status
    if isinstance(error, ValidationError):
        return 422
    if isinstance(error, DomainError):
        return 409
    return 400


def our_error(request: Request[Any, Any, Any], error: Exception) -> Response[dict[str, Any]]:
    """Domain, application and port errors: their code decides the status."""
    if not isinstance(error, DomainError | ApplicationError | PortError):
        return unexpected_error(request, error)
    status = status_of(error)
    extra: dict[str, Any] = {}
    seat_ids = getattr(error, "seat_ids", None)
    if error.code == "seat_unavailable" and seat_ids is not None:
        extra["unavailable_seats"] = list(seat_ids)
    elif seat_ids is not None:
        extra["seat_ids"] = list(seat_ids)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    if status == 503:
        headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
    if status >= 500:
        _log.warning("dependency_error", code=error.code, error=str(error))
    return problem(status, error.code, str(error), headers=headers, **extra)


def http_error(request: Request[Any, Any, Any], error: Exception) -> Response[dict[str, Any]]:
    """Litestar's own errors (bad JSON, wrong types, body too large, no route...)."""
    if not isinstance(error, HTTPException):
        return unexpected_error(request, error)
    status = error.status_code
    if isinstance(error, ValidationException):
        errors = field_problems(error.extra)
        detail = "; ".join(_said(e) for e in errors) or str(error.detail)
        if errors:
            return problem(400, "validation_error", detail, errors=errors)
        return problem(400, "validation_error", detail)
    code = {
        400: "validation_error",
        401: "unauthorized",
        403: "forbidden",
        404: "not_found",
        405: "method_not_allowed",
        413: "payload_too_large",
        415: "unsupported_media_type",
        429: "rate_limited",
    }.get(status, "bad_request" if status < 500 else "internal_error")
    headers = dict(error.headers or {})
    if status == 401:
        headers.setdefault("WWW-Authenticate", "Bearer")
    if status == 503:
        headers.setdefault("Retry-After", str(RETRY_AFTER_SECONDS))
    return problem(status, code, str(error.detail), headers=headers or None)


_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")
"""One step of Litestar's error key: ``seat_map.areas[0].name``."""
_REGEX = re.compile(r"Expected `str` matching regex '(?P<pattern>.*)'$", re.DOTALL)


def _plain(message: str) -> str:
    """A pattern failure in words when the pattern is one of ours."""
    matched = _REGEX.match(message)
    if matched is None:
        return message
    meaning = PATTERN_MEANINGS.get(matched.group("pattern").replace("\\\\", "\\"))
    return f"Expected {meaning}" if meaning else message


def field_problems(extra: object) -> list[dict[str, str]]:
    """Litestar's validation messages as RFC 9457 ``errors``: each with where it points.

    A body error carries a JSON Pointer (``pointer``, ``""`` for the body as a whole),
    a query, path or header one the parameter's name (``parameter``); ``detail`` says
    what is wrong there.
    """
    found: list[dict[str, str]] = []
    for item in extra if isinstance(extra, list) else []:
        if not isinstance(item, dict):
            found.append({"detail": str(item)})
            continue
        entry = {"detail": _plain(str(item.get("message", "")).strip()) or "invalid"}
        source = str(getattr(item.get("source"), "value", item.get("source") or ""))
        key = str(item.get("key", ""))
        if source == "body":
            steps = [] if key in {"", "data"} else [a or b for a, b in _STEP.findall(key)]
            entry["pointer"] = "".join(
                "/" + step.replace("~", "~0").replace("/", "~1") for step in steps
            )
        elif key:
            entry["parameter"] = key
        found.append(entry)
    return found


def _said(entry: dict[str, str]) -> str:
    where = entry.get("parameter") or entry.get("pointer")
    return f"{entry['detail']} (at {where})" if where else entry["detail"]


def cursor_error(_: Request[Any, Any, Any], error: Exception) -> Response[dict[str, Any]]:
    """A list cursor we did not hand out: bad input (400), not a server fault."""
    return problem(
        400,
        "invalid_cursor",
        "the cursor is not one this list handed out; start again without it",
        errors=[{"detail": str(error), "parameter": "cursor"}],
    )


def nesting_error(_: Request[Any, Any, Any], error: Exception) -> Response[dict[str, Any]]:
    """JSON nested deeper than the decoder follows: bad input, not a server fault."""
    return problem(400, "validation_error", "the request body is nested too deeply")


def unexpected_error(request: Request[Any, Any, Any], error: Exception) -> Response[dict[str, Any]]:
    """Anything else: logged with its traceback, answered without one."""
    _log.exception("unhandled_error", path=request.url.path, error=repr(error))
    return problem(HTTP_500_INTERNAL_SERVER_ERROR, "internal_error", "the server failed to answer")


EXCEPTION_HANDLERS: dict[int | type[Exception], Any] = {
    DomainError: our_error,
    ApplicationError: our_error,
    PortError: our_error,
    HTTPException: http_error,
    RecursionError: nesting_error,
    InvalidCursor: cursor_error,
    Exception: unexpected_error,
}
"""What the app factory installs."""

__all__ = ["EXCEPTION_HANDLERS", "PROBLEM_JSON", "MediaType", "problem", "status_of"]
