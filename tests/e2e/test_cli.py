"""The ``openticket`` command as a person meets it: help, settings that fail in one line,
a port that is taken, and a real server bought from over real HTTP."""

from __future__ import annotations

import contextlib
import os
import queue
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import httpx
import pytest

from openticket.entrypoints.settings import describe

if TYPE_CHECKING:
    from tests.conftest import ServeProcess

pytestmark = pytest.mark.e2e

CLI = [sys.executable, "-m", "openticket.entrypoints.cli"]


def clean_env(**settings: str) -> dict[str, str]:
    """The test's environment without any OPENTICKET_* variable, plus ``settings``."""
    kept = {k: v for k, v in os.environ.items() if not k.startswith("OPENTICKET_")}
    return {**kept, **settings}


def run_cli(*args: str, stdin: str = "", **settings: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603  # our own command
        [*CLI, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(**settings),
        check=False,
    )


def one_line(run: subprocess.CompletedProcess[str]) -> str:
    """The one line the command printed on stderr (and no traceback anywhere)."""
    assert "Traceback" not in run.stderr + run.stdout, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    return lines[0]


def test_help_lists_every_command_and_setting_under_headings_with_defaults() -> None:
    out = subprocess.run([*CLI, "--help"], capture_output=True, text=True, check=True).stdout  # noqa: S603
    for command in ("serve", "worker", "migrate", "users"):
        assert command in out
    for variable, _, _ in describe():
        assert variable in out
    headings = re.findall(r"^(\S[^\n]*):$", out, flags=re.MULTILINE)
    for heading in ("database (PostgreSQL)", "Redis", "NATS", "HTTP", "payments", "demo data"):
        assert heading in headings
    database = out.split("\ndatabase (PostgreSQL):\n", 1)[1].split("\n\n", 1)[0]
    assert "OPENTICKET_DATABASE_URL" in database
    assert "OPENTICKET_DATABASE_POOL_SIZE" in database
    assert "OPENTICKET_REDIS_URL" not in database
    partitions = out.split("\n  OPENTICKET_PARTITIONS ", 1)[1].split("\n  OPENTICKET_", 1)[0]
    assert "(default: 16)" in " ".join(partitions.split())
    jwt = out[out.index("OPENTICKET_JWT_SECRET") : out.index("OPENTICKET_JWT_PRIVATE_KEY_FILE")]
    assert "default" not in jwt  # a secret's default is never shown


@pytest.mark.parametrize(
    ("command", "shown", "hidden"),
    [
        (["serve"], "OPENTICKET_WS_MAX_MESSAGE_BYTES", None),
        (["worker"], "OPENTICKET_WORKER_LEASE_SECONDS", None),
        (["migrate"], "OPENTICKET_DATABASE_SCHEMA", "OPENTICKET_REDIS_URL"),
        (["users", "create"], "OPENTICKET_DATABASE_URL", "OPENTICKET_PARTITIONS"),
    ],
)
def test_each_command_s_help_lists_its_settings(
    command: list[str], shown: str, hidden: str | None
) -> None:
    out = run_cli(*command, "--help").stdout
    assert "settings (environment variables" in out
    assert shown in out
    if hidden is not None:
        assert hidden not in out
    if command == ["serve"]:
        assert "--port" in out
        assert "--demo" in out


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("OPENTICKET_LOCK_STORE", "foo"),
        ("OPENTICKET_PERSISTENCE", "sqlite"),
        ("OPENTICKET_SEAT_ACTORS", "remote"),
        ("OPENTICKET_HOLD_TTL_SECONDS", "nan"),
        ("OPENTICKET_HOLD_TTL_SECONDS", "inf"),
        ("OPENTICKET_SWEEP_INTERVAL_SECONDS", "-1"),
        ("OPENTICKET_PARTITIONS", "0"),
        ("OPENTICKET_PARTITIONS", "4.5"),
        ("OPENTICKET_SAGA_INLINE", "maybe"),
        ("OPENTICKET_LOCK_STORE", "redis"),  # no Redis URL
        ("OPENTICKET_LOCK_STORE", "nats"),  # no NATS URL
        ("OPENTICKET_SEAT_ACTORS", "workers"),  # no NATS URL
        ("OPENTICKET_DATABASE_URL", "mysql://root@127.0.0.1:3306/shop"),
        ("OPENTICKET_REDIS_URL", "http://127.0.0.1:6379"),
        ("OPENTICKET_NATS_URL", "http://127.0.0.1:4222"),
        ("OPENTICKET_PUBLIC_URL", "tickets.example.com"),
        ("OPENTICKET_STRIPE_API_BASE", "ftp://127.0.0.1"),
        ("OPENTICKET_LINEPAY_API_BASE", "api-pay.line.me"),
        ("OPENTICKET_JWT_SECRET", "shorter-than-32-bytes"),
        ("OPENTICKET_JWT_PRIVATE_KEY_FILE", "/no/such/signing-key.pem"),
        ("OPENTICKET_CORS_ORIGINS", "https://tickets.example.com/shop"),
        ("OPENTICKET_TRUSTED_PROXIES", "load-balancer.internal"),
    ],
)
def test_a_bad_setting_stops_serve_with_one_line_naming_it_and_exit_2(
    variable: str, value: str
) -> None:
    run = run_cli("serve", "--port", "0", **{variable: value})
    assert run.returncode == 2, run.stdout + run.stderr
    line = one_line(run)
    assert variable in line
    if variable == "OPENTICKET_JWT_SECRET":
        assert value not in line
    assert "OpenTicket is serving" not in run.stdout


