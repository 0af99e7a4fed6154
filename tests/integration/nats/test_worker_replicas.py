"""Workers started as replicas (``--replica N --replicas M``, what a Kubernetes
StatefulSet runs) split the partitions between them by their numbers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import httpx
import pytest
from tests.conftest import _drained, _free_port, _spawn, _stop
from tests.integration.nats.test_worker_processes import _sample

pytestmark = [pytest.mark.nats, pytest.mark.postgres, pytest.mark.redis]


@contextmanager
def _replica(env: dict[str, str], replica: int, replicas: int, port: int) -> Iterator[str]:
    """``openticket worker --replica <replica> --replicas <replicas>``; its first line."""
    proc, seen = _spawn(
        ["worker", "--replica", str(replica), "--replicas", str(replicas), "--id", f"r{replica}"],
        {**env, "OPENTICKET_WORKER_METRICS_PORT": str(port)},
        lambda line: "Ctrl+C to stop" in line,
        time.monotonic() + 30,
    )
    assert proc.poll() is None, "".join(seen)
    _drained(proc, seen)
    try:
        yield seen[-1]
    finally:
        _stop(proc, seen, timeout=15)


async def test_two_replicas_prefer_and_own_one_half_of_the_partitions_each(
    production: dict[str, str],
) -> None:
    count = int(production["OPENTICKET_PARTITIONS"])
    half = count // 2
    ports = [_free_port(), _free_port()]
    with ExitStack() as stack:
        said = [stack.enter_context(_replica(production, n, 2, ports[n])) for n in range(2)]
        assert f"prefers 0-{half - 1};" in said[0]
        assert f"prefers {half}-{count - 1};" in said[1]
        async with httpx.AsyncClient(timeout=5) as http:
            deadline = time.monotonic() + 20
            while True:
                owned = [
                    _sample(
                        (await http.get(f"http://127.0.0.1:{port}/metrics")).text,
                        "openticket_worker_partitions_owned",
                        worker=f"r{n}",
                    )
                    for n, port in enumerate(ports)
                ]
                if owned == [half, half]:
                    break
                assert time.monotonic() < deadline, f"owned {owned}, not {half} each"
                await asyncio.sleep(0.2)
