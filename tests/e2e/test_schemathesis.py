"""``schemathesis run`` against the OpenAPI document a real server serves.

Every check, a fixed seed, a bounded number of examples per operation: no server error,
no status code or content type the document does not name, no schema-valid request
refused, no schema-violating request accepted. The server is ``openticket serve`` in
the embedded profile (``tox -e py``), on PostgreSQL (``tox -e e2e-postgres``) or the
production profile, serve and two workers on PostgreSQL, Redis and NATS (``tox -e
e2e-production``). The run signs in as the demo admin, who passes every role's guard.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import PASSWORD, Api

pytestmark = [pytest.mark.e2e, pytest.mark.production]

HERE = Path(__file__).parent / "fuzzing"
SEED = 20261202
EXAMPLES = 25


def _schemathesis() -> list[str]:
    found = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    assert found, "schemathesis is a test dependency (the dev extra)"
    return [found]


async def test_schemathesis_finds_nothing_wrong(served: Api, tmp_path: Path) -> None:
    signed_in = await served.client.post(
        "/api/auth/token", json={"email": "admin@openticket.local", "password": PASSWORD}
    )
    assert signed_in.status_code == 200, signed_in.text
    base = str(served.client.base_url).rstrip("/")
    run = await asyncio.to_thread(
        subprocess.run,
        [
            *_schemathesis(),
            "--config-file",
            str(HERE / "schemathesis.toml"),
            "run",
            f"{base}/schema/openapi.json",
            "--checks",
            "all",
            "--seed",
            str(SEED),
            "--max-examples",
            str(EXAMPLES),
            "--header",
            f"Authorization: Bearer {signed_in.json()['access_token']}",
            "--generation-database",
            "none",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(HERE), "SCHEMATHESIS_HOOKS": "cross_field_rules"},
        timeout=600,
        check=False,
    )
    report = run.stdout + run.stderr
    (tmp_path / "schemathesis.txt").write_text(report)
    assert run.returncode == 0, _findings(report)


def _findings(report: str) -> str:
    """What schemathesis found, in short: each failure's operation, check and answer."""
    lines = report.splitlines()
    found = [
        line
        for line in lines
        if line.startswith(("___", "- ST", "[", "    curl")) or "Runtime Error" in line
    ]
    return "\n".join([*found[:200], *lines[-25:]])
