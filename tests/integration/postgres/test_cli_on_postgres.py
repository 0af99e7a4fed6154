"""``openticket migrate`` and ``openticket serve`` against the real PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import TYPE_CHECKING

import httpx
import pytest

from openticket.adapters.postgres import shipped_migrations

if TYPE_CHECKING:
    from tests.conftest import ServeProcess

pytestmark = pytest.mark.postgres

CLI = [sys.executable, "-m", "openticket.entrypoints.cli"]


def run_cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603  # our own command
        [*CLI, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **env},
        check=False,
    )


def test_migrate_twice_on_a_fresh_database_applies_once_then_does_nothing(
    database_url: str, schema_name: str
) -> None:
    """The first run applies every migration and says so; the second finds nothing to do."""
    first = run_cli("migrate", "--schema", schema_name, OPENTICKET_DATABASE_URL=database_url)
    assert first.returncode == 0, first.stderr
    shipped = shipped_migrations()
    for migration in shipped:
        assert f"applying {migration.version:04d}_{migration.name}" in first.stdout
    assert f"applied {len(shipped)} migration(s)" in first.stdout
    second = run_cli("migrate", "--schema", schema_name, OPENTICKET_DATABASE_URL=database_url)
    assert second.returncode == 0, second.stderr
    assert "applying" not in second.stdout
    assert "up to date" in second.stdout


def test_migrate_without_a_reachable_database_says_so_without_a_traceback() -> None:
    """Exit code 1 and one clear line naming where it tried."""
    run = run_cli("migrate", "--database-url", "postgresql://postgres@127.0.0.1:1/test")
    assert run.returncode == 1
    assert "cannot reach PostgreSQL at 127.0.0.1:1/test" in run.stderr
    assert "Traceback" not in run.stderr + run.stdout


def test_migrate_without_a_database_url_says_what_to_set() -> None:
    """No URL at all: exit code 2 and the variable to set."""
    env = {k: v for k, v in os.environ.items() if k != "OPENTICKET_DATABASE_URL"}
    run = subprocess.run(  # noqa: S603  # our own command
        [*CLI, "migrate"], capture_output=True, text=True, timeout=60, env=env, check=False
    )
    assert run.returncode == 2
    assert "OPENTICKET_DATABASE_URL" in run.stderr


def _on_postgres(database_url: str, schema: str) -> dict[str, str]:
    return {
        "OPENTICKET_DATABASE_URL": database_url,
        "OPENTICKET_DATABASE_SCHEMA": schema,
        "OPENTICKET_DEMO_PASSWORD": "demo-password-1",
    }


def test_serve_on_postgres_migrates_seeds_once_and_reports_the_database_ready(
    database_url: str, schema_name: str, serve_process: ServeProcess
) -> None:
    """A first start creates the schema and the demo; a restart keeps the catalog as it is."""
    with serve_process(_on_postgres(database_url, schema_name)) as (base, printed):
        assert "storage:      PostgreSQL at" in printed, printed
        assert "demo session on sale now:" in printed
        ready = httpx.get(f"{base}/health/ready", timeout=5)
        assert ready.status_code == 200
        assert ready.json()["checks"]["database"] == "ok"
        first = httpx.get(f"{base}/api/events", timeout=5).json()["items"]
    with serve_process(_on_postgres(database_url, schema_name)) as (base, printed):
        assert "demo session on sale now:" not in printed, printed
        assert "kept from an earlier run" in printed
        again = httpx.get(f"{base}/api/events", timeout=5).json()["items"]
    assert [e["event_id"] for e in again] == [e["event_id"] for e in first]
