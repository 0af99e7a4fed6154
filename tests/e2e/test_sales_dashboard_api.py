"""``GET /api/sessions/{id}/sales``: what the organizer's sales dashboard polls.

In process only: another organizer is made through the container.
"""

from __future__ import annotations

from typing import Any

import pytest

from openticket.domain.identity import Role

from .conftest import PASSWORD, Api
from .test_http_contract import assert_problem
from .test_waiting_room import join, queued_sale

pytestmark = pytest.mark.e2e


async def sales(api: Api, who: dict[str, str], session_id: str) -> dict[str, Any]:
    answer = await api.client.get(f"/api/sessions/{session_id}/sales", headers=who)
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store"  # one organizer's figures
    body: dict[str, Any] = answer.json()
    return body


async def available_seats(api: Api, session_id: str, count: int) -> list[str]:
    answer = await api.client.get(f"/api/sessions/{session_id}/seats")
    seats = [s["seat_id"] for s in answer.json()["items"] if s["status"] == "available"]
    assert len(seats) >= count
    return seats[:count]


async def test_the_figures_move_when_a_buyer_holds_and_pays(api: Api) -> None:
    organizer = await api.token("organizer@openticket.local")
    before = await sales(api, organizer, api.session_id)
    assert before["session_id"] == api.session_id
    assert before["held"] == 0
    assert before["sold"] == 0
    assert before["queue_depth"] == 0
    assert before["orders_last_minute"] == 0
    assert before["sellable"] > 2

    buyer = await api.buyer("ada")
    seats = await available_seats(api, api.session_id, 2)
    placed = await api.client.post(
        "/api/orders", json={"session_id": api.session_id, "seat_ids": seats}, headers=buyer
    )
    assert placed.status_code == 201, placed.text
    held = await sales(api, organizer, api.session_id)
    assert (held["sellable"], held["held"], held["sold"]) == (before["sellable"] - 2, 2, 0)
    assert held["orders_last_minute"] == 1

    paid = await api.client.post(
        f"/api/orders/{placed.json()['order_id']}/payments",
        json={"provider": "mock"},
        headers=buyer,
    )
    assert paid.status_code == 201, paid.text

    async def sold() -> bool:
        now = await sales(api, organizer, api.session_id)
        return (now["sellable"], now["held"], now["sold"]) == (before["sellable"] - 2, 0, 2)

    await api.eventually(sold)

    assert api.clock is not None
    api.clock.advance(61)
    later = await sales(api, organizer, api.session_id)
    assert later["orders_last_minute"] == 0  # the order is over a minute old
    assert later["sold"] == 2


async def test_an_admin_reads_any_sale(api: Api) -> None:
    admin = await api.token("admin@openticket.local")
    assert (await sales(api, admin, api.session_id))["session_id"] == api.session_id


async def test_the_queue_depth_counts_the_buyers_waiting(api: Api) -> None:
    session_id = await queued_sale(api, seats=2, sale_starts_in=60)
    for name in ("kim", "lee", "park"):
        await join(api, await api.buyer(name), session_id)
    organizer = await api.token("organizer@openticket.local")
    assert (await sales(api, organizer, session_id))["queue_depth"] == 3


async def test_another_organizers_session_is_not_found(api: Api) -> None:
    assert api.container is not None
    await api.container.identity().ensure_user(
        email="rival@example.com",
        password=PASSWORD,
        display_name="Rival Promotions",
        roles=[Role.ORGANIZER],
    )
    rival = await api.token("rival@example.com")
    answer = await api.client.get(f"/api/sessions/{api.session_id}/sales", headers=rival)
    assert_problem(answer, 404, "not_found")


async def test_a_buyer_is_forbidden_and_a_stranger_unauthorized(api: Api) -> None:
    buyer = await api.buyer("grace")
    answer = await api.client.get(f"/api/sessions/{api.session_id}/sales", headers=buyer)
    assert_problem(answer, 403, "forbidden")
    answer = await api.client.get(f"/api/sessions/{api.session_id}/sales")
    assert_problem(answer, 401, "unauthorized")


async def test_an_unknown_session_is_not_found(api: Api) -> None:
    organizer = await api.token("organizer@openticket.local")
    answer = await api.client.get(
        "/api/sessions/00000000-0000-4000-8000-000000000000/sales", headers=organizer
    )
    assert_problem(answer, 404, "not_found")
