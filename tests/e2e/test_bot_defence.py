"""The bot defence at the gate, as buyers and scripts meet it over HTTP (reliability 34).

A script that orders the moment it is let in is refused (403 ``bot_suspected``) and holds
nothing, while a buyer who takes a human moment orders; a script hammering the queue's
join is sent to the back, behind a buyer who joined once. In process (fake clock) and,
with ``OPENTICKET_E2E_STORAGE=production``, against serve + two workers with the counts
in Redis (real time).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from .conftest import Api, deployment, in_process
from .test_http_contract import assert_problem
from .test_waiting_room import join, order, queued_sale, read, seat_statuses, until

pytestmark = [pytest.mark.e2e, pytest.mark.production]


@pytest.fixture
async def guarded(
    request: pytest.FixtureRequest, production_env: dict[str, str] | None
) -> AsyncIterator[Api]:
    """The platform of this run's profile with its bot defence on."""
    if production_env is not None:
        env = {**production_env, "OPENTICKET_BOT_DEFENCE": "true"}
        async with deployment(request, env) as remote:
            yield remote
        return
    async with in_process(request, bot_defence=True) as local:
        yield local


async def think(api: Api, seconds: float) -> None:
    """A person's moment: the fake clock moves in process, real time passes in production."""
    if api.clock is not None:
        api.clock.advance(seconds)
    else:
        await asyncio.sleep(seconds)


async def test_an_order_placed_the_moment_its_buyer_is_let_in_is_refused(guarded: Api) -> None:
    api = guarded
    session_id = await queued_sale(api, seats=4)
    script, person = await api.buyer("script"), await api.buyer("person")
    entries = [await join(api, who, session_id) for who in (script, person)]
    tokens = [
        (await until(api, who, session_id, entry["queue_id"], "admitted"))["admission_token"]
        for who, entry in zip((script, person), entries, strict=True)
    ]
    refused = await order(api, script, session_id, tokens[0], "F-1-1")
    assert "automated" in assert_problem(refused, 403, "bot_suspected")["detail"]
    assert (await seat_statuses(api, session_id))["F-1-1"] == "available"

    await think(api, 2.0)
    placed = await order(api, person, session_id, tokens[1], "F-1-2")
    assert placed.status_code == 201, placed.text
    # the refusal did not spend the script's admission: paced now, it may order too
    again = await order(api, script, session_id, tokens[0], "F-1-1")
    assert again.status_code == 201, again.text
    if api.container is not None:
        metrics = (await api.client.get("/metrics")).text
        assert f'session_id="{session_id}"' in metrics
        assert 'kind="order"' in metrics
        assert 'action="refuse"' in metrics


async def test_a_script_hammering_the_join_is_sent_behind_a_buyer_who_joined_once(
    guarded: Api,
) -> None:
    api = guarded
    # one seat: one shopper at a time (1 x 1.5), the rest wait in line
    session_id = await queued_sale(api, seats=1)
    first, script, person = (
        await api.buyer("first"),
        await api.buyer("script"),
        await api.buyer("person"),
    )
    first_entry = await join(api, first, session_id)
    await until(api, first, session_id, first_entry["queue_id"], "admitted")
    script_entry = await join(api, script, session_id)
    person_entry = await join(api, person, session_id)
    assert (script_entry["position"], person_entry["position"]) == (1, 2)

    for _ in range(25):  # far past 20 requests a minute from one account
        entry = await join(api, script, session_id)
    assert entry["queue_id"] == script_entry["queue_id"]
    assert entry["status"] == "waiting"
    assert entry["position"] == 2
    person_now = (await read(api, person, session_id, person_entry["queue_id"])).json()
    assert person_now["position"] == 1
