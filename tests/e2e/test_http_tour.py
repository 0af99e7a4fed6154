"""The buyer's tour over HTTP: sign in, look at seats, hold, pay, ticket, check in; and a
stampede of buyers for one seat."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from .conftest import Api

pytestmark = [pytest.mark.e2e, pytest.mark.production]

FANS = 20
"""Buyers in the stampede, each sending ``TRIES`` requests at once."""
TRIES = 10


async def test_a_buyer_holds_pays_and_gets_in(api: Api) -> None:
    alice = await api.buyer("alice")
    seats = (await api.client.get(f"/api/sessions/{api.session_id}/seats")).json()["items"]
    assert {s["status"] for s in seats} == {"available"}
    assert seats[0] == {
        "seat_id": "A-1-1",
        "area_id": "A",
        "row": "1",
        "number": 1,
        "status": "available",
        "price": {"amount": "2800.00", "currency": "TWD"},
    }

    held = await api.client.post(
        "/api/orders",
        json={"session_id": api.session_id, "seat_ids": ["A-1-1", "A-1-2"]},
        headers=alice,
    )
    assert held.status_code == 201, held.text
    order = held.json()
    assert order["status"] == "created"
    assert order["total"] == {"amount": "5600.00", "currency": "TWD"}
    assert [i["seat_id"] for i in order["items"]] == ["A-1-1", "A-1-2"]

    paid = await api.client.post(
        f"/api/orders/{order['order_id']}/payments", json={"provider": "mock"}, headers=alice
    )
    assert paid.status_code == 201, paid.text
    assert paid.json()["status"] == "succeeded"
    done = (await api.client.get(f"/api/orders/{order['order_id']}", headers=alice)).json()
    assert done["status"] == "completed"
    assert done["payment_id"] == paid.json()["payment_id"]

    tickets = (await api.client.get("/api/me/tickets", headers=alice)).json()["items"]
    assert sorted(t["seat_id"] for t in tickets) == ["A-1-1", "A-1-2"]
    staff = await api.token("staff@openticket.local")
    checked = await api.client.post(
        "/api/check-ins", json={"qr_code": tickets[0]["qr_code"]}, headers=staff
    )
    assert checked.status_code == 200
    assert checked.json()["status"] == "used"
    again = await api.client.post(
        "/api/check-ins", json={"qr_code": tickets[0]["qr_code"]}, headers=staff
    )
    assert again.status_code == 409
    assert again.json()["code"] == "already_used"
    assert again.headers["content-type"].startswith("application/problem+json")

    statuses = {
        s["seat_id"]: s["status"]
        for s in (await api.client.get(f"/api/sessions/{api.session_id}/seats")).json()["items"]
    }
    assert (statuses["A-1-1"], statuses["A-1-2"], statuses["A-1-3"]) == (
        "sold",
        "sold",
        "available",
    )


async def test_a_stampede_for_one_seat_sells_it_once(api: Api) -> None:
    fans = [await api.buyer(f"fan{n}") for n in range(FANS)]
    answers = await asyncio.gather(
        *(
            api.client.post(
                "/api/orders",
                json={"session_id": api.session_id, "seat_ids": ["B-3-7"]},
                headers=fan,
            )
            for fan in fans
            for _ in range(TRIES)
        )
    )
    assert Counter(a.status_code for a in answers) == {201: 1, 409: FANS * TRIES - 1}
    refused = [a.json() for a in answers if a.status_code == 409]
    assert {(r["code"], tuple(r["unavailable_seats"])) for r in refused} == {
        ("seat_unavailable", ("B-3-7",))
    }
    [won] = [(n, a.json()) for n, a in enumerate(answers) if a.status_code == 201]
    winner = fans[won[0] // TRIES]
    paid = await api.client.post(
        f"/api/orders/{won[1]['order_id']}/payments", json={"provider": "mock"}, headers=winner
    )
    assert paid.status_code == 201, paid.text

    async def one_ticket_for_the_winner() -> bool:
        tickets = [
            t
            for fan in fans
            for t in (await api.client.get("/api/me/tickets", headers=fan)).json()["items"]
        ]
        return [(t["seat_id"], t["status"]) for t in tickets] == [("B-3-7", "issued")]

    await api.eventually(one_ticket_for_the_winner)
    seats = (await api.client.get(f"/api/sessions/{api.session_id}/seats")).json()["items"]
    assert {s["seat_id"]: s["status"] for s in seats}["B-3-7"] == "sold"
