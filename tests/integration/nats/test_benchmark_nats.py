"""``benchmarks/flash_sale.py --profile nats``: holds over the command path to a worker."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

pytestmark = [pytest.mark.nats, pytest.mark.postgres]

BENCHMARK = Path(__file__).parents[3] / "benchmarks" / "flash_sale.py"


def test_the_nats_profile_reports_every_figure_and_removes_what_it_made(
    database_url: str, nats_url: str
) -> None:
    run = subprocess.run(  # noqa: S603  # our own interpreter and script
        [
            sys.executable,
            str(BENCHMARK),
            "--profile",
            "nats",
            "--database-url",
            database_url,
            "--nats-url",
            nats_url,
            "--seats",
            "400",
            "--areas",
            "4",
            "--buyers",
            "1000",
            "--purchases",
            "50",
            "--concurrency",
            "20",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=180,
    )
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["profile"] == "nats"
    assert result["double_sales"] == 0
    assert result["holds_granted"] > 0
    assert result["purchases"] > 0
    assert result["hold_p99_ms"] > 0
    schema = re.search(r"schema (bench_nats_[0-9a-z]+)", run.stderr)
    assert schema is not None, run.stderr
    with psycopg.connect(database_url) as conn:
        left = conn.execute(
            "SELECT 1 FROM information_schema.schemata WHERE schema_name = %s",
            (schema.group(1),),
        ).fetchall()
    assert left == []
