"""Every error as ``application/problem+json`` (RFC 9457), mapped in this one place."""

from __future__ import annotations

from typing import Any

import structlog
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from openticket.application.errors import ApplicationError
from openticket.application.ports.errors import PortError
from openticket.domain.shared import DomainError, ValidationError

PROBLEM_JSON = "application/problem+json"

_log = structlog.get_logger("openticket.http")

STATUS_BY_CODE: dict[str, int] = {
    "not_found": 404,
    "forbidden": 403,
    "unauthorized": 401,
    "user_disabled": 403,
    "seat_unavailable": 409,
    "hold_expired": 409,
    "invalid_transition": 409,
    "already_used": 409,
    "ticket_voided": 409,
    "not_holder": 409,
    "stale_fencing_token": 409,
    "quota_exceeded": 409,
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

TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Payload Too Large",
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
    if status >= 500:
        _log.warning("dependency_error", code=error.code, error=str(error))
    return problem(status, error.code, str(error), headers=headers, **extra)


def http_error(request: Request[Any, Any, Any], error: Exception) -> Response[dict[str, Any]]:
    """Litestar's own errors (bad JSON, wrong types, body too large, no route...)."""
    if not isinstance(error, HTTPException):
        return unexpected_error(request, error)
    status = error.status_code
    if isinstance(error, ValidationException):
        messages = error.extra if isinstance(error.extra, list) else []
        detail = "; ".join(
            str(m.get("message", m)) if isinstance(m, dict) else str(m) for m in messages
        ) or str(error.detail)
        return problem(400, "validation_error", detail)
    code = {
        400: "validation_error",
        401: "unauthorized",
        403: "forbidden",
        404: "not_found",
        405: "method_not_allowed",
        413: "payload_too_large",
        429: "rate_limited",
    }.get(status, "bad_request" if status < 500 else "internal_error")
    headers = dict(error.headers or {})
    if status == 401:
        headers.setdefault("WWW-Authenticate", "Bearer")
    return problem(status, code, str(error.detail), headers=headers or None)


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
    Exception: unexpected_error,
}
"""What the app factory installs."""

__all__ = ["EXCEPTION_HANDLERS", "PROBLEM_JSON", "MediaType", "problem", "status_of"]
