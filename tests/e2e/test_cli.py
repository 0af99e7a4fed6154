"""The ``openticket`` command: help, and a real server bought from over real HTTP."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from openticket.entrypoints.settings import describe

pytestmark = pytest.mark.e2e

CLI = [sys.executable, "-m", "openticket.entrypoints.cli"]


def test_help_lists_every_command_and_setting() -> None:
    out = subprocess.run([*CLI, "--help"], capture_output=True, text=True, check=True).stdout  # noqa: S603
    assert "serve" in out
    for variable, _, _ in describe():
        assert variable in out
    serve = subprocess.run([*CLI, "serve", "--help"], capture_output=True, text=True, check=True)  # noqa: S603
    assert "--host" in serve.stdout
    assert "--port" in serve.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server() -> Iterator[tuple[str, str]]:
    port = free_port()
    env = {**os.environ, "OPENTICKET_DEMO_PASSWORD": "demo-password-1"}
    proc = subprocess.Popen(  # noqa: S603  # our own command
        [*CLI, "serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    session_id, seen = "", []
    deadline = time.monotonic() + 20
    try:
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            seen.append(line)
            if line.startswith("demo session on sale now:"):
                session_id = line.split(":", 1)[1].strip()
            if line.startswith("press Ctrl+C"):
                break
            if not line and proc.poll() is not None:
                break
        assert session_id, "".join(seen)
        base = f"http://127.0.0.1:{port}"
        assert f"OpenTicket is serving on {base}" in "".join(seen)
        assert "admin@openticket.local" in "".join(seen)
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/health/live", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        yield base, session_id
    finally:
        proc.terminate()
        proc.wait(timeout=10)


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
