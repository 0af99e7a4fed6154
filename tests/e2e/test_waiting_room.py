"""The waiting room of api.md: join, pre-queue draw, outflow by stock, admission tokens.

Every test runs in process (fake clock) and, with ``OPENTICKET_E2E_STORAGE=production``,
against serve + two workers on PostgreSQL, Redis and NATS (real time): the admitter
runs inside the API process in both.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from .conftest import Api
from .test_http_contract import assert_problem

pytestmark = [pytest.mark.e2e, pytest.mark.production]

PRICE = {"amount": "800.00", "currency": "TWD"}


def _now(api: Api) -> datetime:
    return api.clock.now() if api.clock is not None else datetime.now(UTC)


async def queued_sale(
    api: Api,
    *,
    seats: int = 3,
    sale_starts_in: float = 0.0,
    max_seats_per_order: int = 10,
    max_seats_per_user: int | None = None,
    queue_enabled: bool = True,
    challenge_required: bool = False,
) -> str:
    """A venue of ``seats`` seats in area F, an event and a session; the session's id."""
    organizer = await api.token("organizer@openticket.local")
    venue = await api.client.post(
        "/api/venues",
        json={
            "name": "Small hall",
            "address": {"city": "Hsinchu"},
            "seat_map": {
                "areas": [
                    {
                        "area_id": "F",
                        "name": "Floor",
                        "rows": [{"row": "1", "seats": list(range(1, seats + 1))}],
                    }
                ]
            },
        },
        headers=organizer,
    )
    assert venue.status_code == 201, venue.text
    event = await api.client.post(
        "/api/events",
        json={"venue_id": venue.json()["venue_id"], "name": "Flash sale"},
        headers=organizer,
    )
    assert event.status_code == 201, event.text
    event_id = event.json()["event_id"]
    category = await api.client.post(
        f"/api/events/{event_id}/price-categories",
        json={"name": "Floor", "area_ids": ["F"], "price": PRICE},
        headers=organizer,
    )
    assert category.status_code == 201, category.text
    now = _now(api)
    session = await api.client.post(
        f"/api/events/{event_id}/sessions",
        json={
            "start_time": (now + timedelta(days=30)).isoformat(),
            "end_time": (now + timedelta(days=30, hours=3)).isoformat(),
            "sale_start_time": (now + timedelta(seconds=sale_starts_in)).isoformat(),
            "sale_end_time": (now + timedelta(days=29)).isoformat(),
            "queue_enabled": queue_enabled,
            "max_seats_per_order": max_seats_per_order,
            **({} if max_seats_per_user is None else {"max_seats_per_user": max_seats_per_user}),
            "challenge_required": challenge_required,
        },
        headers=organizer,
    )
    assert session.status_code == 201, session.text
    assert session.json()["queue_enabled"] is queue_enabled
    return str(session.json()["session_id"])


async def join(api: Api, who: dict[str, str], session_id: str) -> dict[str, Any]:
    answer = await api.client.post(f"/api/sessions/{session_id}/queue", headers=who)
    assert answer.status_code == 201, answer.text
    entry: dict[str, Any] = answer.json()
    assert entry["session_id"] == session_id
    assert entry["status"] in {"waiting", "admitted", "sold_out"}
    return entry


async def read(api: Api, who: dict[str, str], session_id: str, queue_id: str) -> httpx.Response:
    return await api.client.get(f"/api/sessions/{session_id}/queue/{queue_id}", headers=who)


async def until(
    api: Api, who: dict[str, str], session_id: str, queue_id: str, status: str
) -> dict[str, Any]:
    """The entry once it has ``status`` (the admitter runs every half second)."""
    seen: dict[str, Any] = {}

    async def reached() -> bool:
        answer = await read(api, who, session_id, queue_id)
        assert answer.status_code == 200, answer.text
        seen.update(answer.json())
        return bool(seen["status"] == status)

    await api.eventually(reached, seconds=15)
    return seen


async def order(
    api: Api, who: dict[str, str], session_id: str, token: str | None, *seats: str
) -> httpx.Response:
    headers = dict(who) if token is None else {**who, "X-Admission-Token": token}
    return await api.client.post(
        "/api/orders", json={"session_id": session_id, "seat_ids": list(seats)}, headers=headers
    )


async def seat_statuses(api: Api, session_id: str) -> dict[str, str]:
    answer = await api.client.get(f"/api/sessions/{session_id}/seats")
    assert answer.status_code == 200, answer.text
    return {s["seat_id"]: s["status"] for s in answer.json()["items"]}


