"""The seat-status cache in Redis: one hash per session, shared by every API process.

Key of a session (``{<session_id>}`` is a Redis Cluster hash tag, like the other
per-session keys, so a session's keys live in one slot):

- ``{prefix}session:{<session_id>}:seats`` — hash of seat id to status (``"held"`` or
  ``"sold"``). Available seats are deleted from the hash, so it holds only the seats
  that are taken and a fresh session has no key at all.

A batch of changes is reduced to the last status per seat and written in one
pipelined round trip: per session one ``HSET`` of the taken seats and one ``HDEL`` of
the freed ones. The pipeline is not a transaction (a batch may span sessions, hence
slots); a reader may briefly see part of a batch, never a seat that no change set.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import structlog
from redis.typing import EncodableT, FieldT

from openticket.adapters.redis.connection import (
    REDIS_FAILURES,
    RedisClient,
    relearn_slots,
    unavailable,
)
from openticket.application.ports.messaging import SeatStatusChanged
from openticket.domain.seating import SeatStatus
from openticket.domain.shared import AreaId, SeatId, SessionId

_log = structlog.get_logger("openticket.redis.seat_cache")

_STATUSES: dict[str, SeatStatus] = {status.value: status for status in SeatStatus}


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class RedisSeatStatusCache:
    """A ``SeatStatusCache`` in Redis; every process with the same prefix sees one state.

    Redis errors are raised as ``AdapterUnavailable``.
    """

    def __init__(self, client: RedisClient, *, prefix: str = "openticket:") -> None:
        self._client = client
        self._prefix = prefix

    def key(self, session_id: SessionId) -> str:
        """The hash that holds the taken seats of a session."""
        return f"{self._prefix}session:{{{session_id}}}:seats"

    def areas_key(self, session_id: SessionId) -> str:
        """The set of the session's areas whose whole state the hash holds."""
        return f"{self._prefix}session:{{{session_id}}}:complete-areas"

    async def apply(self, changes: Sequence[SeatStatusChanged]) -> None:
        """Record ``changes`` in order (last one per seat wins) in one round trip."""
        if not changes:
            return
        pipe = self._client.pipeline(transaction=False)
        self.write(pipe, changes)
        try:
            await pipe.execute()
        except REDIS_FAILURES as e:
            await relearn_slots(self._client, e)
            raise unavailable("cannot update the seat-status cache", e) from e

    def write(self, pipe: Any, changes: Sequence[SeatStatusChanged]) -> None:
        """Queue the commands that record ``changes`` on ``pipe`` (a pipeline of the client).

        For a caller that sends them with other commands in one round trip (the notifier
        with the news of the same changes); :meth:`apply` sends them alone.
        """
        latest: dict[SessionId, dict[SeatId, SeatStatus]] = {}
        for change in changes:
            latest.setdefault(change.session_id, {})[change.seat_id] = change.status
        for session_id, seats in latest.items():
            key = self.key(session_id)
            taken: dict[FieldT, EncodableT] = {
                seat: status.value
                for seat, status in seats.items()
                if status is not SeatStatus.AVAILABLE
            }
            freed = [seat for seat, status in seats.items() if status is SeatStatus.AVAILABLE]
            if taken:
                pipe.hset(key, mapping=taken)
            if freed:
                pipe.hdel(key, *freed)

    async def statuses(self, session_id: SessionId) -> Mapping[SeatId, SeatStatus]:
        """The taken seats of the session with their status; absent seats are available."""
        try:
            stored: dict[Any, Any] = await self._client.hgetall(self.key(session_id))
        except REDIS_FAILURES as e:
            raise unavailable("cannot read the seat-status cache", e) from e
        found: dict[SeatId, SeatStatus] = {}
        for raw_seat, raw_status in stored.items():
            status = _STATUSES.get(_text(raw_status))
            if status is None:
                _log.warning(
                    "seat_cache.unknown_status",
                    session_id=str(session_id),
                    seat_id=_text(raw_seat),
                    status=_text(raw_status),
                )
                continue
            if status is not SeatStatus.AVAILABLE:
                found[SeatId(_text(raw_seat))] = status
        return found

    async def mark_complete(self, session_id: SessionId, area_id: AreaId) -> None:
        """Add the area to the session's complete areas."""
        try:
            await self._client.sadd(self.areas_key(session_id), area_id)
        except REDIS_FAILURES as e:
            raise unavailable("cannot update the seat-status cache", e) from e

    async def complete_areas(self, session_id: SessionId) -> frozenset[AreaId]:
        """The session's complete areas."""
        try:
            members: set[Any] = await self._client.smembers(self.areas_key(session_id))
        except REDIS_FAILURES as e:
            raise unavailable("cannot read the seat-status cache", e) from e
        return frozenset(AreaId(_text(member)) for member in members)

    async def clear(self, session_id: SessionId) -> None:
        """Delete the session's hash and its complete areas."""
        try:
            await self._client.delete(self.key(session_id), self.areas_key(session_id))
        except REDIS_FAILURES as e:
            raise unavailable("cannot clear the seat-status cache", e) from e
