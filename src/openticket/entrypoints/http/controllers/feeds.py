"""Live feeds over WebSocket: a session's seat map, a user's orders, a queue entry.

Every feed is accepted first and closed with a code and a reason when it is refused,
so that browsers, which learn nothing from a refused handshake, can tell why
(docs/feeds.md lists the codes and what a client does about each).
"""

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

from openticket.application.access import Requester
from openticket.application.errors import ApplicationError, NotFound
from openticket.application.facade import OpenTicket
from openticket.application.gate.waiting_room import QueueEntry, WaitingRoom
from openticket.application.identity.service import IdentityService
from openticket.application.ports.errors import AdapterUnavailable
from openticket.application.ports.identity import InvalidToken
from openticket.application.ports.messaging import OrderStatusChanged, SeatStatusChanged
from openticket.domain.shared import SessionId
from openticket.entrypoints.http.feed_limits import (
    POLICY_VIOLATION,
    TOKEN_EXPIRED,
    TRY_AGAIN_LATER,
    FeedClosing,
    FeedLimits,
    FeedRefused,
    MessageMeter,
)
from openticket.entrypoints.http.schemas import queue_out, seat_out

_log = structlog.get_logger("openticket.http")

NOT_FOUND = 4404

_FEED_INTERRUPTED = FeedClosing(TRY_AGAIN_LATER, "feed interrupted; reconnect")
_NO_SUCH_SESSION = FeedClosing(NOT_FOUND, "no such session")
_TOKEN_NEEDED = FeedClosing(POLICY_VIOLATION, "a valid token is needed")


def _time(change: SeatStatusChanged | OrderStatusChanged) -> str:
    return change.at.isoformat().replace("+00:00", "Z")


def _address(socket: WebSocket[Any, Any, Any]) -> str | None:
    client = socket.client  # rewritten from X-Forwarded-For only behind a trusted proxy
    return client.host if client is not None else None


async def _close(socket: WebSocket[Any, Any, Any], closing: FeedClosing) -> None:
    # ASGI servers raise an OSError when the client is gone already; so be it
    with contextlib.suppress(WebSocketDisconnect, OSError):
        await socket.close(code=closing.code, reason=closing.reason)


async def _forward(
    socket: WebSocket[Any, Any, Any],
    changes: AsyncIterator[Any],
    render: Callable[[Any], dict[str, Any]],
    ended: FeedClosing,
) -> FeedClosing | None:
    """Send every change; 1013 when the feed itself breaks.

    When the client fell too far behind, or the fan-out lost its connection, the client
    reconnects and starts from a new snapshot instead of showing a seat map that
    silently stopped changing.
    """
    try:
        async for change in changes:
            await socket.send_json(render(change))
    except AdapterUnavailable as e:
        _log.warning("feed_broken", error=str(e))
        return _FEED_INTERRUPTED
    except (WebSocketDisconnect, OSError):
        return None  # the client left while a change was on its way
    return ended  # the notifier stopped (this process is going away), or the feed is over


async def _listen(socket: WebSocket[Any, Any, Any], meter: MessageMeter) -> FeedClosing | None:
    """Read the client's messages until it leaves or one breaks the feed's limits.

    The feeds have no use for them; reading is how a client's leaving is noticed. Each
    is judged by its size and count and dropped, never decoded.
    """
    while True:
        message = await socket.receive()
        if message["type"] != "websocket.receive":
            return None  # websocket.disconnect
        closing = meter.judge(message)
        if closing is not None:
            return closing


async def _expiry(expired: asyncio.Event) -> FeedClosing:
    await expired.wait()
    return TOKEN_EXPIRED


