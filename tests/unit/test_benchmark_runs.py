"""The flash-sale benchmark runs end to end and reports what it promises (no timing asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCHMARK = Path(__file__).parents[2] / "benchmarks" / "flash_sale.py"


def test_a_small_flash_sale_reports_every_figure_and_no_double_sale() -> None:
    run = subprocess.run(  # noqa: S603  # our own interpreter and script
        [
            sys.executable,
            str(BENCHMARK),
            "--seats",
            "400",
            "--areas",
            "4",
            "--buyers",
            "3000",
            "--purchases",
            "300",
            "--concurrency",
            "50",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    result = json.loads(run.stdout.strip().splitlines()[-1])
    for key in (
        "holds_per_s",
        "hold_p50_ms",
        "hold_p99_ms",
        "purchases_per_s",
        "seats_sold",
        "double_sales",
        "bytes_per_seat",
        "bare_dict_decisions_per_s",
    ):
        assert result[key] >= 0, key
    assert result["double_sales"] == 0
    assert result["seats"] == 400
    assert 0 < result["seats_held"] <= 400
    assert 0 < result["seats_sold"] <= 400
    assert "phase 1" in run.stderr
