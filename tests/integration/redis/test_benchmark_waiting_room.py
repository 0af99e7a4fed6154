"""``benchmarks/waiting_room.py`` runs against the local Redis, admits every buyer once
and leaves no key behind."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import redis

pytestmark = pytest.mark.redis

BENCHMARK = Path(__file__).parents[3] / "benchmarks" / "waiting_room.py"
KEYS = {
    "buyers",
    "pre_queue_buyers",
    "concurrency",
    "admit_batch",
    "joins_per_s",
    "join_p50_ms",
    "join_p99_ms",
    "cpu_us_per_join",
    "admissions_per_s",
    "admit_calls",
    "admit_p50_ms",
    "admit_p99_ms",
    "cpu_us_per_admission",
    "bytes_per_waiting_buyer",
    "admitted",
    "admitted_distinct",
    "admitted_all",
    "admissions_running",
    "prefix",
}


def test_every_buyer_joins_and_is_admitted_exactly_once(redis_url: str) -> None:
    command = [sys.executable, str(BENCHMARK), "--buyers", "300", "--admit-batch", "7"]
    run = subprocess.run(  # noqa: S603  # our own benchmark, with our interpreter
        [*command, "--concurrency", "8", "--connections", "4", "--redis-url", redis_url],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result = json.loads(run.stdout)

    assert set(result) == KEYS
    assert (result["buyers"], result["pre_queue_buyers"], result["admit_batch"]) == (300, 150, 7)
    assert result["admitted"] == result["admitted_distinct"] == 300
    assert result["admitted_all"] is True
    assert result["admissions_running"] == 300
    assert result["admit_calls"] == 44  # 42 full batches, one of 6, one that finds nobody
    assert result["joins_per_s"] > 0
    assert result["admissions_per_s"] > 0
    assert 0 < result["join_p50_ms"] <= result["join_p99_ms"]
    assert 0 < result["admit_p50_ms"] <= result["admit_p99_ms"]
    # a sorted-set entry and a hash field per buyer: tens of bytes at least, not kilobytes
    assert 50 < result["bytes_per_waiting_buyer"] < 2000
    client = redis.Redis.from_url(redis_url)
    try:
        assert list(client.scan_iter(match=f"{result['prefix']}*")) == []
    finally:
        client.close()
    assert "300 buyers join (150 early)" in run.stderr
