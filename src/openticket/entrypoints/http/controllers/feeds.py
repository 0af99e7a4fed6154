"""Live feeds over WebSocket: a session's seat map, a user's orders."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any
from uuid import UUID

import msgspec
import structlog
from litestar import WebSocket, websocket
from litestar.di import NamedDependency
from litestar.exceptions import WebSocketDisconnect
from litestar.params import FromPath, FromQuery

from openticket.application.errors import ApplicationError
from openticket.application.facade import OpenTicket
from openticket.application.identity.service import IdentityService
from openticket.application.ports.errors import AdapterUnavailable
from openticket.application.ports.identity import InvalidToken
from openticket.application.ports.messaging import OrderStatusChanged, SeatStatusChanged
from openticket.domain.shared import SessionId
from openticket.entrypoints.http.schemas import seat_out

_log = structlog.get_logger("openticket.http")

POLICY_VIOLATION = 1008
TRY_AGAIN_LATER = 1013
NOT_FOUND = 4404


def _time(change: SeatStatusChanged | OrderStatusChanged) -> str:
    return change.at.isoformat().replace("+00:00", "Z")


async def _pump_until_closed(
    socket: WebSocket[Any, Any, Any],
    changes: AsyncIterator[Any],
    render: Callable[[Any], dict[str, Any]],
) -> None:
    """Forward every change until the client goes away.

    When the feed itself breaks (the client fell too far behind, or the fan-out lost
    its connection) the socket closes with 1013: the client reconnects and starts from
    a new snapshot instead of showing a seat map that silently stopped changing.
    """

    async def forward() -> None:
        try:
            async for change in changes:
                await socket.send_json(render(change))
        except AdapterUnavailable as e:
            _log.warning("feed_broken", error=str(e))
            await socket.close(code=TRY_AGAIN_LATER, reason="feed interrupted; reconnect")

    sender = asyncio.create_task(forward())
    try:
        while True:  # the client's messages are ignored; reading notices its leaving
            await socket.receive_data(mode="text")
    except WebSocketDisconnect:
        pass
    finally:
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect):
            await sender


@websocket("/ws/sessions/{session_id:uuid}/seats", tags=["feeds"])
async def seat_feed(
    socket: WebSocket[Any, Any, Any],
    session_id: FromPath[UUID],
    tickets: NamedDependency[OpenTicket],
) -> None:
    """First ``{"type": "snapshot", "seats": [...]}``, then one message per seat change."""
    await socket.accept()
    session = SessionId(session_id)
    # watch first, then take the snapshot: no change between the two can be missed
    async with tickets.notifier.watch_seats(session) as changes:
        try:
            seats = await tickets.seats(session)
        except ApplicationError:
            await socket.close(code=NOT_FOUND, reason="no such session")
            return
        snapshot = [msgspec.to_builtins(seat_out(s)) for s in seats]
        await socket.send_json({"type": "snapshot", "seats": snapshot})
        await _pump_until_closed(
            socket,
            changes,
            lambda c: {
                "type": "seat",
                "seat_id": c.seat_id,
                "status": c.status.value,
                "at": _time(c),
            },
        )


@websocket("/ws/me/orders", tags=["feeds"])
async def order_feed(
    socket: WebSocket[Any, Any, Any],
    token: FromQuery[str],
    tickets: NamedDependency[OpenTicket],
    identity: NamedDependency[IdentityService],
) -> None:
    """``{"type": "hello"}`` once subscribed, then ``{"type": "order", ...}`` per change."""
    try:
        requester = identity.authenticate(token)
    except InvalidToken:
        await socket.close(code=POLICY_VIOLATION, reason="a valid token is needed")
        return
    await socket.accept()
    async with tickets.notifier.watch_orders(requester.user_id) as changes:
        await socket.send_json({"type": "hello"})
        await _pump_until_closed(
            socket,
            changes,
            lambda c: {
                "type": "order",
                "order_id": str(c.order_id),
                "status": c.status.value,
                "at": _time(c),
            },
        )
