"""A Redis Cluster of the tests' own: three masters with one replica each, on loopback.

Six ``redis-server`` processes (Debian's, from ``PATH``) on free ports, without
persistence, joined by ``redis-cli --cluster create``. The machine's Redis on 6379 is
never touched. ``redis_cluster`` is one cluster for a module's tests; a test that kills
nodes starts its own with ``start_cluster``. Every process is stopped when its fixture
ends, however the tests ended.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot

from openticket.adapters.redis.connection import RedisConnection
from openticket.domain.shared import SessionId

pytestmark = [pytest.mark.redis_cluster]

MASTERS = 3
NODE_TIMEOUT_MS = 1000
"""``cluster-node-timeout``: a master silent this long is failing; its replica takes over."""
READY_WITHIN = 30.0
"""Seconds a new cluster may take to say ``cluster_state:ok`` on every node."""


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for s in sockets:
            s.close()


def binary(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"no {name} on PATH: install Debian's redis-server (and redis-tools)")
    return found


class LocalCluster:
    """Six redis-server processes on loopback forming one cluster (3 masters, 3 replicas)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        ports = free_ports(4 * MASTERS)
        self.ports = ports[: 2 * MASTERS]
        self._bus_ports = dict(zip(self.ports, ports[2 * MASTERS :], strict=True))
        self._procs: dict[int, subprocess.Popen[bytes]] = {}

    # --- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        """Start every node, form the cluster and wait until every node says it is ok."""
        server = binary("redis-server")
        for port in self.ports:
            self._procs[port] = subprocess.Popen(  # noqa: S603  # the server, our arguments
                [
                    server,
                    "--bind", "127.0.0.1",
                    "--port", str(port),
                    "--cluster-port", str(self._bus_ports[port]),
                    "--cluster-enabled", "yes",
                    "--cluster-config-file", f"nodes-{port}.conf",
                    "--cluster-node-timeout", str(NODE_TIMEOUT_MS),
                    "--appendonly", "no",
                    "--save", "",
                    "--maxmemory-policy", "noeviction",
                    "--repl-diskless-sync-delay", "0",  # replicas in sync at once
                    "--cluster-require-full-coverage", "no",
                    "--dir", str(self.root),
                    "--logfile", f"node-{port}.log",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )  # fmt: skip
        deadline = time.monotonic() + READY_WITHIN
        for port in self.ports:
            until(
                deadline,
                f"node {port} never answered within {READY_WITHIN} s",
                lambda p=port: pings(p),
            )
        subprocess.run(  # noqa: S603  # redis-cli, our arguments
            [
                binary("redis-cli"),
                "--cluster", "create",
                *(f"127.0.0.1:{port}" for port in self.ports),
                "--cluster-replicas", "1",
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=READY_WITHIN,
        )  # fmt: skip
        self.wait_ok(deadline)

    def stop(self) -> None:
        """Stop every node still running (SIGTERM, then SIGKILL for a node that hangs)."""
        for proc in self._procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)  # a paused node would not hear SIGTERM
                proc.terminate()
        for proc in self._procs.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        self._procs.clear()

    def kill(self, port: int) -> None:
        """Kill one node with SIGKILL: no goodbye to the cluster, no last replication."""
        proc = self._procs.pop(port)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)

    def pause(self, port: int) -> None:
        """Stop one node (SIGSTOP): it neither answers nor reconnects until resumed."""
        self._procs[port].send_signal(signal.SIGSTOP)

    def resume(self, port: int) -> None:
        """Let a paused node go on (SIGCONT)."""
        self._procs[port].send_signal(signal.SIGCONT)

    # --- what the cluster says ---------------------------------------------------------

    @property
    def live_ports(self) -> list[int]:
        """The ports of the nodes still running."""
        return [port for port, proc in self._procs.items() if proc.poll() is None]

    @property
    def url(self) -> str:
        """A URL naming one live node: what ``OPENTICKET_REDIS_URL`` would be set to."""
        return f"redis://127.0.0.1:{self.live_ports[0]}/0"

    def info(self, port: int, section: str) -> dict[str, Any]:
        """``CLUSTER INFO`` (section ``cluster``) or ``INFO <section>`` of one node, parsed."""
        client = redis.Redis(port=port, socket_timeout=2, socket_connect_timeout=2)
        try:
            if section == "cluster":
                found: dict[str, Any] = client.execute_command("CLUSTER INFO")
                return found
            return dict(client.info(section))
        finally:
            client.close()

    def replicas(self, master_port: int) -> dict[int, int]:
        """The master's replicas (by port) and the replication offset each acknowledged."""
        info = self.info(master_port, "replication")
        return {
            int(value["port"]): int(value["offset"])
            for key, value in info.items()
            if key.startswith("slave") and isinstance(value, dict)
        }

    def master_of(self, key: str) -> int:
        """The port of the master that serves ``key``'s slot now (asked of a live node)."""
        slot = key_slot(key.encode())
        for port in self.live_ports:
            try:
                client = redis.Redis(port=port, socket_timeout=2, socket_connect_timeout=2)
                try:
                    ranges = client.execute_command("CLUSTER SLOTS")
                finally:
                    client.close()
            except redis.RedisError:
                continue
            for start, end, master, *_ in ranges:
                if int(start) <= slot <= int(end):
                    return int(master[1])
        raise AssertionError(f"no live node knows who serves slot {slot}")

    def wait_ok(self, deadline: float) -> None:
        """Until every live node says ``cluster_state:ok`` and every replica is in sync."""
        for port in self.live_ports:
            until(
                deadline,
                f"node {port} never said cluster_state:ok within {READY_WITHIN} s",
                lambda p=port: self.info(p, "cluster").get("cluster_state") == "ok",
            )
        for port in self.live_ports:
            until(
                deadline,
                f"node {port} never synced with its master within {READY_WITHIN} s",
                lambda p=port: self._synced(p),
            )

    def _synced(self, port: int) -> bool:
        info = self.info(port, "replication")
        return info.get("role") == "master" or info.get("master_link_status") == "up"


