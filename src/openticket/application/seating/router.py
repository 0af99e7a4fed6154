"""Which partition owns a session's area: the same answer in every process.

Python's ``hash()`` of a string changes with ``PYTHONHASHSEED`` (as .NET's
``GetHashCode`` does per process), so the router uses CRC-32 of
``"{session_id}:{area_id}"``, which is stable everywhere.
"""

from __future__ import annotations

import zlib

from openticket.domain.shared import AreaId, SessionId

DEFAULT_PARTITIONS = 16


def partition_key(session_id: SessionId, area_id: AreaId) -> str:
    """The text the partition is derived from."""
    return f"{session_id}:{area_id}"


class PartitionRouter:
    """Maps ``(session_id, area_id)`` to one of ``partitions`` partitions, stably."""

    def __init__(self, partitions: int = DEFAULT_PARTITIONS) -> None:
        if partitions < 1:
            raise ValueError("there must be at least one partition")
        self.partitions = partitions

    def partition_of(self, session_id: SessionId, area_id: AreaId) -> int:
        """The partition number, ``0 <= n < partitions``."""
        return zlib.crc32(partition_key(session_id, area_id).encode()) % self.partitions
