"""The OpenAPI document, told truthfully: problem+json errors, bearer security, exact inputs.

Each route declares the error statuses it can answer (``problems(...)``); the document
served at ``/schema/openapi.json`` is Litestar's, refined once here where Litestar has
no words for what the API does: request bodies refuse unknown fields
(``additionalProperties: false``), the payment providers are the ones this deployment
configured, error answers carry their headers (``WWW-Authenticate``, ``Retry-After``,
``RateLimit``), and no Litestar-shaped error is left in it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import msgspec
from litestar import Request
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme

from openticket.entrypoints.http.problems import PROBLEM_JSON, TITLES
from openticket.entrypoints.http.schemas import request_bodies

BEARER = "bearer"
"""The name of the security scheme: ``Authorization: Bearer <JWT>``."""

SIGNED_IN: list[dict[str, list[str]]] = [{BEARER: []}]
"""``security=`` of an operation that needs a bearer token."""

COMPONENTS = Components(
    security_schemes={
        BEARER: SecurityScheme(
            type="http",
            scheme="bearer",
            bearer_format="JWT",
            description="An access token from POST /api/auth/token (HS256 or RS256, "
            "15 minutes by default).",
        )
    }
)


class FieldProblem(msgspec.Struct, omit_defaults=True):
    """What is wrong with one part of the request."""

    detail: str
    pointer: str | None = None
    """A JSON Pointer into the request body, e.g. ``/seat_ids/0``."""
    parameter: str | None = None
    """A query, path or header parameter, e.g. ``limit``."""


class Problem(msgspec.Struct, omit_defaults=True):
    """An error, as RFC 9457 ``application/problem+json``; ``code`` is a stable word."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    unavailable_seats: list[str] | None = None
    """With ``seat_unavailable``: the seats someone else holds or bought."""
    seat_ids: list[str] | None = None
    """The seats an error is about (e.g. ``unknown_seats``)."""
    errors: list[FieldProblem] | None = None
    """With ``validation_error``: each part of the request that is wrong."""


WHY: dict[int, str] = {
    400: "Malformed input: bad JSON, a field or parameter outside its schema "
    "(`validation_error`, with `errors` pointing at each), or a cursor this list did not "
    "hand out (`invalid_cursor`).",
    401: "No bearer token, or one that is expired, forged or not for this API (`unauthorized`).",
    403: "Signed in, but without the role this needs (`forbidden`), or the account is "
    "disabled (`user_disabled`).",
    404: "No such thing, or not yours (`not_found`).",
    405: "This path does not take this method (`method_not_allowed`).",
    409: "Conflicts with the current state (e.g. `seat_unavailable`, `hold_expired`, "
    "`invalid_transition`, `email_taken`, `already_used`, `user_limit_reached`, "
    "`quota_exhausted`).",
    413: "The body is over 1 MiB (`payload_too_large`).",
    415: "The body is not `application/json` (`unsupported_media_type`).",
    422: "Well-formed but refused by a rule of the domain (e.g. `sale_not_open`, "
    "`seats_span_areas`, `unknown_seats`, `too_many_seats`, `unknown_provider`).",
    429: "Over a rate limit (`rate_limited`); wait `Retry-After` seconds.",
    502: "The payment provider failed to answer sensibly (`payment_provider_error`).",
    503: "A dependency is down or a partition is moving (`service_unavailable`); try "
    "again after `Retry-After` seconds.",
}


def problems(*statuses: int) -> dict[int, ResponseSpec]:
    """``responses=`` of a route: a problem+json answer for each status it can give."""
    return {
        status: ResponseSpec(
            data_container=Problem,
            description=f"{TITLES[status]}. {WHY[status]}",
            media_type=PROBLEM_JSON,
            generate_examples=False,
        )
        for status in sorted(set(statuses))
    }


READ = (429, 503)
"""Every ``/api/`` route: rate limits and dependencies."""
INPUT = (400, 413, 415)
"""A route that takes a JSON body (or typed parameters)."""


