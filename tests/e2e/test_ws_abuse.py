"""Reliability check 32: WebSocket abuse — huge frames, floods, too many feeds, expired tokens."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Any

import attrs
import pytest
from litestar.exceptions import WebSocketDisconnect
from litestar.testing import WebSocketTestSession

from openticket.adapters.memory import MemoryNotifier
from openticket.application.ports.errors import AdapterUnavailable
from openticket.application.ports.messaging import SeatStatusChanged
from openticket.domain.shared import SessionId

from .conftest import Api, in_process

pytestmark = pytest.mark.e2e

WAIT = 5.0
"""Seconds a test waits for a message before it fails instead of hanging."""


@contextlib.asynccontextmanager
async def platform(
    request: pytest.FixtureRequest, notifier: MemoryNotifier | None = None, **caps: int
) -> AsyncIterator[Api]:
    """The platform in process (as the ``api`` fixture) with the WebSocket caps given."""
    replacing = {"notifier": notifier} if notifier else None
    async with in_process(request, replacing=replacing, **caps) as api:
        yield api


def closed(ws: WebSocketTestSession) -> WebSocketDisconnect:
    """How the server closes ``ws``: it sends nothing else first."""
    try:
        message = ws.receive(timeout=WAIT)
    except WebSocketDisconnect as closing:
        return closing
    pytest.fail(f"the feed sent {message} instead of closing")


@attrs.define
class Feeds:
    """Opens feeds on ``api``; every one still open is left when the block ends.

    A failed test must not leave a feed open: the test client waits for each to end.
    """

    api: Api
    _open: list[WebSocketTestSession] = attrs.Factory(list)

    def __enter__(self) -> Feeds:
        return self

    def __exit__(self, *_: object) -> None:
        self.leave(*self._open)

    async def connect(self, path: str, **params: str) -> WebSocketTestSession:
        """A feed the server accepted; nothing read from it yet."""
        ws = await self.api.client.websocket_connect(path, params=params)
        ws.__enter__()
        self._open.append(ws)
        return ws

    async def seats(self, session_id: str | None = None) -> WebSocketTestSession:
        """A seat feed, its snapshot read."""
        ws = await self.connect(f"/ws/sessions/{session_id or self.api.session_id}/seats")
        assert ws.receive_json(timeout=WAIT)["type"] == "snapshot"
        return ws

    async def orders(self, headers: dict[str, str]) -> WebSocketTestSession:
        """An order feed on the token in ``headers``; its hello not yet read."""
        token = headers["Authorization"].removeprefix("Bearer ")
        return await self.connect("/ws/me/orders", token=token)

    def leave(self, *feeds: WebSocketTestSession) -> None:
        """The client closes ``feeds``."""
        for ws in feeds:
            if ws in self._open:
                self._open.remove(ws)
                ws.__exit__(None, None, None)


async def hold(api: Api, headers: dict[str, str], *seat_ids: str) -> dict[str, Any]:
    answer = await api.client.post(
        "/api/orders",
        json={"session_id": api.session_id, "seat_ids": list(seat_ids)},
        headers=headers,
    )
    assert answer.status_code == 201, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def test_a_message_over_the_cap_closes_the_feed_with_1009(api: Api) -> None:
    with Feeds(api) as feeds:
        for too_big in ("x" * 4097, "é" * 2049, b"\0" * 4097):  # 2049 "é" are 4098 bytes
            ws = await feeds.seats()
            if isinstance(too_big, bytes):
                ws.send_bytes(too_big)
            else:
                ws.send_text(too_big)
            closing = closed(ws)
            assert closing.code == 1009
            assert closing.detail == "message too big (at most 4096 bytes)"


async def test_a_message_at_the_cap_is_ignored_and_the_server_stays_usable(api: Api) -> None:
    alice = await api.buyer("alice")
    with Feeds(api) as feeds:
        ws = await feeds.seats()
        ws.send_text("x" * 5_000_000)
        assert closed(ws).code == 1009
        ws = await feeds.seats()
        ws.send_text("x" * 4096)
        ws.send_bytes(b"\0" * 4096)
        await hold(api, alice, "A-1-1")
        change = ws.receive_json(timeout=WAIT)
        assert (change["type"], change["seat_id"], change["status"]) == ("seat", "A-1-1", "held")


async def test_a_flood_of_messages_closes_the_feed_with_1008(
    request: pytest.FixtureRequest,
) -> None:
    async with platform(request, ws_max_messages_per_minute=5) as api:
        alice = await api.buyer("alice")
        with Feeds(api) as feeds:
            ws = await feeds.seats()
            for _ in range(5):
                ws.send_text("ping")
            await hold(api, alice, "A-1-1")  # five a minute are allowed: the feed goes on
            assert ws.receive_json(timeout=WAIT)["seat_id"] == "A-1-1"
            ws.send_text("ping")
            closing = closed(ws)
            assert (closing.code, closing.detail) == (
                1008,
                "too many messages (at most 5 a minute)",
            )


async def test_the_feeds_of_one_address_are_capped_and_a_closed_one_gives_its_place_back(
    request: pytest.FixtureRequest,
) -> None:
    async with platform(request, ws_max_connections_per_address=2) as api:
        alice = await api.buyer("alice")
        seats = f"/ws/sessions/{api.session_id}/seats"
        with Feeds(api) as feeds:
            first, second = await feeds.seats(), await feeds.orders(alice)
            assert second.receive_json(timeout=WAIT) == {"type": "hello"}
            for refused in (await feeds.connect(seats), await feeds.orders(alice)):
                closing = closed(refused)
                assert (closing.code, closing.detail) == (1008, "too many feeds from this address")

            feeds.leave(first)  # the client leaves: its place is given back
            ws, snapshot = await admitted(feeds, seats)
            assert snapshot["type"] == "snapshot"

            # feeds the server closes give their place back too: were one of them still
            # counted, the next feed (besides ``second``) would never be admitted
            feeds.leave(ws)
            ws, no_session = await admitted(feeds, f"/ws/sessions/{uuid.uuid4()}/seats")
            assert isinstance(no_session, WebSocketDisconnect)
            assert no_session.code == 4404
            ws, _ = await admitted(feeds, seats)
            ws.send_text("x" * 5000)
            assert closed(ws).code == 1009
            ws, _ = await admitted(feeds, seats)
            for _ in range(121):
                ws.send_text("ping")
            assert closed(ws).code == 1008
            ws, snapshot = await admitted(feeds, seats)
            assert snapshot["type"] == "snapshot"


async def admitted(feeds: Feeds, path: str, **params: str) -> tuple[WebSocketTestSession, Any]:
    """A feed admitted at ``path`` once the caps allow, and its first message or close.

    The count of a feed that ended goes down once the app has seen it end: a client
    that is refused tries again, as real clients do with a back-off.
    """
    answers: list[tuple[WebSocketTestSession, Any]] = []

    async def attempt() -> bool:
        ws = await feeds.connect(path, **params)
        try:
            answers.append((ws, ws.receive_json(timeout=WAIT)))
        except WebSocketDisconnect as e:
            if e.detail.startswith("too many feeds"):
                feeds.leave(ws)
                return False
            answers.append((ws, e))
        return True

    await feeds.api.eventually(attempt)
    return answers[0]


async def test_the_order_feeds_of_one_user_are_capped(request: pytest.FixtureRequest) -> None:
    async with platform(request, ws_max_connections_per_user=2) as api:
        alice, bob = await api.buyer("alice"), await api.buyer("bob")
        with Feeds(api) as feeds:
            first, second = await feeds.orders(alice), await feeds.orders(alice)
            for ws in (first, second):
                assert ws.receive_json(timeout=WAIT) == {"type": "hello"}
            closing = closed(await feeds.orders(alice))
            assert (closing.code, closing.detail) == (1008, "too many feeds for this user")
            bobs = await feeds.orders(bob)  # the cap is Alice's, not everyone's
            assert bobs.receive_json(timeout=WAIT) == {"type": "hello"}

            feeds.leave(first)  # she closes one: a new one is admitted
            token = alice["Authorization"].removeprefix("Bearer ")
            _, hello = await admitted(feeds, "/ws/me/orders", token=token)
            assert hello == {"type": "hello"}


async def test_an_order_feed_closes_when_its_token_expires(api: Api) -> None:
    assert api.clock is not None
    alice = await api.buyer("alice")  # her token lives 900 s from now
    api.clock.advance(600)
    bob = await api.buyer("bob")  # his until 1500 s from the start
    with Feeds(api) as feeds:
        alices, bobs = await feeds.orders(alice), await feeds.orders(bob)
        assert alices.receive_json(timeout=WAIT) == {"type": "hello"}
        assert bobs.receive_json(timeout=WAIT) == {"type": "hello"}

        api.clock.advance(301)
        expired = closed(alices)  # within a second of the clock passing her token's expiry
        assert (expired.code, expired.detail) == (1008, "token expired")

        order = await hold(api, bob, "B-1-1")
        change = bobs.receive_json(timeout=WAIT)
        assert (change["order_id"], change["status"]) == (order["order_id"], "created")

        fresh = await api.token("alice@example.com")  # Alice signs in again and reconnects
        again = await feeds.orders(fresh)
        assert again.receive_json(timeout=WAIT) == {"type": "hello"}


async def test_an_order_feed_on_an_expired_token_is_refused(api: Api) -> None:
    assert api.clock is not None
    alice = await api.buyer("alice")
    api.clock.advance(901)
    with Feeds(api) as feeds:
        closing = closed(await feeds.orders(alice))
        assert (closing.code, closing.detail) == (1008, "a valid token is needed")


class FanOutDown(MemoryNotifier):
    """A notifier whose fan-out cannot be reached, as when Redis is down."""

    def watch_seats(
        self, session_id: SessionId
    ) -> AbstractAsyncContextManager[AsyncIterator[SeatStatusChanged]]:
        raise AdapterUnavailable("cannot open the pub/sub connection")


async def test_a_feed_that_cannot_subscribe_closes_with_1013(
    request: pytest.FixtureRequest,
) -> None:
    async with platform(request, notifier=FanOutDown()) as api:
        with Feeds(api) as feeds:
            ws = await feeds.connect(f"/ws/sessions/{api.session_id}/seats")
            closing = closed(ws)
            assert (closing.code, closing.detail) == (1013, "feed interrupted; reconnect")


@pytest.mark.production
async def test_a_real_server_closes_a_huge_frame_and_an_eleventh_feed_and_stays_usable(
    served: Api,
) -> None:
    """The same limits through ``openticket serve``: a real ASGI server, real frames."""
    import websockets

    api = served
    base = str(api.client.base_url).replace("http://", "ws://")
    seats = f"{base}/ws/sessions/{api.session_id}/seats"
    async with websockets.connect(seats, max_size=None) as ws:
        assert json.loads(await ws.recv())["type"] == "snapshot"
        await ws.send("x" * 1_000_000)
        with pytest.raises(websockets.ConnectionClosed) as closing:
            await asyncio.wait_for(ws.recv(), WAIT)
        assert closing.value.rcvd is not None
        assert closing.value.rcvd.code == 1009

    alice = await api.buyer("alice")
    orders = f"{base}/ws/me/orders?token={alice['Authorization'].removeprefix('Bearer ')}"
    async with contextlib.AsyncExitStack() as stack:
        for _ in range(10):  # the default cap per user
            ws = await stack.enter_async_context(websockets.connect(orders))
            assert json.loads(await asyncio.wait_for(ws.recv(), WAIT)) == {"type": "hello"}
        eleventh = await stack.enter_async_context(websockets.connect(orders))
        with pytest.raises(websockets.ConnectionClosed) as closing:
            await asyncio.wait_for(eleventh.recv(), WAIT)
        assert closing.value.rcvd is not None
        assert (closing.value.rcvd.code, closing.value.rcvd.reason) == (
            1008,
            "too many feeds for this user",
        )

    async with websockets.connect(seats) as ws:
        assert json.loads(await asyncio.wait_for(ws.recv(), WAIT))["type"] == "snapshot"
