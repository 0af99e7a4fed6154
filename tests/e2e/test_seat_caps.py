"""Per-user seat caps and price-category quotas, as a buyer meets them (issue 16).

Every test runs on every profile (marked ``production``): the caps are counted by the
order store, where orders of every area (partition) and every API process meet.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from .conftest import Api
from .test_http_contract import assert_problem

pytestmark = [pytest.mark.e2e, pytest.mark.production]


async def order(api: Api, who: dict[str, str], session_id: str, *seats: str) -> httpx.Response:
    return await api.client.post(
        "/api/orders", json={"session_id": session_id, "seat_ids": list(seats)}, headers=who
    )


async def seat_statuses(api: Api, session_id: str) -> dict[str, str]:
    answer = await api.client.get(f"/api/sessions/{session_id}/seats")
    assert answer.status_code == 200, answer.text
    return {s["seat_id"]: s["status"] for s in answer.json()["items"]}


async def a_sale(api: Api, *, quota: int | None = None, **limits: int) -> str:
    """A venue with areas A and B priced by one category (with ``quota``); the session id."""
    organizer = await api.token("organizer@openticket.local")
    rows = [{"row": "1", "seats": [1, 2, 3, 4, 5]}]
    venue = await api.client.post(
        "/api/venues",
        json={
            "name": "Hall",
            "address": {"city": "Tainan"},
            "seat_map": {
                "areas": [
                    {"area_id": "A", "name": "Floor", "rows": rows},
                    {"area_id": "B", "name": "Balcony", "rows": rows},
                ]
            },
        },
        headers=organizer,
    )
    assert venue.status_code == 201, venue.text
    event = await api.client.post(
        "/api/events", json={"venue_id": venue.json()["venue_id"], "name": "Gig"}, headers=organizer
    )
    assert event.status_code == 201, event.text
    event_id = event.json()["event_id"]
    category: dict[str, Any] = {
        "name": "Everywhere",
        "area_ids": ["A", "B"],
        "price": {"amount": "500.00", "currency": "TWD"},
    }
    if quota is not None:
        category["quota"] = quota
    priced = await api.client.post(
        f"/api/events/{event_id}/price-categories", json=category, headers=organizer
    )
    assert priced.status_code == 201, priced.text
    now = api.clock.now() if api.clock is not None else datetime.now(UTC)
    session = await api.client.post(
        f"/api/events/{event_id}/sessions",
        json={
            "start_time": (now + timedelta(days=60)).isoformat(),
            "end_time": (now + timedelta(days=60, hours=3)).isoformat(),
            "sale_start_time": (now - timedelta(minutes=1)).isoformat(),
            "sale_end_time": (now + timedelta(days=30)).isoformat(),
            **limits,
        },
        headers=organizer,
    )
    assert session.status_code == 201, session.text
    assert session.json()["sale_state"] == "on_sale"
    return str(session.json()["session_id"])


async def test_a_buyer_takes_up_to_the_cap_over_two_areas_and_no_more(api: Api) -> None:
    """Cap 4: 2 seats in A, 2 in B, then 1 more is 409 and holds nothing; others still buy."""
    session_id = await a_sale(api, max_seats_per_order=3, max_seats_per_user=4)
    session = (await api.client.get(f"/api/sessions/{session_id}")).json()
    assert (session["max_seats_per_order"], session["max_seats_per_user"]) == (3, 4)
    alice, bob = await api.buyer("alice"), await api.buyer("bob")
    for seats in (("A-1-1", "A-1-2"), ("B-1-1", "B-1-2")):
        placed = await order(api, alice, session_id, *seats)
        assert placed.status_code == 201, placed.text
    refused = assert_problem(
        await order(api, alice, session_id, "A-1-3"), 409, "user_limit_reached"
    )
    assert "4 seats per buyer" in refused["detail"]
    assert "may take 0 more" in refused["detail"]
    assert (await seat_statuses(api, session_id))["A-1-3"] == "available"
    bought = await order(api, bob, session_id, "A-1-3")
    assert bought.status_code == 201, bought.text


async def test_a_cancelled_orders_seats_no_longer_count(api: Api) -> None:
    alice = await api.buyer("alice")
    session_id = await a_sale(api, max_seats_per_user=2)
    first = await order(api, alice, session_id, "A-1-1", "A-1-2")
    assert first.status_code == 201, first.text
    assert_problem(await order(api, alice, session_id, "B-1-1"), 409, "user_limit_reached")
    cancelled = await api.client.delete(f"/api/orders/{first.json()['order_id']}", headers=alice)
    assert cancelled.json()["status"] == "cancelled"
    again = await order(api, alice, session_id, "B-1-1", "B-1-2")
    assert again.status_code == 201, again.text


async def test_an_expired_orders_seats_no_longer_count(api: Api) -> None:
    if api.clock is None:
        pytest.skip("needs the fake clock to let a hold run out")
    alice = await api.buyer("alice")
    session_id = await a_sale(api, max_seats_per_user=2)
    first = (await order(api, alice, session_id, "A-1-1", "A-1-2")).json()
    api.clock.advance(121)

    async def expired() -> bool:
        answer = await api.client.get(f"/api/orders/{first['order_id']}", headers=alice)
        return bool(answer.json()["status"] == "expired")

    await api.eventually(expired)
    again = await order(api, alice, session_id, "B-1-1", "B-1-2")
    assert again.status_code == 201, again.text


async def test_a_quota_over_two_areas_is_never_oversold(api: Api) -> None:
    """Quota 3 over A and B: 2 + 1 sold to two buyers, the next buyer's seat is 409."""
    session_id = await a_sale(api, quota=3)
    alice, bob, carol = [await api.buyer(n) for n in ("alice", "bob", "carol")]
    assert (await order(api, alice, session_id, "A-1-1", "A-1-2")).status_code == 201
    assert (await order(api, bob, session_id, "B-1-1")).status_code == 201
    refused = assert_problem(await order(api, carol, session_id, "B-1-2"), 409, "quota_exhausted")
    assert "0 of its 3" in refused["detail"]
    assert (await seat_statuses(api, session_id))["B-1-2"] == "available"


