"""Which partition owns a session's area: the same answer in every process.

Python's ``hash()`` of a string changes with ``PYTHONHASHSEED`` (as .NET's
``GetHashCode`` does per process), so the router uses CRC-32 of
``"{session_id}:{area_id}"``, which is stable everywhere.
"""

from __future__ import annotations

import zlib

from openticket.domain.shared import AreaId, SessionId

DEFAULT_PARTITIONS = 16
MAX_REMEMBERED = 100_000
"""Partition keys remembered (sessions × areas); beyond that they are computed each time."""


def partition_key(session_id: SessionId, area_id: AreaId) -> str:
    """The text the partition is derived from."""
    return f"{session_id}:{area_id}"


class PartitionKey:
    """One session's area — what a partition actor owns — with its partition number.

    Made once per key by the router and reused: its hash is computed once, not from
    the session's UUID on every dictionary lookup of the hot path.
    """

    __slots__ = ("_hash", "area_id", "partition", "session_id")

    def __init__(self, session_id: SessionId, area_id: AreaId, partition: int) -> None:
        self.session_id = session_id
        self.area_id = area_id
        self.partition = partition
        self._hash = hash((session_id, area_id))

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        return self is other or (
            isinstance(other, PartitionKey)
            and self.session_id == other.session_id
            and self.area_id == other.area_id
        )

    def __repr__(self) -> str:
        return f"PartitionKey({self.session_id}, {self.area_id!r}, partition={self.partition})"


class PartitionRouter:
    """Maps ``(session_id, area_id)`` to one of ``partitions`` partitions, stably."""

    def __init__(self, partitions: int = DEFAULT_PARTITIONS) -> None:
        if partitions < 1:
            raise ValueError("there must be at least one partition")
        self.partitions = partitions
        self._known: dict[tuple[int, str], PartitionKey] = {}

    def key(self, session_id: SessionId, area_id: AreaId) -> PartitionKey:
        """The partition key of a session's area (the same object each time, while remembered)."""
        pair = (session_id.int, area_id)  # ints and strs hash in C; a UUID does not
        known = self._known.get(pair)
        if known is None:
            partition = zlib.crc32(partition_key(session_id, area_id).encode()) % self.partitions
            known = PartitionKey(session_id, area_id, partition)
            if len(self._known) < MAX_REMEMBERED:
                self._known[pair] = known
        return known

    def partition_of(self, session_id: SessionId, area_id: AreaId) -> int:
        """The partition number, ``0 <= n < partitions``."""
        return self.key(session_id, area_id).partition
