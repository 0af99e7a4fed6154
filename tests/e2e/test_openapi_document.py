"""The served OpenAPI document says what the API does (schemathesis checks it by fuzzing;
these read it as a client generator would)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from .conftest import Api

pytestmark = pytest.mark.e2e

PROBLEM = "application/problem+json"
GUARDED = {
    "readMe",
    "readMyTicketQr",
    "listMyOrders",
    "listMyTickets",
    "createVenue",
    "createEvent",
    "addPriceCategory",
    "addSession",
    "readSales",
    "placeOrder",
    "joinQueue",
    "readQueueEntry",
    "readOrder",
    "cancelOrder",
    "payOrder",
    "refundOrder",
    "checkIn",
}


@pytest.fixture
async def document(api: Api) -> dict[str, Any]:
    answer = await api.client.get("/schema/openapi.json")
    assert answer.status_code == 200
    body: dict[str, Any] = answer.json()
    return body


def operations(document: dict[str, Any]) -> dict[str, tuple[str, str, dict[str, Any]]]:
    return {
        operation["operationId"]: (method.upper(), path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
    }


def resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


async def test_operation_ids_read_well_and_are_unique(document: dict[str, Any]) -> None:
    ids = [op["operationId"] for item in document["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"[a-z][A-Za-z]+", i) for i in ids), ids


async def test_exactly_the_guarded_operations_need_a_bearer_token(
    document: dict[str, Any],
) -> None:
    scheme = document["components"]["securitySchemes"]["bearer"]
    assert (scheme["type"], scheme["scheme"], scheme["bearerFormat"]) == ("http", "bearer", "JWT")
    secured = {i for i, (_, _, op) in operations(document).items() if op.get("security")}
    assert secured == GUARDED
    for operation_id in GUARDED:
        _, _, operation = operations(document)[operation_id]
        assert operation["security"] == [{"bearer": []}]
        assert "401" in operation["responses"], operation_id


async def test_every_error_is_problem_json_and_nothing_is_litestar_shaped(
    document: dict[str, Any],
) -> None:
    for operation_id, (_, path, operation) in operations(document).items():
        for status, response in operation["responses"].items():
            if path.startswith("/api/") and status[0] in "45":
                assert set(response["content"]) == {PROBLEM}, (operation_id, status)
                schema = resolve(document, response["content"][PROBLEM]["schema"])
                assert {"type", "title", "status", "detail", "code"} <= set(schema["required"])
    assert "status_code" not in str(document)  # Litestar's own error shape


async def test_body_operations_document_400_413_415_and_every_api_operation_429_503(
    document: dict[str, Any],
) -> None:
    for operation_id, (_, path, operation) in operations(document).items():
        responses = operation["responses"]
        if "requestBody" in operation and path.startswith("/api/"):
            assert {"400", "413"} <= set(responses), operation_id
        if "requestBody" in operation and not path.startswith("/api/webhooks/"):
            assert "415" in responses, operation_id
        if path.startswith("/api/") and not path.startswith("/api/webhooks/"):
            assert {"429", "503"} <= set(responses), operation_id
            assert "Retry-After" in responses["429"]["headers"]
            assert "Retry-After" in responses["503"]["headers"]


async def test_pages_and_statuses_are_typed(document: dict[str, Any]) -> None:
    ops = operations(document)
    for operation_id, item in (
        ("listEvents", "EventOut"),
        ("listMyOrders", "OrderOut"),
        ("listMyTickets", "TicketOut"),
    ):
        page = resolve(
            document,
            ops[operation_id][2]["responses"]["200"]["content"]["application/json"]["schema"],
        )
        assert page["properties"]["items"]["items"]["$ref"].endswith(f"/{item}")
        assert "next_cursor" in page["properties"]
    order = resolve(document, {"$ref": "#/components/schemas/OrderOut"})
    status = resolve(document, order["properties"]["status"])
    assert set(status["enum"]) == {
        "created",
        "payment_pending",
        "completed",
        "expired",
        "failed",
        "cancelled",
        "refunded",
    }
    seat = resolve(document, {"$ref": "#/components/schemas/SeatOut"})
    assert set(resolve(document, seat["properties"]["status"])["enum"]) == {
        "available",
        "held",
        "sold",
    }


async def test_request_bodies_say_what_the_api_checks(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    for name in ("RegisterBody", "VenueBody", "OrderBody", "PaymentBody", "SessionBody"):
        assert schemas[name]["additionalProperties"] is False, name
    seat_ids = schemas["OrderBody"]["properties"]["seat_ids"]
    assert seat_ids["uniqueItems"] is True
    assert re.search(seat_ids["items"]["pattern"], "A-3-12")
    assert not re.search(seat_ids["items"]["pattern"], "A-3-12\n")
    assert schemas["RegisterBody"]["properties"]["password"]["minLength"] == 8
    # only the providers this deployment has: the embedded one has the mock
    assert schemas["PaymentBody"]["properties"]["provider"]["enum"] == ["mock"]


async def test_catalog_reads_document_their_conditional_answers(document: dict[str, Any]) -> None:
    ops = operations(document)
    for operation_id in ("listEvents", "readEvent", "readVenue", "readSession", "readSeatMap"):
        operation = ops[operation_id][2]
        assert "304" in operation["responses"], operation_id
        assert "ETag" in operation["responses"]["200"]["headers"]
        assert any(p["name"] == "If-None-Match" for p in operation["parameters"])


async def test_a_cursor_outside_the_documented_pattern_is_400_naming_the_parameter(
    api: Api, document: dict[str, Any]
) -> None:
    (parameter,) = [
        p for p in operations(document)["listEvents"][2]["parameters"] if p["name"] == "cursor"
    ]
    pattern = parameter["schema"].get("pattern") or parameter["schema"]["oneOf"][0]["pattern"]
    for cursor in ("%C2%A9", "%00", "abc", "AAAAAAAAAAB"):  # the last breaks the padding bits
        answer = await api.client.get(f"/api/events?cursor={cursor}")
        assert answer.status_code == 400, (cursor, answer.text)
        assert answer.headers["content-type"].startswith(PROBLEM)
        assert answer.json()["errors"][0]["parameter"] == "cursor"
    page = (await api.client.get("/api/events?limit=1")).json()
    assert page["next_cursor"] is None or re.search(pattern, page["next_cursor"])