async def _follow(
    socket: WebSocket[Any, Any, Any],
    changes: AsyncIterator[Any],
    render: Callable[[Any], dict[str, Any]],
    limits: FeedLimits,
    expired: asyncio.Event | None = None,
    *,
    ended: FeedClosing = _FEED_INTERRUPTED,
) -> None:
    """Forward every change until the client leaves or the feed must close, then close it.

    ``ended`` is how the feed closes when ``changes`` run out.
    """
    jobs = [
        asyncio.create_task(_forward(socket, changes, render, ended)),
        asyncio.create_task(_listen(socket, limits.meter())),
    ]
    if expired is not None:
        jobs.append(asyncio.create_task(_expiry(expired)))
    try:
        done, _ = await asyncio.wait(jobs, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for job in jobs:
            job.cancel()
        await asyncio.gather(*jobs, return_exceptions=True)
    closing = next((c for job in done if (c := job.result()) is not None), None)
    if closing is not None:
        await _close(socket, closing)


@websocket("/ws/sessions/{session_id:uuid}/seats", tags=["feeds"])
async def seat_feed(
    socket: WebSocket[Any, Any, Any],
    session_id: FromPath[UUID],
    tickets: NamedDependency[OpenTicket],
    feed_limits: NamedDependency[FeedLimits],
) -> None:
    """First ``{"type": "snapshot", "seats": [...]}``, then one message per seat change."""
    await socket.accept()
    try:
        with feed_limits.open_feeds.admit(_address(socket)):
            await _seat_feed(socket, SessionId(session_id), tickets, feed_limits)
    except FeedRefused as refused:
        await _close(socket, refused.closing)
    except AdapterUnavailable as e:  # no fan-out or no storage to start from
        _log.warning("feed_unavailable", error=str(e))
        await _close(socket, _FEED_INTERRUPTED)


async def _seat_feed(
    socket: WebSocket[Any, Any, Any],
    session: SessionId,
    tickets: OpenTicket,
    limits: FeedLimits,
) -> None:
    # watch first, then take the snapshot: no change between the two can be missed
    async with tickets.notifier.watch_seats(session) as changes:
        try:
            seats = await tickets.seats(session)
        except ApplicationError:
            await _close(socket, _NO_SUCH_SESSION)
            return
        snapshot = [msgspec.to_builtins(seat_out(s)) for s in seats]
        await socket.send_json({"type": "snapshot", "seats": snapshot})
        await _follow(
            socket,
            changes,
            lambda c: {
                "type": "seat",
                "seat_id": c.seat_id,
                "status": c.status.value,
                "at": _time(c),
            },
            limits,
        )


@websocket("/ws/me/orders", tags=["feeds"])
async def order_feed(
    socket: WebSocket[Any, Any, Any],
    tickets: NamedDependency[OpenTicket],
    identity: NamedDependency[IdentityService],
    feed_limits: NamedDependency[FeedLimits],
    token: FromQuery[str | None] = None,
) -> None:
    """``{"type": "hello"}`` once subscribed, then ``{"type": "order", ...}`` per change.

    The feed closes with 1008 ``token expired`` when its token expires.
    """
    await socket.accept()
    try:
        requester, expires_at = identity.authenticate_until(token or "")
    except InvalidToken:
        await _close(socket, _TOKEN_NEEDED)
        return
    try:
        with (
            feed_limits.open_feeds.admit(_address(socket), requester.user_id),
            feed_limits.deadlines.watch(expires_at) as expired,
        ):
            async with tickets.notifier.watch_orders(requester.user_id) as changes:
                await socket.send_json({"type": "hello"})
                await _follow(
                    socket,
                    changes,
                    lambda c: {
                        "type": "order",
                        "order_id": str(c.order_id),
                        "status": c.status.value,
                        "at": _time(c),
                    },
                    feed_limits,
                    expired,
                )
    except FeedRefused as refused:
        await _close(socket, refused.closing)
    except AdapterUnavailable as e:
        _log.warning("feed_unavailable", error=str(e))
        await _close(socket, _FEED_INTERRUPTED)


QUEUE_POLL_SECONDS = 1.0
"""How often a queue feed reads its entry (positions move with every admission)."""

_NOT_IN_QUEUE = FeedClosing(NOT_FOUND, "not in this queue")


async def _queue_changes(
    gate: WaitingRoom, requester: Requester, session: SessionId, queue_id: UUID, first: QueueEntry
) -> AsyncIterator[dict[str, Any]]:
    """The entry whenever it differs from the last one sent; ends when the entry is gone."""
    last = first
    while True:
        await asyncio.sleep(QUEUE_POLL_SECONDS)
        try:
            entry = await gate.entry(requester, session, queue_id)
        except NotFound:
            return
        if entry != last:
            last = entry
            yield msgspec.to_builtins(queue_out(entry))


@websocket("/ws/sessions/{session_id:uuid}/queue/{queue_id:uuid}", tags=["feeds"])
async def queue_feed(  # noqa: PLR0917 (Litestar passes what a handler names)
    socket: WebSocket[Any, Any, Any],
    session_id: FromPath[UUID],
    queue_id: FromPath[UUID],
    tickets: NamedDependency[OpenTicket],
    identity: NamedDependency[IdentityService],
    feed_limits: NamedDependency[FeedLimits],
    token: FromQuery[str | None] = None,
) -> None:
    """The buyer's queue entry now, then at every change of position or status.

    Each message has the shape of ``GET …/queue/{queue_id}``. The feed closes 4404 when
    the entry is gone (its admission ran out or was used up), 1008 when the token expires.
    """
    await socket.accept()
    try:
        requester, expires_at = identity.authenticate_until(token or "")
    except InvalidToken:
        await _close(socket, _TOKEN_NEEDED)
        return
    gate, session = tickets.gate, SessionId(session_id)
    try:
        if gate is None:
            raise NotFound("no waiting room")
        first = await gate.entry(requester, session, queue_id)
    except ApplicationError:
        await _close(socket, _NOT_IN_QUEUE)
        return
    except AdapterUnavailable as e:
        _log.warning("feed_unavailable", error=str(e))
        await _close(socket, _FEED_INTERRUPTED)
        return
    try:
        with (
            feed_limits.open_feeds.admit(_address(socket), requester.user_id),
            feed_limits.deadlines.watch(expires_at) as expired,
        ):
            await socket.send_json(msgspec.to_builtins(queue_out(first)))
            changes = _queue_changes(gate, requester, session, queue_id, first)
            await _follow(
                socket, changes, lambda entry: entry, feed_limits, expired, ended=_NOT_IN_QUEUE
            )
    except FeedRefused as refused:
        await _close(socket, refused.closing)
