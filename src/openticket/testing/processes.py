"""A child process with a log file of its own, ready once its log says so.

What the benchmarks, the chaos scenarios and the dashboard renderer start (``openticket
serve`` and ``worker``, servers): each writes to ``<logs>/<name>.log``, is ready when a
line it prints appears there, and is stopped by SIGTERM, then SIGKILL.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path


class ProcessDidNotStart(RuntimeError):
    """The process exited, or did not say it was ready in time (the end of its log)."""


class LoggedProcess:
    """``command`` run with the environment plus ``env``, its output in its own log."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], logs: Path) -> None:
        self.name = name
        self.command = command
        self.env = env
        self.log = logs / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        """The running process's id."""
        if self.proc is None:
            raise RuntimeError(f"{self.name} is not running")
        return self.proc.pid

    def start(self, ready: str, within: float = 60.0) -> None:
        """Start it and wait until ``ready`` appears in its log (``ProcessDidNotStart``)."""
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(  # noqa: S603  # our own commands
                self.command, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **self.env}
            )
        deadline = time.monotonic() + within
        while ready not in self.log.read_text(errors="replace"):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise ProcessDidNotStart(f"{self.name} did not start:\n{self.tail()}")
            time.sleep(0.05)

    def signal(self, number: int) -> None:
        """Send a signal (SIGKILL, SIGSTOP, SIGCONT...)."""
        if self.proc is None:
            raise RuntimeError(f"{self.name} is not running")
        self.proc.send_signal(number)

    def stop(self, patience: float = 20.0) -> None:
        """SIGTERM, then SIGKILL after ``patience`` seconds; nothing if it is not running.

        SIGCONT goes first: a paused process cannot hear SIGTERM.
        """
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGCONT)
        proc.terminate()
        try:
            proc.wait(timeout=patience)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)

    def tail(self, lines: int = 30) -> str:
        """The end of its log."""
        with contextlib.suppress(FileNotFoundError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""