def test_several_bad_settings_are_all_reported() -> None:
    run = run_cli(
        "serve",
        OPENTICKET_LOCK_STORE="foo",
        OPENTICKET_HOLD_TTL_SECONDS="nan",
        OPENTICKET_DATABASE_URL="mysql://root@127.0.0.1/shop",
        OPENTICKET_JWT_SECRET="short",
    )
    assert run.returncode == 2
    assert "Traceback" not in run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 4, run.stderr
    for variable in ("LOCK_STORE", "HOLD_TTL_SECONDS", "DATABASE_URL", "JWT_SECRET"):
        assert sum(f"OPENTICKET_{variable}" in line for line in lines) == 1


def test_redis_without_a_jwt_secret_is_refused_in_one_line() -> None:
    run = run_cli("serve", "--port", "0", OPENTICKET_REDIS_URL="redis://127.0.0.1:6379/0")
    assert run.returncode == 2
    line = one_line(run)
    assert "OPENTICKET_JWT_SECRET" in line
    assert "OPENTICKET_REDIS_URL" in line


@pytest.mark.parametrize("given", ["99999", "-1", "http"])
def test_a_port_out_of_range_is_a_usage_error(given: str) -> None:
    run = run_cli("serve", "--port", given)
    assert run.returncode == 2
    assert "ports are 1-65535" in one_line(run)


def test_a_port_in_use_is_one_line_and_exit_1() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = run_cli("serve", "--port", str(port))
    assert run.returncode == 1
    line = one_line(run)
    assert f"port {port}" in line
    assert "in use" in line
    assert "OpenTicket is serving" not in run.stdout


def test_an_address_that_does_not_resolve_is_one_line_and_exit_1() -> None:
    run = run_cli("serve", "--host", "no-such-host.invalid", "--port", "0")
    assert run.returncode == 1
    assert "no-such-host.invalid" in one_line(run)


def test_users_create_refuses_the_embedded_profile() -> None:
    run = run_cli("users", "create", "--email", "boss@example.com", "--role", "admin", stdin="pw\n")
    assert run.returncode == 2
    assert "OPENTICKET_DATABASE_URL" in one_line(run)


def _on_a_terminal(args: list[str], answers: list[str], **settings: str) -> tuple[int, str]:
    """Run ``openticket <args>`` on a pseudo-terminal, typing each answer after its prompt."""
    pid, terminal = os.forkpty()
    if pid == 0:  # the child: the command, with the terminal as its own
        os.execve(sys.executable, [*CLI, *args], clean_env(**settings))  # noqa: S606
    seen = ""
    deadline = time.monotonic() + 60

    def read() -> bool:
        """Read what is there (waiting up to a second); False once the command ended."""
        nonlocal seen
        if not select.select([terminal], [], [], 1)[0]:
            return True
        try:
            chunk = os.read(terminal, 1024)
        except OSError:  # the command ended and closed the terminal
            return False
        seen += chunk.decode(errors="replace")
        return bool(chunk)

    try:
        for prompts, answer in enumerate(answers, start=1):
            while seen.count("password") < prompts and time.monotonic() < deadline:
                read()
            os.write(terminal, f"{answer}\n".encode())
        while time.monotonic() < deadline and read():
            pass
    finally:
        if time.monotonic() >= deadline:
            os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        os.close(terminal)
    return os.waitstatus_to_exitcode(status), seen


def test_users_create_asks_the_password_twice_on_a_terminal() -> None:
    """Two different answers: nothing made (2); the same twice: on to the database."""
    unreachable = {"OPENTICKET_DATABASE_URL": "postgresql://postgres@127.0.0.1:1/none"}
    create = ["users", "create", "--email", "boss@example.com", "--role", "admin"]
    code, printed = _on_a_terminal(create, ["a-long-password", "another-password"], **unreachable)
    assert code == 2, printed
    assert "the two passwords differ" in printed
    assert "a-long-password" not in printed  # never echoed
    code, printed = _on_a_terminal(create, ["a-long-password", "a-long-password"], **unreachable)
    assert code == 1, printed
    assert "cannot reach PostgreSQL at 127.0.0.1:1/none" in printed
    assert "Traceback" not in printed