async def pass_sale_start(api: Api, session_id: str, seconds: float) -> None:
    """Move past the sale start: the fake clock in process, real time in production."""
    if api.clock is not None:
        api.clock.advance(seconds + 1)
        return
    session = (await api.client.get(f"/api/sessions/{session_id}")).json()
    start = datetime.fromisoformat(session["sale_start_time"])
    await asyncio.sleep(max((start - datetime.now(UTC)).total_seconds(), 0) + 0.2)


async def test_an_order_of_a_queued_session_needs_the_buyers_own_admission_token(
    api: Api,
) -> None:
    session_id = await queued_sale(api)
    other_session = await queued_sale(api)
    alice, bob = await api.buyer("alice"), await api.buyer("bob")

    refused = await order(api, alice, session_id, None, "F-1-1")
    assert "queue" in assert_problem(refused, 403, "queue_required")["detail"]
    assert set((await seat_statuses(api, session_id)).values()) == {"available"}

    entry = await join(api, alice, session_id)
    again = await join(api, alice, session_id)
    assert again["queue_id"] == entry["queue_id"]
    admitted = await until(api, alice, session_id, entry["queue_id"], "admitted")
    assert admitted["position"] == 0
    token = admitted["admission_token"]
    assert token
    assert datetime.fromisoformat(admitted["admitted_until"]) > _now(api)

    # someone else's token, an altered one and one of another session are refused
    assert_problem(await order(api, bob, session_id, token, "F-1-1"), 403, "queue_required")
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    assert_problem(await order(api, alice, session_id, forged, "F-1-1"), 403, "queue_required")
    assert_problem(await order(api, alice, other_session, token, "F-1-1"), 403, "queue_required")
    assert set((await seat_statuses(api, session_id)).values()) == {"available"}

    # bob's attempt did not spend it: alice orders with it, twice (below her cap)
    first = await order(api, alice, session_id, token, "F-1-1")
    assert first.status_code == 201, first.text
    second = await order(api, alice, session_id, token, "F-1-2")
    assert second.status_code == 201, second.text
    statuses = await seat_statuses(api, session_id)
    assert statuses == {"F-1-1": "held", "F-1-2": "held", "F-1-3": "available"}

    # the gate's metrics, per session: the admission, the wait it ended, the depth
    metrics = (await api.client.get("/metrics")).text
    label = f'{{session_id="{session_id}"}}'
    assert f"openticket_queue_admitted_total{label} 1.0" in metrics
    assert f"openticket_queue_wait_seconds_count{label} 1.0" in metrics
    assert f"openticket_queue_depth{label} 0.0" in metrics


async def test_joining_before_the_sale_draws_the_pre_queue_ahead_of_later_joiners(
    api: Api,
) -> None:
    # two seats: the gate lets in at most 2 x 1.5 = 3 shoppers at a time
    starts_in = 60.0 if api.clock is not None else 4.0
    session_id = await queued_sale(api, seats=2, sale_starts_in=starts_in)
    early = [await api.buyer(f"early{i}") for i in range(5)]
    entries = [await join(api, who, session_id) for who in early]
    session = (await api.client.get(f"/api/sessions/{session_id}")).json()
    for entry in entries:
        assert entry["status"] == "waiting"
        assert entry["position"] is None  # nobody's place shows before the draw
        assert entry["draw_at"] == session["sale_start_time"]
        assert entry["admission_token"] is None
    assert len({e["queue_id"] for e in entries}) == 5

    await pass_sale_start(api, session_id, starts_in)
    late = await api.buyer("late")
    late_entry = await join(api, late, session_id)
    assert late_entry["draw_at"] is None

    async def three_admitted() -> bool:
        read_back = [
            (await read(api, w, session_id, e["queue_id"])).json()
            for w, e in zip(early, entries, strict=True)
        ]
        return sum(r["status"] == "admitted" for r in read_back) == 3

    await api.eventually(three_admitted, seconds=15)
    early_now = [
        (await read(api, w, session_id, e["queue_id"])).json()
        for w, e in zip(early, entries, strict=True)
    ]
    late_now = (await read(api, late, session_id, late_entry["queue_id"])).json()
    waiting_early = sorted(e["position"] for e in early_now if e["status"] == "waiting")
    assert waiting_early == [1, 2]
    # the late joiner stands behind every pre-queue buyer, and no fourth shopper is let in
    assert late_now["status"] == "waiting"
    assert late_now["position"] == 3
    assert late_now["estimated_wait_s"] >= 1
    await asyncio.sleep(1.2)
    again = (await read(api, late, session_id, late_entry["queue_id"])).json()
    assert again["status"] == "waiting"


