from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pytest

from openticket.application.seating.router import PartitionRouter
from openticket.domain.shared import AreaId, SessionId

SESSIONS = [SessionId(uuid.UUID(int=i * 7919)) for i in range(40)]
AREAS = [AreaId(a) for a in ("A", "B", "VIP", "floor_1")]

SCRIPT = """
import json, sys, uuid
from openticket.application.seating.router import PartitionRouter
router = PartitionRouter(int(sys.argv[1]))
pairs = json.loads(sys.stdin.read())
print(json.dumps([router.partition_of(uuid.UUID(s), a) for s, a in pairs]))
"""


def partitions_in_subprocess(hash_seed: str, partitions: int) -> list[int]:
    pairs = [[str(s), a] for s in SESSIONS for a in AREAS]
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    out = subprocess.run(  # noqa: S603  # our own interpreter and script
        [sys.executable, "-c", SCRIPT, str(partitions)],
        input=json.dumps(pairs),
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return list(json.loads(out.stdout))


def test_two_processes_with_different_hash_seeds_route_identically() -> None:
    first = partitions_in_subprocess("1", 16)
    second = partitions_in_subprocess("4242", 16)
    assert first == second
    local = PartitionRouter(16)
    assert first == [local.partition_of(s, a) for s in SESSIONS for a in AREAS]


def test_every_partition_is_in_range_and_the_spread_uses_most_partitions() -> None:
    router = PartitionRouter(16)
    used = {router.partition_of(s, a) for s in SESSIONS for a in AREAS}
    assert used <= set(range(16))
    assert len(used) >= 12  # 160 keys over 16 partitions: a stable hash spreads them


def test_one_partition_takes_everything() -> None:
    router = PartitionRouter(1)
    assert {router.partition_of(s, a) for s in SESSIONS for a in AREAS} == {0}


def test_partitions_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least one"):
        PartitionRouter(0)
