"""``openticket migrate`` and ``openticket serve`` against the real PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import TYPE_CHECKING

import httpx
import pytest

from openticket.adapters.postgres import shipped_migrations
from openticket.entrypoints.demo import DEMO_ACCOUNTS

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
    with serve_process(_on_postgres(database_url, schema_name), demo=True) as (base, printed):
        assert "storage:      PostgreSQL at" in printed, printed
        assert "demo session on sale now:" in printed
        ready = httpx.get(f"{base}/health/ready", timeout=5)
        assert ready.status_code == 200
        assert ready.json()["checks"]["database"] == "ok"
        first = httpx.get(f"{base}/api/events", timeout=5).json()["items"]
    with serve_process(_on_postgres(database_url, schema_name), demo=True) as (base, printed):
        assert "demo session on sale now:" not in printed, printed
        assert "kept from an earlier run" in printed
        again = httpx.get(f"{base}/api/events", timeout=5).json()["items"]
    assert [e["event_id"] for e in again] == [e["event_id"] for e in first]


def _users_create(
    database_url: str, schema: str, email: str, password: str, *roles: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603  # our own command
        [*CLI, "users", "create", "--email", email, *(f"--role={r}" for r in roles)],
        input=f"{password}\n",
        capture_output=True,
        text=True,
        timeout=60,
        env={
            **os.environ,
            "OPENTICKET_DATABASE_URL": database_url,
            "OPENTICKET_DATABASE_SCHEMA": schema,
        },
        check=False,
    )


def _sign_in(base: str, email: str, password: str) -> httpx.Response:
    return httpx.post(
        f"{base}/api/auth/token", json={"email": email, "password": password}, timeout=10
    )


def test_users_create_makes_an_admin_who_signs_in_and_refuses_the_same_email_twice(
    database_url: str, schema_name: str, serve_process: ServeProcess
) -> None:
    """On a fresh schema: migrated, made, printed; then the admin signs in over HTTP."""
    made = _users_create(
        database_url, schema_name, "Boss@Example.com", "the-first-admins-password", "admin"
    )
    assert made.returncode == 0, made.stderr
    assert "made boss@example.com" in made.stdout
    assert "roles admin" in made.stdout
    assert "next:" in made.stdout
    again = _users_create(
        database_url, schema_name, "boss@example.com", "another-password", "admin"
    )
    assert again.returncode == 1
    assert "boss@example.com has an account already" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1
    weak = _users_create(database_url, schema_name, "second@example.com", "short", "admin")
    assert weak.returncode == 2
    assert "8-128 characters" in weak.stderr
    env = {"OPENTICKET_DATABASE_URL": database_url, "OPENTICKET_DATABASE_SCHEMA": schema_name}
    with serve_process(env) as (base, printed):
        assert "users create --email" in printed  # how to make the first admin
        signed_in = _sign_in(base, "boss@example.com", "the-first-admins-password")
        assert signed_in.status_code == 200, signed_in.text
        me = httpx.get(
            f"{base}/api/me",
            headers={"Authorization": f"Bearer {signed_in.json()['access_token']}"},
            timeout=10,
        ).json()
        assert me["roles"] == ["admin"]
        assert _sign_in(base, "second@example.com", "short").status_code == 401


def test_serve_on_a_fresh_database_has_no_demo_account_and_no_known_password(
    database_url: str, schema_name: str, serve_process: ServeProcess
) -> None:
    """Reliability check 30: nothing seeded, nothing printed, 'openticket' opens nothing."""
    env = {"OPENTICKET_DATABASE_URL": database_url, "OPENTICKET_DATABASE_SCHEMA": schema_name}
    with serve_process(env) as (base, printed):
        assert "demo accounts, password" not in printed
        assert "openticket.local" not in printed
        assert "demo session on sale now" not in printed
        assert "the catalog is empty" in printed
        for email, _, _ in DEMO_ACCOUNTS:
            assert _sign_in(base, email, "openticket").status_code == 401
        assert httpx.get(f"{base}/api/events", timeout=10).json()["items"] == []


@pytest.mark.parametrize("configured", [None, "demo-password-1"])
def test_serve_without_demo_disables_demo_accounts_an_older_serve_left(
    database_url: str, schema_name: str, serve_process: ServeProcess, configured: str | None
) -> None:
    """Reliability check 30: accounts seeded as every older serve did (the published or
    the configured password) are disabled on the next start without --demo; a real
    admin is left alone."""
    env = {"OPENTICKET_DATABASE_URL": database_url, "OPENTICKET_DATABASE_SCHEMA": schema_name}
    if configured is not None:
        env["OPENTICKET_DEMO_PASSWORD"] = configured
    password = configured or "openticket"
    with serve_process(env, demo=True) as (base, printed):  # what older releases always did
        assert f"demo accounts, password {password!r}" in printed
        assert _sign_in(base, "admin@openticket.local", password).status_code == 200
    made = _users_create(database_url, schema_name, "boss@example.com", "a-real-password", "admin")
    assert made.returncode == 0, made.stderr
    with serve_process(env) as (base, printed):
        disabled = next(line for line in printed.splitlines() if "disabled" in line)
        for email, _, _ in DEMO_ACCOUNTS:
            assert email in disabled
            refused = _sign_in(base, email, password)
            assert refused.status_code == 401, refused.text
        assert "demo accounts, password" not in printed
        assert _sign_in(base, "boss@example.com", "a-real-password").status_code == 200
    with serve_process(env) as (base, printed):  # said once: they are disabled now
        assert "disabled" not in printed


@pytest.mark.parametrize(
    "shared",
    [
        ("OPENTICKET_REDIS_URL", "redis://127.0.0.1:6379/0"),
        ("OPENTICKET_NATS_URL", "nats://127.0.0.1:4222"),
    ],
)
def test_serve_with_redis_or_nats_and_no_jwt_secret_is_refused_in_one_line(
    database_url: str, schema_name: str, shared: tuple[str, str]
) -> None:
    """Several API processes would each make up a secret: serve refuses, before anything."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENTICKET_")}
    env |= {
        "OPENTICKET_DATABASE_URL": database_url,
        "OPENTICKET_DATABASE_SCHEMA": schema_name,
        shared[0]: shared[1],
    }
    run = subprocess.run(  # noqa: S603  # our own command
        [*CLI, "serve", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert run.returncode == 2
    (line,) = run.stderr.strip().splitlines()
    assert shared[0] in line
    assert "OPENTICKET_JWT_SECRET" in line
    assert "Traceback" not in run.stdout + run.stderr
