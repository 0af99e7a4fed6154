"""The production profile on the chaos tests' own servers: serve and workers, started and read.

Every process writes to a log file of its own (never to a pipe nobody reads, which would
stall a process that logs a lot while its dependencies are down); the test reads the
file to know when a process is ready, and prints its tail when something goes wrong.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

CLI = [sys.executable, "-m", "openticket.entrypoints.cli"]


class Process:
    """One ``openticket`` process with its log file."""

    def __init__(self, name: str, arguments: list[str], env: dict[str, str], logs: Path) -> None:
        self.name = name
        self.log = logs / f"{name}.log"
        self._arguments = arguments
        self._env = env
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, ready: str, within: float = 60.0) -> None:
        """Start it; returns once its log shows ``ready``."""
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(  # noqa: S603  # our own command
                [*CLI, *self._arguments],
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, **self._env},
            )
        deadline = time.monotonic() + within
        while ready not in self.log.read_text(errors="replace"):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"{self.name} did not start:\n{self.tail()}")
            time.sleep(0.05)

    def signal(self, number: int) -> None:
        """Send a signal (SIGKILL, SIGSTOP, SIGCONT...)."""
        assert self.proc is not None
        self.proc.send_signal(number)

    def stop(self) -> None:
        """Stop it (SIGTERM, then SIGKILL after 15 s); idempotent."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGCONT)  # a paused process cannot hear SIGTERM
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)

    def tail(self, lines: int = 40) -> str:
        """The end of its log."""
        with contextlib.suppress(FileNotFoundError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""


class Deployment:
    """``openticket serve`` and two ``openticket worker`` processes sharing one environment."""

    def __init__(self, env: dict[str, str], logs: Path, port: int, partitions: int) -> None:
        self.env = env
        self.base = f"http://127.0.0.1:{port}"
        last = partitions - 1
        half = last // 2
        self.workers = [
            Process("worker-1", ["worker", "--partitions", f"0-{half}", "--id", "w1"], env, logs),
            Process(
                "worker-2",
                ["worker", "--partitions", f"{half + 1}-{last}", "--id", "w2"],
                env,
                logs,
            ),
        ]
        self.api = Process("serve", ["serve", "--port", str(port), "--demo"], env, logs)

    @contextlib.contextmanager
    def running(self) -> Iterator[Deployment]:
        """Every process started (workers first), stopped at the end however it ends."""
        try:
            for worker in self.workers:
                worker.start("Ctrl+C to stop")
            self.api.start("press Ctrl+C")
            deadline = time.monotonic() + 30
            while httpx.get(f"{self.base}/health/ready", timeout=2).status_code != 200:
                if time.monotonic() > deadline:
                    raise AssertionError(f"serve never got ready:\n{self.api.tail()}")
                time.sleep(0.1)
            yield self
        finally:
            self.api.stop()
            for worker in self.workers:
                worker.stop()

    def tails(self) -> str:
        """The end of every process's log, for a failure's message."""
        return "\n".join(f"--- {p.name} ---\n{p.tail()}" for p in (self.api, *self.workers))
