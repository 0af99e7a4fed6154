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
import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from .conftest import IN_PRODUCTION, ON_POSTGRES, PASSWORD, deployment

if TYPE_CHECKING:
    from tests.conftest import ServeProcess

pytestmark = [pytest.mark.e2e, pytest.mark.production]

HERE = Path(__file__).parent / "fuzzing"
SEED = 20261202
EXAMPLES = 25


def _schemathesis() -> list[str]:
    found = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    assert found, "schemathesis is a test dependency (the dev extra)"
    return [found]


@contextlib.contextmanager
def _server(request: pytest.FixtureRequest, serve_process: ServeProcess) -> Iterator[str]:
    """The base URL of the server under test, for this run's profile."""
    env = {"OPENTICKET_DEMO_PASSWORD": PASSWORD}
    if ON_POSTGRES:
        env |= {
            "OPENTICKET_DATABASE_URL": request.getfixturevalue("database_url"),
            "OPENTICKET_DATABASE_SCHEMA": request.getfixturevalue("schema_name"),
            # one client makes every request: the limits would only slow the run down
            "OPENTICKET_RATE_LIMIT_PER_IP": "0",
            "OPENTICKET_RATE_LIMIT_PER_USER": "0",
        }
    with serve_process(env) as (base, _):
        yield base


async def test_schemathesis_finds_nothing_wrong(
    request: pytest.FixtureRequest,
    serve_process: ServeProcess,
    production_env: dict[str, str] | None,
    tmp_path: Path,
) -> None:
    async with contextlib.AsyncExitStack() as stack:
        if IN_PRODUCTION:
            assert production_env is not None
            api = await stack.enter_async_context(deployment(request, production_env))
            base = str(api.client.base_url).rstrip("/")
        else:
            base = stack.enter_context(_server(request, serve_process))
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            signed_in = await client.post(
                "/api/auth/token",
                json={"email": "admin@openticket.local", "password": PASSWORD},
            )
        assert signed_in.status_code == 200, signed_in.text
        token = signed_in.json()["access_token"]
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
                f"Authorization: Bearer {token}",
                "--generation-database",
                "none",
                "--no-color",
            ],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env={
                **os.environ,
                "PYTHONPATH": str(HERE),
                "SCHEMATHESIS_HOOKS": "cross_field_rules",
            },
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