def pings(port: int) -> bool:
    """Whether a server answers on ``port``."""
    client = redis.Redis(port=port, socket_timeout=1, socket_connect_timeout=1)
    try:
        return bool(client.ping())
    finally:
        client.close()


def until(deadline: float, failure: str, check: Callable[[], bool]) -> None:
    """Wait (polling) until ``check()`` holds; fail with ``failure`` at the deadline."""
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (redis.RedisError, OSError) as e:
            last = e
        time.sleep(0.1)
    raise AssertionError(f"{failure} (last error: {last!r})")


def sessions_on_every_master(
    cluster: LocalCluster, key_of: Callable[[SessionId], str]
) -> dict[int, SessionId]:
    """One new session per master, by the slot of ``key_of(session)``; by master port."""
    found: dict[int, SessionId] = {}
    for _ in range(200):
        session = SessionId(uuid.uuid4())
        found.setdefault(cluster.master_of(key_of(session)), session)
        if len(found) == MASTERS:
            return found
    raise AssertionError("200 random sessions never covered every master")


StartCluster = Callable[[], AbstractContextManager[LocalCluster]]
"""``with start_cluster() as cluster:`` a cluster of the block's own, stopped after it."""


@pytest.fixture(scope="module")
def start_cluster(tmp_path_factory: pytest.TempPathFactory) -> StartCluster:
    """Starts clusters (each in a directory of its own) and stops them at the block's end."""

    @contextmanager
    def started() -> Iterator[LocalCluster]:
        cluster = LocalCluster(tmp_path_factory.mktemp("redis-cluster"))
        try:
            cluster.start()
            yield cluster
        finally:
            cluster.stop()

    return started


@pytest.fixture(scope="module")
def redis_cluster(start_cluster: StartCluster) -> Iterator[LocalCluster]:
    """One cluster shared by a module's tests (they keep to keys of their own)."""
    with start_cluster() as cluster:
        yield cluster


@pytest.fixture
async def cluster_client(redis_cluster: LocalCluster) -> AsyncIterator[RedisCluster]:
    """The client a process would use: OpenTicket's connection, given one node's URL."""
    connection = RedisConnection(redis_cluster.url, cluster=True)
    await connection.start()
    try:
        assert isinstance(connection.client, RedisCluster)
        yield connection.client
    finally:
        await connection.stop()


@pytest.fixture
def key_prefix() -> str:
    """A key prefix of the test's own (the cluster dies with the module: nothing to delete)."""
    return f"test:{uuid.uuid4().hex[:12]}:"