_ERROR_HEADERS: dict[str, dict[str, Any]] = {
    "401": {
        "WWW-Authenticate": {
            "description": "`Bearer`: the scheme to authenticate with.",
            "schema": {"type": "string"},
        }
    },
    "429": {
        "Retry-After": {
            "description": "Seconds until a request would be allowed.",
            "schema": {"type": "integer", "minimum": 1},
        },
        "RateLimit-Policy": {
            "description": 'The limits, e.g. `"ip";q=1200;w=60` (IETF httpapi draft 11).',
            "schema": {"type": "string"},
        },
        "RateLimit": {
            "description": 'What is left of each, e.g. `"ip";r=0;t=42`.',
            "schema": {"type": "string"},
        },
    },
    "503": {
        "Retry-After": {
            "description": "Seconds after which to try again.",
            "schema": {"type": "integer", "minimum": 1},
        },
    },
}


def _request_body_schemas() -> dict[str, Any]:
    """The request bodies' schemas as msgspec validates them.

    Litestar's schemas drop the constraints of list items and dictionary keys (a seat
    id's pattern, a seat number's minimum) and never say that unknown fields are
    refused; msgspec's own describe exactly what it checks.
    """
    _, components = msgspec.json.schema_components(
        request_bodies(), ref_template="#/components/schemas/{name}"
    )
    return components


CACHEABLE = frozenset({"listEvents", "readEvent", "readVenue", "readSession", "readSeatMap"})
"""The catalog reads that answer an ``ETag`` and ``304`` to ``If-None-Match``."""

_IF_NONE_MATCH = {
    "name": "If-None-Match",
    "in": "header",
    "required": False,
    "description": "The `ETag` of the copy you hold: 304 without a body if it is current.",
    "schema": {"type": "string"},
}
_VALIDATORS = {
    "ETag": {
        "description": "A weak tag of this answer; send it back in `If-None-Match`.",
        "schema": {"type": "string"},
    },
    "Cache-Control": {
        "description": "How long a copy may be used without asking again.",
        "schema": {"type": "string"},
    },
}


def _cacheable(operation: dict[str, Any]) -> None:
    """Document the conditional read: the header it takes, the validators, the 304."""
    operation.setdefault("parameters", []).append(copy.deepcopy(_IF_NONE_MATCH))
    responses = operation["responses"]
    responses["200"].setdefault("headers", {}).update(copy.deepcopy(_VALIDATORS))
    responses["304"] = {
        "description": "Not Modified: the copy named in `If-None-Match` is current.",
        "headers": copy.deepcopy(_VALIDATORS),
    }


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for path, path_item in document.get("paths", {}).items():
        for method, operation in path_item.items():
            if method in {"get", "put", "post", "delete", "patch", "head", "options"}:
                yield path, operation


def _problem_response(status: int) -> dict[str, Any]:
    return {
        "description": f"{TITLES[status]}. {WHY[status]}",
        "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


def refine(document: dict[str, Any], *, payment_providers: Iterable[str]) -> dict[str, Any]:
    """A copy of Litestar's document that says what the API really does."""
    document = copy.deepcopy(document)
    schemas: dict[str, Any] = document.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(_request_body_schemas())
    payment = schemas.get("PaymentBody", {}).get("properties", {}).get("provider")
    if payment is not None:
        payment.pop("pattern", None)
        payment["enum"] = sorted(payment_providers)
        payment["description"] = "A payment provider this deployment has configured."
    for path, operation in _operations(document):
        if operation.get("operationId") in CACHEABLE:
            _cacheable(operation)
        if "description" in operation:  # handler docstrings: reStructuredText to Markdown
            operation["description"] = operation["description"].replace("``", "`")
        responses = operation.get("responses", {})
        if PROBLEM_JSON not in responses.get("400", {}).get("content", {PROBLEM_JSON: None}):
            # Litestar's own 400 shape, added for any route with parameters: ours is a problem
            responses["400"] = _problem_response(400)
        for status, response in responses.items():
            content = response.get("content", {})
            if path.startswith("/api/") and status[0] in "45" and set(content) - {PROBLEM_JSON}:
                raise ValueError(
                    f"{operation.get('operationId')}: {status} is not documented as problem+json"
                )
            headers = _ERROR_HEADERS.get(status)
            if headers:
                response.setdefault("headers", {}).update(copy.deepcopy(headers))
    return document


class RefinedJsonRenderPlugin(JsonRenderPlugin):
    """Serves ``/schema/openapi.json``: Litestar's document through ``refine``, made once."""

    def __init__(self, refiner: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
        super().__init__()
        self._refiner = refiner
        self._refined: dict[str, Any] | None = None

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        """The refined document as JSON."""
        if self._refined is None:
            self._refined = self._refiner(openapi_schema)
        return self.render_json(request, self._refined)