async def test_the_default_cap_is_the_per_order_cap(api: Api) -> None:
    """The demo session sells 10 seats per order and so 10 per buyer: the 11th is refused."""
    session = (await api.client.get(f"/api/sessions/{api.session_id}")).json()
    assert session["max_seats_per_user"] == session["max_seats_per_order"] == 10
    dave = await api.buyer("dave")
    first = await order(api, dave, api.session_id, *(f"A-9-{n}" for n in range(1, 7)))
    assert first.status_code == 201, first.text
    second = await order(api, dave, api.session_id, *(f"B-5-{n}" for n in range(1, 5)))
    assert second.status_code == 201, second.text
    refused = assert_problem(
        await order(api, dave, api.session_id, "B-5-5"), 409, "user_limit_reached"
    )
    assert "10 seats per buyer" in refused["detail"]


async def test_a_cap_out_of_range_is_refused(api: Api) -> None:
    organizer = await api.token("organizer@openticket.local")
    event_id = (await api.client.get("/api/events")).json()["items"][0]["event_id"]
    now = api.clock.now() if api.clock is not None else datetime.now(UTC)
    for cap in (0, 1001):
        answer = await api.client.post(
            f"/api/events/{event_id}/sessions",
            json={
                "start_time": (now + timedelta(days=60)).isoformat(),
                "end_time": (now + timedelta(days=60, hours=3)).isoformat(),
                "sale_start_time": now.isoformat(),
                "sale_end_time": (now + timedelta(days=30)).isoformat(),
                "max_seats_per_user": cap,
            },
            headers=organizer,
        )
        assert_problem(answer, 400, "validation_error")
