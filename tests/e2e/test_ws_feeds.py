"""Live feeds: a snapshot, then every change — seats of a session, orders of a user."""

from __future__ import annotations

import uuid

import pytest
from litestar.exceptions import WebSocketDisconnect

from .conftest import Api
from .test_waiting_room import queued_sale

pytestmark = pytest.mark.e2e


async def test_the_seat_feed_sends_a_snapshot_then_every_change(api: Api) -> None:
    alice = await api.buyer("alice")
    ws = await api.client.websocket_connect(f"/ws/sessions/{api.session_id}/seats")
    with ws:
        snapshot = ws.receive_json()
        assert snapshot["type"] == "snapshot"
        assert len(snapshot["seats"]) == 275
        assert snapshot["seats"][0]["status"] == "available"
        order = await api.client.post(
            "/api/orders",
            json={"session_id": api.session_id, "seat_ids": ["A-1-1", "A-1-2"]},
            headers=alice,
        )
        held = [ws.receive_json(), ws.receive_json()]
        assert [(m["type"], m["seat_id"], m["status"]) for m in held] == [
            ("seat", "A-1-1", "held"),
            ("seat", "A-1-2", "held"),
        ]
        assert held[0]["at"].endswith("Z")
        await api.client.post(
            f"/api/orders/{order.json()['order_id']}/payments",
            json={"provider": "mock"},
            headers=alice,
        )
        sold = [ws.receive_json(), ws.receive_json()]
        assert {(m["seat_id"], m["status"]) for m in sold} == {("A-1-1", "sold"), ("A-1-2", "sold")}


async def test_the_order_feed_says_hello_then_follows_the_users_orders(api: Api) -> None:
    alice, bob = await api.buyer("alice"), await api.buyer("bob")
    token = alice["Authorization"].removeprefix("Bearer ")
    ws = await api.client.websocket_connect("/ws/me/orders", params={"token": token})
    with ws:
        assert ws.receive_json() == {"type": "hello"}
        await api.client.post(
            "/api/orders", json={"session_id": api.session_id, "seat_ids": ["B-1-1"]}, headers=bob
        )
        order = await api.client.post(
            "/api/orders", json={"session_id": api.session_id, "seat_ids": ["B-1-2"]}, headers=alice
        )
        order_id = order.json()["order_id"]
        await api.client.post(
            f"/api/orders/{order_id}/payments", json={"provider": "mock"}, headers=alice
        )
        seen = [ws.receive_json() for _ in range(3)]
        assert [(m["order_id"], m["status"]) for m in seen] == [
            (order_id, "created"),
            (order_id, "payment_pending"),
            (order_id, "completed"),
        ]


@pytest.mark.parametrize("params", [{"token": "forged"}, {"token": ""}, {}])
async def test_the_order_feed_refuses_a_bad_or_missing_token(
    api: Api, params: dict[str, str]
) -> None:
    # accepted, then closed: a browser learns the code and reason only from a close
    ws = await api.client.websocket_connect("/ws/me/orders", params=params)
    with ws, pytest.raises(WebSocketDisconnect) as refused:
        ws.receive_json()
    assert (refused.value.code, refused.value.detail) == (1008, "a valid token is needed")


async def test_the_seat_feed_of_an_unknown_session_closes(api: Api) -> None:
    ws = await api.client.websocket_connect(f"/ws/sessions/{uuid.uuid4()}/seats")
    with ws, pytest.raises(WebSocketDisconnect) as closed:
        ws.receive_json()
    assert closed.value.code == 4404


async def test_the_queue_feed_sends_the_entry_then_its_admission(api: Api) -> None:
    assert api.clock is not None
    session_id = await queued_sale(api, seats=2, sale_starts_in=60)
    alice, bob = await api.buyer("alice"), await api.buyer("bob")
    entry = (await api.client.post(f"/api/sessions/{session_id}/queue", headers=alice)).json()
    token = alice["Authorization"].removeprefix("Bearer ")
    path = f"/ws/sessions/{session_id}/queue/{entry['queue_id']}"
    ws = await api.client.websocket_connect(path, params={"token": token})
    with ws:
        first = ws.receive_json()
        assert first == entry  # the shape of the GET, the pre-queue's null position
        assert first["position"] is None
        assert first["draw_at"] is not None
        api.clock.advance(61)  # the draw: the admitter lets alice in
        admitted = ws.receive_json()
        assert admitted["status"] == "admitted"
        assert admitted["position"] == 0
        assert admitted["admission_token"]
    # another buyer cannot follow alice's entry
    bob_token = bob["Authorization"].removeprefix("Bearer ")
    ws = await api.client.websocket_connect(path, params={"token": bob_token})
    with ws, pytest.raises(WebSocketDisconnect) as closed:
        ws.receive_json()
    assert closed.value.code == 4404
