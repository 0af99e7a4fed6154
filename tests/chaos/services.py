"""PostgreSQL, Redis and NATS of the chaos tests' own, on free loopback ports, to break.

The machine's servers (5432, 6379, 4222) serve every other suite; the chaos tests start
their own from the same Debian binaries and kill, restart and flush those, so a fault
never leaks into another test and nothing is left to restore. Each one is stopped when
the test session ends, whatever happened.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

POSTGRES_BIN = Path("/usr/lib/postgresql")
REDIS_SERVER = "/usr/bin/redis-server"
NATS_SERVER = "/usr/sbin/nats-server"


def free_port() -> int:
    """A loopback port nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(check: object, what: str, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            if check():  # type: ignore[operator]
                return
        except Exception as e:  # not up yet
            last = e
        time.sleep(0.05)
    raise AssertionError(f"{what} did not come up in {within} s: {last!r}")


WhileDown = Callable[[float], None]
"""What to do while a server is down, given when it comes back (``time.monotonic()``)."""


def _nothing(until: float) -> None:
    """Nothing to do while a server is down."""


def _down(seconds: float, meanwhile: WhileDown) -> None:
    """Stay down ``seconds``, doing ``meanwhile(until)`` (which must end by ``until``)."""
    until = time.monotonic() + seconds
    meanwhile(until)
    time.sleep(max(0.0, until - time.monotonic()))


def _as_postgres() -> list[str]:
    """PostgreSQL refuses to run as root: run its tools as the postgres user then."""
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


class PrivatePostgres:
    """A PostgreSQL cluster in a directory of its own; ``restart()`` is an immediate one."""

    def __init__(self, root: Path) -> None:
        versions = sorted(POSTGRES_BIN.glob("*/bin/pg_ctl"))
        if not versions:
            raise FileNotFoundError("no PostgreSQL server binaries under /usr/lib/postgresql")
        self._bin = versions[-1].parent
        self._dir = root / "pgdata"
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *arguments: str) -> None:
        subprocess.run(  # noqa: S603  # the server's own tools, our arguments
            [*_as_postgres(), *arguments], check=True, capture_output=True, timeout=60
        )

    def start(self) -> None:
        """Create the cluster (once) and start it; returns when it takes connections."""
        if not self._dir.exists():
            self._dir.mkdir(parents=True)
            if os.geteuid() == 0:
                shutil.chown(self._dir, "postgres", "postgres")
                shutil.chown(self._dir.parent, "postgres", "postgres")
            self._run(
                str(self._bin / "initdb"), "-D", str(self._dir), "-A", "trust", "-U", "postgres"
            )
        self._run(
            str(self._bin / "pg_ctl"),
            "-D", str(self._dir),
            "-l", str(self._dir / "server.log"),
            "-o", f"-p {self.port} -k {self._dir} -c listen_addresses=127.0.0.1"
            " -c fsync=off -c max_connections=200",
            "-w", "start",
        )  # fmt: skip
        _wait(self._answers, "PostgreSQL")

    def _answers(self) -> bool:
        with psycopg.connect(self.url, connect_timeout=2) as conn:
            conn.execute("SELECT 1")
        return True

    def restart(self, *, down_for: float = 0.0, while_down: WhileDown = _nothing) -> None:
        """Stop at once (``-m immediate``: no checkpoint, clients cut), wait, start again."""
        self.stop(mode="immediate")
        _down(down_for, while_down)
        self.start()

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (idempotent)."""
        with contextlib.suppress(subprocess.CalledProcessError):
            self._run(str(self._bin / "pg_ctl"), "-D", str(self._dir), "-m", mode, "-w", "stop")


class PrivateRedis:
    """A Redis without persistence, as `.ci/run` starts the machine's: a restart loses all."""

    def __init__(self, root: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._root = root
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the server; returns when it answers PING."""
        self._proc = subprocess.Popen(  # noqa: S603  # the server binary, our arguments
            [
                REDIS_SERVER,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--dir", str(self._root),
                "--logfile", str(self._root / f"redis-{self.port}.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        _wait(lambda: redis.Redis(port=self.port, socket_timeout=1).ping(), "Redis")

    def restart(self, *, down_for: float = 0.0, while_down: WhileDown = _nothing) -> None:
        """Shut down without saving, wait, start again: every key is gone."""
        self.stop()
        _down(down_for, while_down)
        self.start()

    def flush(self) -> None:
        """``FLUSHALL``: every key gone, the server up."""
        redis.Redis(port=self.port, socket_timeout=5).flushall()

    def stop(self) -> None:
        """Stop the server (idempotent)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        with contextlib.suppress(redis.RedisError):
            redis.Redis(port=self.port, socket_timeout=2, retry=Retry(NoBackoff(), 0)).shutdown(
                nosave=True
            )
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


class PrivateNats:
    """A nats-server with JetStream on disk; ``kill()`` is ``kill -9``, its store survives."""

    def __init__(self, root: Path) -> None:
        self.port = free_port()
        self.url = f"nats://127.0.0.1:{self.port}"
        self._store = root / "jetstream"
        self._log = root / "nats.log"
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the server; returns when it takes connections."""
        self._proc = subprocess.Popen(  # noqa: S603  # the server binary, our arguments
            [
                NATS_SERVER,
                "-a", "127.0.0.1",
                "-p", str(self.port),
                "-js",
                "-sd", str(self._store),
                "-l", str(self._log),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip

        def listening() -> bool:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True

        _wait(listening, "NATS")

    def kill(self) -> None:
        """SIGKILL: no goodbye to clients, JetStream recovers from its store at start."""
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)

    def restart(self, *, down_for: float = 0.0, while_down: WhileDown = _nothing) -> None:
        """``kill -9``, wait, start again on the same port and store."""
        self.kill()
        _down(down_for, while_down)
        self.start()

    def stop(self) -> None:
        """Stop the server (idempotent)."""
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
