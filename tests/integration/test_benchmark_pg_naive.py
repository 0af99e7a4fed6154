"""The pg-naive baseline of the flash-sale benchmark runs and cleans up (no timing asserted)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.postgres

BENCHMARK = Path(__file__).parents[2] / "benchmarks" / "flash_sale.py"
SMALL_LOAD = (
    "--seats",
    "400",
    "--areas",
    "4",
    "--buyers",
    "2000",
    "--purchases",
    "200",
    "--concurrency",
    "20",
)
KEYS = {
    "profile",
    "seats",
    "buyers",
    "concurrency",
    "holds_per_s",
    "hold_p50_ms",
    "hold_p99_ms",
    "hold_mean_ms",
    "holds_granted",
    "seats_held",
    "hold_double_grants",
    "decisions_per_batch",
    "commands_per_message",
    "bare_dict_decisions_per_s",
    "ratio_to_bare_dict",
    "purchases_per_s",
    "purchases",
    "seats_sold",
    "double_sales",
    "bytes_per_seat",
}


def run_benchmark(*args: str) -> tuple[dict[str, Any], str]:
    run = subprocess.run(  # noqa: S603  # our own interpreter and script
        [sys.executable, str(BENCHMARK), *SMALL_LOAD, *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=180,
    )
    result: dict[str, Any] = json.loads(run.stdout.strip().splitlines()[-1])
    return result, run.stderr


def test_pg_naive_reports_every_figure_no_double_sale_and_drops_its_schema(
    database_url: str,
) -> None:
    import psycopg

    result, stderr = run_benchmark("--profile", "pg-naive", "--database-url", database_url)

    assert set(result) == KEYS
    assert result["profile"] == "pg-naive"
    assert result["seats"] == 400
    assert result["double_sales"] == 0
    assert result["hold_double_grants"] == 0
    assert result["holds_granted"] > 0
    assert 0 < result["seats_held"] <= 400
    assert 0 < result["seats_sold"] <= 400
    assert result["purchases"] > 0
    assert result["bytes_per_seat"] > 0
    assert "phase 1" in stderr
    assert "phase 2" in stderr

    schemas = re.findall(r"\bschema (bench_naive_[0-9a-f]+)", stderr)
    assert schemas, stderr
    with psycopg.connect(database_url) as conn:
        left = conn.execute(
            "SELECT schema_name FROM information_schema.schemata WHERE schema_name = ANY(%s)",
            (schemas,),
        ).fetchall()
    assert left == []


def test_pg_naive_prints_the_same_keys_as_the_memory_profile(database_url: str) -> None:
    naive, _ = run_benchmark("--profile", "pg-naive", "--database-url", database_url)
    memory, _ = run_benchmark("--profile", "memory")

    assert set(naive) == set(memory) == KEYS
