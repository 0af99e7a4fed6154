"""The domain takes its clock and ids from outside: no wall clock, no random ids inside it."""

from __future__ import annotations

import ast
from pathlib import Path

import openticket.domain

DOMAIN = Path(openticket.domain.__file__).parent
FORBIDDEN_CALLS = {
    ("datetime", "now"),
    ("datetime", "utcnow"),
    ("datetime", "today"),
    ("date", "today"),
    ("time", "time"),
    ("time", "monotonic"),
    ("time", "perf_counter"),
    ("uuid", "uuid1"),
    ("uuid", "uuid4"),
}
FORBIDDEN_MODULES = {"random", "secrets", "time"}


def _offences(source: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            name = owner.id if isinstance(owner, ast.Name) else getattr(owner, "attr", "")
            if (name, node.func.attr) in FORBIDDEN_CALLS:
                found.append(f"line {node.lineno}: {name}.{node.func.attr}()")
        if isinstance(node, ast.Name) and node.id in {"uuid4", "uuid1"}:
            found.append(f"line {node.lineno}: {node.id}")
        if isinstance(node, ast.Import):
            found += [
                f"line {node.lineno}: import {a.name}"
                for a in node.names
                if a.name in FORBIDDEN_MODULES
            ]
        if isinstance(node, ast.ImportFrom) and node.module in FORBIDDEN_MODULES:
            found.append(f"line {node.lineno}: from {node.module} import ...")
    return found


def test_the_checker_catches_wall_clock_and_random_ids() -> None:
    sample = (
        "import time\nfrom datetime import datetime\nfrom uuid import uuid4\n"
        "a = datetime.now()\nb = time.time()\nc = uuid4()\n"
    )
    assert len(_offences(sample)) == 4


def test_domain_modules_never_read_the_clock_or_make_random_ids() -> None:
    modules = sorted(DOMAIN.rglob("*.py"))
    assert modules, "no domain modules found"
    offences = {str(p.relative_to(DOMAIN)): _offences(p.read_text()) for p in modules}
    assert {name: found for name, found in offences.items() if found} == {}
