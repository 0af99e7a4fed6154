"""The production profile on the chaos tests' own servers: serve and workers, started and read.

Every process writes to a log file of its own (never to a pipe nobody reads, which would
stall a process that logs a lot while its dependencies are down); the test reads the
file to know when a process is ready, and prints its tail when something goes wrong.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from openticket.testing.processes import LoggedProcess

CLI = [sys.executable, "-m", "openticket.entrypoints.cli"]


class Process(LoggedProcess):
    """One ``openticket`` process with its log file."""

    def __init__(self, name: str, arguments: list[str], env: dict[str, str], logs: Path) -> None:
        super().__init__(name, [*CLI, *arguments], env, logs)

    def stop(self, patience: float = 15.0) -> None:
        """Stop it (SIGTERM, then SIGKILL after 15 s); idempotent."""
        super().stop(patience)


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
