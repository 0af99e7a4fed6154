"""The README's library quick start runs and prints what it says it prints."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).parents[2] / "README.md"


def quick_start_blocks() -> list[str]:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)
    return [b for b in blocks if "MyLockStore" not in b]


def test_readme_quick_start_runs_as_documented(capsys: pytest.CaptureFixture[str]) -> None:
    blocks = quick_start_blocks()
    assert len(blocks) == 2
    namespace: dict[str, object] = {"__name__": "readme"}
    exec(compile("\n".join(blocks), str(README), "exec"), namespace)  # noqa: S102  # our own README
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "created 2400.00 TWD",
        "refused: ('A-1-2',)",
        "completed",
        "['A-1-1', 'A-1-2']",
        "used",
        "sold",
        "['SeatsHeld', 'SeatsSold']",
    ]
