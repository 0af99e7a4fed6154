"""``benchmarks/bot_defence.py`` runs on the local Redis and in memory, lets every paced
buyer through and leaves no key behind."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import redis

pytestmark = pytest.mark.redis

BENCHMARK = Path(__file__).parents[3] / "benchmarks" / "bot_defence.py"


@pytest.mark.parametrize("store", ["redis", "memory"])
def test_paced_buyers_are_all_allowed_and_the_cost_is_reported(redis_url: str, store: str) -> None:
    run = subprocess.run(  # noqa: S603  # our own benchmark, with our arguments
        [
            sys.executable,
            str(BENCHMARK),
            "--assessments",
            "300",
            "--store",
            store,
            "--redis-url",
            redis_url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["store"] == store
    assert result["verdicts"] == {"allow": 300}
    assert result["all_allowed"] is True
    assert result["assessments_per_s"] > 0
    assert 0 < result["p50_ms"] <= result["p99_ms"]
    assert result["cpu_us_per_assessment"] > 0
    client = redis.Redis.from_url(redis_url)
    try:
        assert not list(client.scan_iter(match="bench:bot-defence:*", count=1000))
    finally:
        client.close()
