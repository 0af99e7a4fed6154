"""Every endpoint's success and its documented errors, as problem+json."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import jwt
import pytest
import structlog

from .conftest import JWT_SECRET, PASSWORD, Api

pytestmark = pytest.mark.e2e

PROBLEM = "application/problem+json"


def assert_problem(answer: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = answer.json()
    assert body["status"] == status
    assert body["code"] == code
    assert {"type", "title", "detail"} <= body.keys()
    return body


async def hold(api: Api, who: dict[str, str], *seats: str) -> httpx.Response:
    return await api.client.post(
        "/api/orders", json={"session_id": api.session_id, "seat_ids": list(seats)}, headers=who
    )


# --- identity -----------------------------------------------------------------------------


@pytest.mark.production
async def test_register_sign_in_and_me(api: Api) -> None:
    made = await api.client.post(
        "/api/auth/register",
        json={"email": " Bob@Example.com ", "password": PASSWORD, "display_name": "Bob"},
    )
    assert made.status_code == 201
    assert made.json()["email"] == "bob@example.com"
    assert made.json()["roles"] == ["buyer"]
    token = await api.client.post(
        "/api/auth/token", json={"email": "bob@example.com", "password": PASSWORD}
    )
    assert token.status_code == 200
    assert token.json()["token_type"] == "bearer"
    assert token.json()["expires_in"] == 900
    me = await api.client.get(
        "/api/me", headers={"Authorization": f"Bearer {token.json()['access_token']}"}
    )
    assert me.json()["user_id"] == made.json()["user_id"]
    again = await api.client.post(
        "/api/auth/register",
        json={"email": "bob@example.com", "password": PASSWORD, "display_name": "Bob 2"},
    )
    assert_problem(again, 409, "email_taken")


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (
            {"email": "x@example.com", "password": "short", "display_name": "X"},
            400,
            "validation_error",
        ),
        (
            {"email": "not-an-email", "password": PASSWORD, "display_name": "X"},
            400,
            "validation_error",
        ),
        ({"email": "x@example.com", "password": PASSWORD}, 400, "validation_error"),
        (
            {
                "email": "x@example.com",
                "password": PASSWORD,
                "display_name": "X",
                "roles": ["admin"],
            },
            400,
            "validation_error",
        ),
        (
            {"email": "x@example.com", "password": "p" * 2000, "display_name": "X"},
            400,
            "validation_error",
        ),
    ],
)
async def test_bad_registrations_are_refused_and_store_nothing(
    api: Api, body: dict[str, Any], status: int, code: str
) -> None:
    assert_problem(await api.client.post("/api/auth/register", json=body), status, code)
    signed = await api.client.post(
        "/api/auth/token", json={"email": "x@example.com", "password": PASSWORD}
    )
    assert_problem(signed, 401, "unauthorized")


async def test_wrong_password_and_unknown_user_look_the_same(api: Api) -> None:
    await api.buyer("carol")
    wrong = await api.client.post(
        "/api/auth/token", json={"email": "carol@example.com", "password": "wrong-password"}
    )
    unknown = await api.client.post(
        "/api/auth/token", json={"email": "nobody@example.com", "password": "wrong-password"}
    )
    for answer in (wrong, unknown):
        assert_problem(answer, 401, "unauthorized")
        assert answer.headers["www-authenticate"] == "Bearer"
    assert wrong.json()["detail"] == unknown.json()["detail"]


def forged_tokens(valid: str) -> dict[str, str]:
    """Tokens that must all be refused; the ones signed with our secret fail on one claim."""
    header, _, signature = valid.split(".")
    claims = jwt.decode(valid, options={"verify_signature": False})
    kid = jwt.get_unverified_header(valid)["kid"]
    as_admin = jwt.utils.base64url_encode(
        json.dumps({**claims, "roles": ["admin"]}).encode()
    ).decode()

    def ours(changes: dict[str, Any], **headers: str) -> str:
        return jwt.encode({**claims, **changes}, JWT_SECRET, headers={"kid": kid, **headers})

    return {
        "alg none": jwt.encode(claims, key="", algorithm="none", headers={"kid": kid}),
        "tampered": f"{header}.{as_admin}.{signature}",
        "other secret": jwt.encode(claims, "x" * 40, algorithm="HS256", headers={"kid": kid}),
        "expired": ours({"exp": claims["iat"] - 1}),
        "future nbf": ours({"nbf": claims["exp"]}),
        "wrong aud": ours({"aud": "elsewhere"}),
        "wrong iss": ours({"iss": "elsewhere"}),
        "unknown kid": ours({}, kid="nope"),
        "garbage": "not-a-token",
    }


async def test_forged_and_missing_tokens_get_401(api: Api) -> None:
    alice = await api.buyer("alice")
    valid = alice["Authorization"].removeprefix("Bearer ")
    assert (await api.client.get("/api/me", headers=alice)).status_code == 200
    assert_problem(await api.client.get("/api/me"), 401, "unauthorized")
    assert_problem(
        await api.client.get("/api/me", headers={"Authorization": f"Basic {valid}"}),
        401,
        "unauthorized",
    )
    resigned = jwt.encode(
        jwt.decode(valid, options={"verify_signature": False}),
        JWT_SECRET,
        headers={"kid": jwt.get_unverified_header(valid)["kid"]},
    )
    # our secret and the claims as issued are accepted: each refusal below is its claim's
    accepted = await api.client.get("/api/me", headers={"Authorization": f"Bearer {resigned}"})
    assert accepted.status_code == 200
    for name, token in forged_tokens(valid).items():
        answer = await api.client.get("/api/me", headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 401, name


async def test_an_expired_token_stops_working(api: Api) -> None:
    alice = await api.buyer("alice")
    api.clock.advance(901)
    assert_problem(await api.client.get("/api/me", headers=alice), 401, "unauthorized")


# --- catalog ------------------------------------------------------------------------------


async def organizer_sets_up_a_sale(api: Api, organizer: dict[str, str]) -> dict[str, Any]:
    venue = await api.client.post(
        "/api/venues",
        json={
            "name": "Hall",
            "address": {"city": "Tainan"},
            "seat_map": {
                "areas": [
                    {"area_id": "F", "name": "Floor", "rows": [{"row": "1", "seats": [1, 2, 3]}]}
                ]
            },
        },
        headers=organizer,
    )
    assert venue.status_code == 201, venue.text
    assert venue.json()["capacity"] == 3
    event = await api.client.post(
        "/api/events", json={"venue_id": venue.json()["venue_id"], "name": "Gig"}, headers=organizer
    )
    assert event.status_code == 201, event.text
    event_id = event.json()["event_id"]
    category = await api.client.post(
        f"/api/events/{event_id}/price-categories",
        json={"name": "Floor", "area_ids": ["F"], "price": {"amount": "500.00", "currency": "TWD"}},
        headers=organizer,
    )
    assert category.status_code == 201, category.text
    now = api.clock.now()
    session = await api.client.post(
        f"/api/events/{event_id}/sessions",
        json={
            "start_time": (now.replace(year=now.year + 1)).isoformat(),
            "end_time": (now.replace(year=now.year + 1, hour=23)).isoformat(),
            "sale_start_time": now.isoformat(),
            "sale_end_time": (now.replace(month=now.month % 12 + 1)).isoformat(),
        },
        headers=organizer,
    )
    assert session.status_code == 201, session.text
    assert session.json()["sale_state"] == "on_sale"
    assert session.json()["max_seats_per_order"] == 10
    return {"venue": venue.json(), "event_id": event_id, "session": session.json()}


async def test_organizers_set_up_a_sale_and_everyone_reads_it(api: Api) -> None:
    organizer = await api.token("organizer@openticket.local")
    made = await organizer_sets_up_a_sale(api, organizer)
    event = (await api.client.get(f"/api/events/{made['event_id']}")).json()
    assert [s["session_id"] for s in event["sessions"]] == [made["session"]["session_id"]]
    assert event["price_categories"][0]["price"] == {"amount": "500.00", "currency": "TWD"}
    venue = (await api.client.get(f"/api/venues/{made['venue']['venue_id']}")).json()
    assert venue["seat_map"]["areas"][0]["rows"][0]["seats"] == [1, 2, 3]
    page = (await api.client.get("/api/events", params={"limit": 1})).json()
    assert len(page["items"]) == 1
    assert page["next_cursor"]
    rest = (await api.client.get("/api/events", params={"cursor": page["next_cursor"]})).json()
    assert [e["event_id"] for e in rest["items"]] == [made["event_id"]]
    session = await api.client.get(f"/api/sessions/{made['session']['session_id']}")
    assert session.json()["event_id"] == made["event_id"]


async def test_buyers_cannot_write_the_catalog_and_others_events_are_not_theirs(api: Api) -> None:
    buyer = await api.buyer("mallory")
    answer = await api.client.post("/api/venues", json={"name": "x"}, headers=buyer)
    assert_problem(answer, 403, "forbidden")  # the role is checked before the body
    organizer = await api.token("organizer@openticket.local")
    made = await organizer_sets_up_a_sale(api, organizer)
    admin = await api.token("admin@openticket.local")
    other = await api.client.post(
        "/api/auth/register",
        json={"email": "org2@example.com", "password": PASSWORD, "display_name": "Org 2"},
    )
    assert other.status_code == 201
    assert_problem(
        await api.client.post(
            f"/api/events/{made['event_id']}/price-categories",
            json={"name": "x", "area_ids": ["F"], "price": {"amount": "1.00", "currency": "TWD"}},
            headers=buyer,
        ),
        403,
        "forbidden",
    )
    priced_twice = await api.client.post(
        f"/api/events/{made['event_id']}/price-categories",
        json={"name": "again", "area_ids": ["F"], "price": {"amount": "1.00", "currency": "TWD"}},
        headers=admin,
    )
    assert_problem(priced_twice, 409, "area_already_priced")
    for path in (
        f"/api/events/{uuid.uuid4()}",
        f"/api/venues/{uuid.uuid4()}",
        f"/api/sessions/{uuid.uuid4()}",
    ):
        assert_problem(await api.client.get(path), 404, "not_found")


async def test_a_session_may_require_a_challenge_before_its_waiting_room(api: Api) -> None:
    organizer = await api.token("organizer@openticket.local")
    made = await organizer_sets_up_a_sale(api, organizer)
    assert made["session"]["challenge_required"] is False
    windows = ("start_time", "end_time", "sale_start_time", "sale_end_time")
    times = {k: made["session"][k] for k in windows}
    sessions = f"/api/events/{made['event_id']}/sessions"
    guarded = await api.client.post(
        sessions,
        json={**times, "queue_enabled": True, "challenge_required": True},
        headers=organizer,
    )
    assert guarded.status_code == 201, guarded.text
    assert (guarded.json()["queue_enabled"], guarded.json()["challenge_required"]) == (True, True)
    read = await api.client.get(f"/api/sessions/{guarded.json()['session_id']}")
    assert (read.json()["queue_enabled"], read.json()["challenge_required"]) == (True, True)
    for unqueued in ({"queue_enabled": False}, {}):
        refused = await api.client.post(
            sessions, json={**times, **unqueued, "challenge_required": True}, headers=organizer
        )
        problem = assert_problem(refused, 422, "validation_error")
        assert "challenge_required needs queue_enabled" in problem["detail"]
    event = (await api.client.get(f"/api/events/{made['event_id']}")).json()
    assert sorted(s["challenge_required"] for s in event["sessions"]) == [False, True]


# --- buying -----------------------------------------------------------------------------


@pytest.mark.production
async def test_a_held_seat_is_refused_with_the_seats_in_the_way(api: Api) -> None:
    alice, bob = await api.buyer("alice"), await api.buyer("bob")
    assert (await hold(api, alice, "A-1-1")).status_code == 201
    refused = assert_problem(await hold(api, bob, "A-1-2", "A-1-1"), 409, "seat_unavailable")
    assert refused["unavailable_seats"] == ["A-1-1"]
    assert (await api.client.get("/api/me/orders", headers=bob)).json()["items"] == []


@pytest.mark.production
@pytest.mark.parametrize(
    ("seats", "code"),
    [
        (["A-1-1", "B-1-1"], "seats_span_areas"),
        (["A-99-1"], "unknown_seats"),
        ([f"A-1-{n}" for n in range(1, 12)], "too_many_seats"),
    ],
)
async def test_bad_seat_requests_get_422_and_hold_nothing(
    api: Api, seats: list[str], code: str
) -> None:
    alice = await api.buyer("alice")
    assert_problem(await hold(api, alice, *seats), 422, code)
    statuses = (await api.client.get(f"/api/sessions/{api.session_id}/seats")).json()["items"]
    assert {s["status"] for s in statuses} == {"available"}


@pytest.mark.production
async def test_a_malformed_seat_id_is_refused_where_it_stands(api: Api) -> None:
    alice = await api.buyer("alice")
    refused = assert_problem(await hold(api, alice, "A-1-1", "not-a-seat"), 400, "validation_error")
    (where,) = refused["errors"]
    assert where["pointer"] == "/seat_ids/1"
    assert "A-3-12" in where["detail"]
    statuses = (await api.client.get(f"/api/sessions/{api.session_id}/seats")).json()["items"]
    assert {s["status"] for s in statuses} == {"available"}


@pytest.mark.production
async def test_fields_a_buyer_may_not_set_are_refused(api: Api) -> None:
    alice = await api.buyer("alice")
    for extra in (
        {"status": "completed"},
        {"total": {"amount": "0.00", "currency": "TWD"}},
        {"user_id": str(uuid.uuid4())},
        {"price": "1"},
    ):
        answer = await api.client.post(
            "/api/orders",
            json={"session_id": api.session_id, "seat_ids": ["A-1-1"], **extra},
            headers=alice,
        )
        assert_problem(answer, 400, "validation_error")
    assert (await api.client.get("/api/me/orders", headers=alice)).json()["items"] == []


@pytest.mark.production
async def test_nobody_reads_cancels_or_pays_another_buyers_order(api: Api) -> None:
    alice, bob = await api.buyer("alice"), await api.buyer("bob")
    order = (await hold(api, alice, "A-2-2")).json()
    path = f"/api/orders/{order['order_id']}"
    assert_problem(await api.client.get(path, headers=bob), 404, "not_found")
    assert_problem(await api.client.delete(path, headers=bob), 404, "not_found")
    assert_problem(
        await api.client.post(f"{path}/payments", json={"provider": "mock"}, headers=bob),
        404,
        "not_found",
    )
    assert (await api.client.get(path, headers=alice)).json()["status"] == "created"
    admin = await api.token("admin@openticket.local")
    assert (await api.client.get(path, headers=admin)).status_code == 200


@pytest.mark.production
async def test_cancel_declined_payment_and_refund(api: Api) -> None:
    alice = await api.buyer("alice")
    cancelled = (await hold(api, alice, "B-1-1")).json()
    answer = await api.client.delete(f"/api/orders/{cancelled['order_id']}", headers=alice)
    assert answer.json()["status"] == "cancelled"

    declined = (await hold(api, alice, "B-1-2")).json()
    paid = await api.client.post(
        f"/api/orders/{declined['order_id']}/payments",
        json={"provider": "mock", "outcome": "decline"},
        headers=alice,
    )
    assert paid.json()["status"] == "failed"
    assert (await api.client.get(f"/api/orders/{declined['order_id']}", headers=alice)).json()[
        "status"
    ] == "failed"

    bought = (await hold(api, alice, "B-1-3")).json()
    await api.client.post(
        f"/api/orders/{bought['order_id']}/payments", json={"provider": "mock"}, headers=alice
    )
    assert_problem(
        await api.client.delete(f"/api/orders/{bought['order_id']}", headers=alice),
        409,
        "invalid_transition",
    )
    assert_problem(
        await api.client.post(f"/api/orders/{bought['order_id']}/refund", headers=alice),
        403,
        "forbidden",
    )
    organizer = await api.token("organizer@openticket.local")
    refunded = await api.client.post(f"/api/orders/{bought['order_id']}/refund", headers=organizer)
    assert refunded.json()["status"] == "refunded"
    tickets = (await api.client.get("/api/me/tickets", headers=alice)).json()["items"]
    assert [t["status"] for t in tickets] == ["voided"]

    async def all_free_again() -> bool:
        answer = await api.client.get(f"/api/sessions/{api.session_id}/seats")
        seats = {s["seat_id"]: s["status"] for s in answer.json()["items"]}
        return [seats[s] for s in ("B-1-1", "B-1-2", "B-1-3")] == ["available"] * 3

    await api.eventually(all_free_again)


async def test_an_unpaid_order_expires_with_its_hold(api: Api) -> None:
    alice = await api.buyer("alice")
    order = (await hold(api, alice, "A-3-3")).json()
    api.clock.advance(121)  # the app's sweeper runs every few milliseconds here

    async def expired() -> bool:
        answer = await api.client.get(f"/api/orders/{order['order_id']}", headers=alice)
        return bool(answer.json()["status"] == "expired")

    await api.eventually(expired)
    assert_problem(
        await api.client.post(
            f"/api/orders/{order['order_id']}/payments", json={"provider": "mock"}, headers=alice
        ),
        409,
        "invalid_transition",
    )


@pytest.mark.production
async def test_check_in_needs_staff_and_a_known_code(api: Api) -> None:
    alice = await api.buyer("alice")
    assert_problem(
        await api.client.post("/api/check-ins", json={"qr_code": "x"}, headers=alice),
        403,
        "forbidden",
    )
    staff = await api.token("staff@openticket.local")
    assert_problem(
        await api.client.post("/api/check-ins", json={"qr_code": "no-such-code"}, headers=staff),
        404,
        "not_found",
    )


async def test_a_webhook_with_a_bad_signature_is_refused(api: Api) -> None:
    body = json.dumps({"event_id": "e", "transaction_id": "t", "status": "succeeded"})
    answer = await api.client.post(
        "/api/webhooks/mock", content=body, headers={"X-Mock-Signature": "0" * 64}
    )
    assert_problem(answer, 400, "invalid_signature")
    assert_problem(await api.client.post("/api/webhooks/nobody", content=body), 404, "not_found")


# --- hostile bodies ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "status", "code"),
    [
        (b"{not json", 400, "validation_error"),
        (b"\xff\xfe\x00garbage", 400, "validation_error"),
        (b"[" * 100_000 + b"]" * 100_000, 400, "validation_error"),
        (b'{"session_id": 12, "seat_ids": "A-1-1"}', 400, "validation_error"),
        (
            b'{"session_id": "00000000-0000-0000-0000-000000000001", "seat_ids": [1e999]}',
            400,
            "validation_error",
        ),
        (b"x" * (1024 * 1024 + 1), 413, "payload_too_large"),
    ],
)
async def test_hostile_bodies_get_4xx_problems_and_change_nothing(
    api: Api, content: bytes, status: int, code: str
) -> None:
    alice = await api.buyer("alice")
    answer = await api.client.post(
        "/api/orders", content=content, headers={**alice, "content-type": "application/json"}
    )
    assert_problem(answer, status, code)
    assert (await api.client.get("/api/me/orders", headers=alice)).json()["items"] == []


async def test_sql_and_html_in_strings_are_just_text(api: Api) -> None:
    name = "<script>alert(1)</script>'; DROP TABLE users; --"
    made = await api.client.post(
        "/api/auth/register",
        json={"email": "eve@example.com", "password": PASSWORD, "display_name": name},
    )
    assert made.status_code == 201
    assert made.json()["display_name"] == name


# --- operations ---------------------------------------------------------------------------------


async def test_health_and_the_openapi_document(api: Api) -> None:
    assert (await api.client.get("/health/live")).json() == {"status": "ok"}
    assert (await api.client.get("/health/ready")).json()["status"] == "ok"
    schema = (await api.client.get("/schema/openapi.json")).json()
    paths = schema["paths"]
    for path in (
        "/api/auth/register",
        "/api/auth/token",
        "/api/me",
        "/api/venues",
        "/api/venues/{venue_id}",
        "/api/events",
        "/api/events/{event_id}",
        "/api/events/{event_id}/price-categories",
        "/api/events/{event_id}/sessions",
        "/api/sessions/{session_id}",
        "/api/sessions/{session_id}/seats",
        "/api/orders",
        "/api/orders/{order_id}",
        "/api/orders/{order_id}/payments",
        "/api/orders/{order_id}/refund",
        "/api/me/orders",
        "/api/me/tickets",
        "/api/check-ins",
        "/api/webhooks/{provider}",
        "/health/live",
        "/health/ready",
    ):
        assert path in paths, path
    assert (await api.client.get("/schema")).status_code == 200
    assert_problem(await api.client.get("/api/nothing-here"), 404, "not_found")
    assert_problem(await api.client.put("/api/orders"), 405, "method_not_allowed")


@pytest.mark.production
async def test_only_buyers_buy_and_a_refused_caller_holds_nothing(api: Api) -> None:
    """An organizer's or door staff's account places no order (403); the seat stays free."""
    for account in ("organizer@openticket.local", "staff@openticket.local"):
        refused = await hold(api, await api.token(account), "A-5-5")
        assert_problem(refused, 403, "forbidden")
    bought = await hold(api, await api.buyer("carol"), "A-5-5")
    assert bought.status_code == 201, bought.text


async def test_metrics_count_requests_holds_and_orders(api: Api) -> None:
    alice, bob = await api.buyer("alice"), await api.buyer("bob")
    first = await hold(api, alice, "A-4-4")
    await hold(api, bob, "A-4-4")
    await api.client.post(
        f"/api/orders/{first.json()['order_id']}/payments", json={"provider": "mock"}, headers=alice
    )

    async def counted() -> bool:
        text = (await api.client.get("/metrics")).text
        return (
            'openticket_holds_total{outcome="granted"} 1.0' in text
            and 'openticket_holds_total{outcome="refused"} 1.0' in text
            and 'openticket_orders_total{status="completed"} 1.0' in text
        )

    await api.eventually(counted)
    text = (await api.client.get("/metrics")).text
    assert "openticket_http_request_seconds_bucket" in text
    assert 'route="/api/orders"' in text
    # every request is counted under its route and status, the hold that was refused too
    assert (
        'openticket_http_request_seconds_count{method="POST",route="/api/orders",status="201"} 1.0'
        in text
    )
    assert (
        'openticket_http_request_seconds_count{method="POST",route="/api/orders",status="409"} 1.0'
        in text
    )
    assert "openticket_seat_hold_seconds_count 2.0" in text
    assert "openticket_double_sales_prevented_total 0.0" in text


async def test_every_answer_carries_a_request_id(api: Api) -> None:
    mine = await api.client.get("/health/live", headers={"X-Request-ID": "abc-123"})
    assert mine.headers["x-request-id"] == "abc-123"
    fresh = await api.client.get("/health/live")
    assert len(fresh.headers["x-request-id"]) == 32


async def test_the_request_id_follows_into_the_events_the_request_caused(api: Api) -> None:
    from openticket.domain.ordering import OrderCreated
    from openticket.domain.seating import SeatHoldRejected, SeatsHeld

    seen: list[tuple[str, str | None]] = []

    async def record(event: Any) -> None:
        bound = structlog.contextvars.get_contextvars().get("request_id")
        seen.append((type(event).__name__, bound))

    bus = api.container.app().bus
    for kind in (SeatsHeld, SeatHoldRejected, OrderCreated):
        bus.subscribe(kind, f"test_{kind.__name__}", record)
    alice, bob = await api.buyer("alice"), await api.buyer("bob")
    await api.client.post(
        "/api/orders",
        json={"session_id": api.session_id, "seat_ids": ["A-5-5"]},
        headers={**alice, "X-Request-ID": "req-alice"},
    )
    await api.client.post(
        "/api/orders",
        json={"session_id": api.session_id, "seat_ids": ["A-5-5"]},
        headers={**bob, "X-Request-ID": "req-bob"},
    )

    async def all_seen() -> bool:
        return len(seen) == 3

    await api.eventually(all_seen)
    assert sorted(seen) == [
        ("OrderCreated", "req-alice"),
        ("SeatHoldRejected", "req-bob"),
        ("SeatsHeld", "req-alice"),
    ]
