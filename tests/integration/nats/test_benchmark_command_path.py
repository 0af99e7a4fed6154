"""``benchmarks/command_path.py`` runs against the local NATS and shows the batching."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.nats

BENCHMARK = Path(__file__).parents[3] / "benchmarks" / "command_path.py"
KEYS = {
    "concurrency",
    "commands",
    "commands_per_s",
    "command_p50_ms",
    "command_p99_ms",
    "cpu_us_per_command",
    "commands_per_message",
}


def test_one_buyer_sends_a_message_per_command_and_many_share_messages(nats_url: str) -> None:
    command = [sys.executable, str(BENCHMARK), "--commands", "400", "--concurrency", "1,8"]
    run = subprocess.run(  # noqa: S603  # our own benchmark, with our interpreter
        [*command, "--nats-url", nats_url],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    alone, together = (json.loads(line) for line in run.stdout.strip().splitlines())

    assert set(alone) == set(together) == KEYS
    assert alone["concurrency"] == 1
    assert alone["commands"] == 400
    assert alone["commands_per_message"] == 1.0  # nothing to share a message with
    assert together["commands"] == 400
    assert together["commands_per_message"] > 1.5  # eight buyers' commands travel together
    assert "8 buyers: 400 commands" in run.stderr