def test_an_unknown_variable_is_a_warning_with_the_closest_name_not_an_error(
    serve_process: ServeProcess,
) -> None:
    with serve_process({"OPENTICKET_LOCKSTORE": "memory"}) as (base, printed):
        assert httpx.get(f"{base}/health/live", timeout=5).status_code == 200
    assert "OPENTICKET_LOCKSTORE is not a setting" in printed
    assert "did you mean OPENTICKET_LOCK_STORE?" in printed


def test_serve_on_any_free_port_prints_the_port_it_got() -> None:
    with _started("--port", "0") as (base, _, _):
        assert not base.endswith(":0")
        assert httpx.get(f"{base}/health/live", timeout=5).status_code == 200


@pytest.fixture
def server() -> Iterator[tuple[str, str]]:
    with _started("--port", "0", OPENTICKET_DEMO_PASSWORD="demo-password-1") as (
        base,
        session_id,
        printed,
    ):
        assert session_id, printed
        assert "admin@openticket.local" in printed
        yield base, session_id


def _read_banner(proc: subprocess.Popen[str]) -> tuple[str, str, str]:
    """(base URL, demo session id, everything printed) once 'press Ctrl+C' is read."""
    assert proc.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        seen.append(line)
        if line.startswith("press Ctrl+C") or (not line and proc.poll() is not None):
            break
    printed = "".join(seen)
    serving = re.search(r"OpenTicket is serving on (http://\S+)", printed)
    session = re.search(r"demo session on sale now: (\S+)", printed)
    assert serving, printed
    return serving.group(1), session.group(1) if session else "", printed


@contextmanager
def _started(*args: str, **settings: str) -> Iterator[tuple[str, str, str]]:
    proc = subprocess.Popen(  # noqa: S603  # our own command
        [*CLI, "serve", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=clean_env(**settings),
    )
    try:
        yield _read_banner(proc)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_sigusr1_prints_what_each_task_awaits_and_serving_goes_on() -> None:
    """An operator facing a process that hangs sees its asyncio tasks, without stopping it."""
    proc = subprocess.Popen(  # noqa: S603  # our own command
        [*CLI, "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=clean_env(),
    )
    try:
        base, _, _ = _read_banner(proc)
        assert proc.stdout is not None
        proc.send_signal(signal.SIGUSR1)
        lines: queue.Queue[str] = queue.Queue()
        out = proc.stdout

        def pump() -> None:
            for line in out:
                lines.put(line)

        threading.Thread(target=pump, daemon=True).start()
        dumped: list[str] = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and "_sweep_forever" not in "".join(dumped):
            with contextlib.suppress(queue.Empty):
                dumped.append(lines.get(timeout=0.5))
        printed = "".join(dumped)
        assert re.search(r"openticket: \d+ asyncio tasks", printed), printed
        assert "--- task expiry-sweeper" in printed, printed
        assert "_sweep_forever" in printed, printed  # the stack, not only the name
        assert httpx.get(f"{base}/health/live", timeout=5).status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_the_banner_comes_once_the_port_answers() -> None:
    """No retry: the first request after the last banner line is answered."""
    with _started("--port", "0") as (base, session_id, printed):
        assert printed.rstrip().endswith("press Ctrl+C to stop")
        assert session_id
        answer = httpx.get(f"{base}/api/sessions/{session_id}/seats", timeout=5)
        assert answer.status_code == 200
        assert "server" not in answer.headers


def test_serve_sells_a_ticket_over_real_http(server: tuple[str, str]) -> None:
    base, session_id = server
    with httpx.Client(base_url=base, timeout=10) as http:
        assert http.get("/health/ready").json()["status"] == "ok"
        made = http.post(
            "/api/auth/register",
            json={
                "email": "dana@example.com",
                "password": "a-long-password",
                "display_name": "Dana",
            },
        )
        assert made.status_code == 201
        token = http.post(
            "/api/auth/token", json={"email": "dana@example.com", "password": "a-long-password"}
        ).json()["access_token"]
        dana = {"Authorization": f"Bearer {token}"}
        order = http.post(
            "/api/orders", json={"session_id": session_id, "seat_ids": ["A-1-1"]}, headers=dana
        )
        assert order.status_code == 201, order.text
        paid = http.post(
            f"/api/orders/{order.json()['order_id']}/payments",
            json={"provider": "mock"},
            headers=dana,
        )
        assert paid.json()["status"] == "succeeded"
        (ticket,) = http.get("/api/me/tickets", headers=dana).json()["items"]
        staff = http.post(
            "/api/auth/token",
            json={"email": "staff@openticket.local", "password": "demo-password-1"},
        ).json()["access_token"]
        used = http.post(
            "/api/check-ins",
            json={"qr_code": ticket["qr_code"]},
            headers={"Authorization": f"Bearer {staff}"},
        )
        assert used.json()["status"] == "used"