async def test_waiting_entries_say_sold_out_once_the_last_seat_is_sold(api: Api) -> None:
    session_id = await queued_sale(api, seats=1)
    alice, bob = await api.buyer("alice"), await api.buyer("bob")
    alice_entry = await join(api, alice, session_id)
    admitted = await until(api, alice, session_id, alice_entry["queue_id"], "admitted")
    bob_entry = await join(api, bob, session_id)
    assert bob_entry["status"] == "waiting"  # one seat x 1.5: one shopper at a time
    placed = await order(api, alice, session_id, admitted["admission_token"], "F-1-1")
    assert placed.status_code == 201, placed.text
    paid = await api.client.post(
        f"/api/orders/{placed.json()['order_id']}/payments",
        json={"provider": "mock"},
        headers=alice,
    )
    assert paid.status_code == 201, paid.text
    sold_out = await until(api, bob, session_id, bob_entry["queue_id"], "sold_out")
    assert sold_out["position"] is None
    assert sold_out["admission_token"] is None
    carol = await api.buyer("carol")
    assert (await join(api, carol, session_id))["status"] == "sold_out"


async def test_the_order_that_reaches_the_buyers_cap_spends_the_token(api: Api) -> None:
    session_id = await queued_sale(api, seats=5, max_seats_per_order=2, max_seats_per_user=3)
    alice = await api.buyer("alice")
    entry = await join(api, alice, session_id)
    token = (await until(api, alice, session_id, entry["queue_id"], "admitted"))["admission_token"]
    first = await order(api, alice, session_id, token, "F-1-1", "F-1-2")
    assert first.status_code == 201, first.text
    assert (await read(api, alice, session_id, entry["queue_id"])).json()["status"] == "admitted"
    last = await order(api, alice, session_id, token, "F-1-3")  # 3 of 3: the token is spent
    assert last.status_code == 201, last.text
    assert_problem(await order(api, alice, session_id, token, "F-1-4"), 403, "queue_required")
    assert_problem(await read(api, alice, session_id, entry["queue_id"]), 404, "not_found")
    assert (await seat_statuses(api, session_id))["F-1-4"] == "available"


async def test_queue_entries_are_their_buyers_own(api: Api) -> None:
    session_id = await queued_sale(api)
    alice, bob = await api.buyer("alice"), await api.buyer("bob")
    entry = await join(api, alice, session_id)
    assert_problem(await read(api, bob, session_id, entry["queue_id"]), 404, "not_found")
    assert_problem(await read(api, alice, session_id, str(uuid.uuid4())), 404, "not_found")
    answer = await api.client.post(f"/api/sessions/{session_id}/queue")
    assert_problem(answer, 401, "unauthorized")
    organizer = await api.token("organizer@openticket.local")
    answer = await api.client.post(f"/api/sessions/{session_id}/queue", headers=organizer)
    assert_problem(answer, 403, "forbidden")
    unknown = await api.client.post(f"/api/sessions/{uuid.uuid4()}/queue", headers=alice)
    assert_problem(unknown, 404, "not_found")


async def test_a_session_sold_without_a_queue_refuses_joins_and_sells_without_a_token(
    api: Api,
) -> None:
    session_id = await queued_sale(api, queue_enabled=False)
    alice = await api.buyer("alice")
    answer = await api.client.post(f"/api/sessions/{session_id}/queue", headers=alice)
    assert_problem(answer, 409, "queue_not_enabled")
    placed = await order(api, alice, session_id, None, "F-1-1")
    assert placed.status_code == 201, placed.text


async def test_the_queue_feed_of_a_real_server_follows_the_entry_to_its_admission(
    served: Api,
) -> None:
    """``openticket serve`` (and in production serve + workers), real frames and real time."""
    import json

    import websockets

    api = served
    session_id = await queued_sale(api, seats=2, sale_starts_in=3.0)
    alice, bob = await api.buyer("alice"), await api.buyer("bob")
    entry = await join(api, alice, session_id)
    base = str(api.client.base_url).replace("http://", "ws://")
    feed = f"{base}/ws/sessions/{session_id}/queue/{entry['queue_id']}?token="
    async with websockets.connect(feed + alice["Authorization"].removeprefix("Bearer ")) as ws:
        first = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert first == entry  # the GET's shape: in the pre-queue, no position yet
        assert first["position"] is None
        seen = first
        while seen["status"] != "admitted":  # the draw at the sale start, then the admitter
            seen = json.loads(await asyncio.wait_for(ws.recv(), 15))
        assert seen["position"] == 0
        assert seen["admission_token"]
    stranger = feed + bob["Authorization"].removeprefix("Bearer ")
    async with websockets.connect(stranger) as ws:
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 5)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4404
