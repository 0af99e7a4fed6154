"""Partition leases on a real NATS server: split, hand-over, takeover, steals, restarts."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import msgspec
import nats
import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.errors import KeyNotFoundError, NotFoundError

from openticket.adapters.nats.cluster import (
    SERIALIZED_WRITES_SINCE,
    UnsafeNatsServer,
    server_version,
)
from openticket.adapters.nats.leases import LeaseRecord, PartitionLeases, lease_key
from openticket.adapters.system import SystemClock
from openticket.application.ports.errors import AdapterUnavailable

pytestmark = pytest.mark.nats

TTL = 0.6
HEARTBEAT = 0.2
SLACK = 0.5
"""Seconds allowed on top of the protocol's own delays (a slow machine, a busy loop)."""
PARTITIONS = 8
ALL = frozenset(range(PARTITIONS))
LOW = frozenset(range(4))
HIGH = frozenset(range(4, 8))


@dataclass(eq=False)
class Member:
    """A worker's leases and what its callbacks saw."""

    leases: PartitionLeases
    acquired: list[int] = field(default_factory=list)
    lost: list[int] = field(default_factory=list)

    @property
    def owned(self) -> frozenset[int]:
        return self.leases.owned

    @property
    def name(self) -> str:
        return self.leases.worker_id

    def epochs(self) -> dict[int, int]:
        """The epoch of every owned partition."""
        found = {p: self.leases.epoch(p) for p in self.owned}
        return {p: epoch for p, epoch in found.items() if epoch is not None}


@dataclass(eq=False)
class Cluster:
    """Workers sharing one bucket; records any moment two of them owned one partition."""

    js: JetStreamContext
    bucket: str
    members: list[Member] = field(default_factory=list)
    overlaps: list[tuple[int, str, str]] = field(default_factory=list)

    def add(
        self,
        worker_id: str,
        preferred: Collection[int],
        *,
        js: JetStreamContext | None = None,
        acquire: Callable[[int], Awaitable[None]] | None = None,
    ) -> Member:
        member: Member

        async def on_acquired(p: int) -> None:
            member.acquired.append(p)
            if acquire is not None:
                await acquire(p)
            self.check(p, member)

        async def on_lost(p: int) -> None:
            member.lost.append(p)

        member = Member(
            PartitionLeases(
                js or self.js,
                worker_id=worker_id,
                partitions=PARTITIONS,
                preferred=preferred,
                bucket=self.bucket,
                ttl=timedelta(seconds=TTL),
                heartbeat=timedelta(seconds=HEARTBEAT),
                clock=SystemClock(),
                on_acquired=on_acquired,
                on_lost=on_lost,
            )
        )
        self.members.append(member)
        return member

    def check(self, p: int | None = None, starting: Member | None = None) -> None:
        """Record every partition two workers own now, or ``p`` owned by another as one starts."""
        for i, a in enumerate(self.members):
            for b in self.members[i + 1 :]:
                self.overlaps += [(q, a.name, b.name) for q in a.owned & b.owned]
        if starting is not None and p is not None:
            self.overlaps += [
                (p, starting.name, other.name)
                for other in self.members
                if other is not starting and p in other.owned
            ]

    async def watch(self, seconds: float) -> None:
        """Check for double owners every few milliseconds for ``seconds``."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.check()
            await asyncio.sleep(0.005)

    async def close(self) -> None:
        for member in self.members:
            await member.leases.stop()


@pytest.fixture
async def bucket(nats_client: Client, unique: str) -> AsyncIterator[str]:
    """A bucket name of the test's own; the bucket is deleted at the end."""
    name = f"leases_{unique}"
    try:
        yield name
    finally:
        with contextlib.suppress(NotFoundError):
            await nats_client.jetstream().delete_key_value(name)


@pytest.fixture
async def cluster(nats_client: Client, bucket: str) -> AsyncIterator[Cluster]:
    """Workers of the test; every one still running is stopped at the end."""
    group = Cluster(nats_client.jetstream(), bucket)
    try:
        yield group
    finally:
        await group.close()


async def until(
    condition: Callable[[], bool], within: float, cluster: Cluster | None = None
) -> float:
    """Wait for ``condition`` (checking for double owners meanwhile); seconds it took."""
    began = time.monotonic()
    while not condition():
        if cluster is not None:
            cluster.check()
        if time.monotonic() - began > within:
            raise AssertionError(f"condition not met within {within} s")
        await asyncio.sleep(0.005)
    return time.monotonic() - began


async def split(cluster: Cluster) -> tuple[Member, Member]:
    """Two workers preferring the low and the high half, each owning its half."""
    a = cluster.add("a", LOW)
    b = cluster.add("b", HIGH)
    await asyncio.gather(a.leases.start(), b.leases.start())
    await until(lambda: a.owned == LOW and b.owned == HIGH, 2 * HEARTBEAT + SLACK, cluster)
    return a, b


async def lease_of(cluster: Cluster, p: int) -> LeaseRecord | None:
    kv = await cluster.js.key_value(cluster.bucket)
    try:
        entry = await kv.get(lease_key(p))
    except KeyNotFoundError:
        return None
    return msgspec.json.decode(entry.value or b"", type=LeaseRecord)


def now_ms() -> int:
    return int(datetime.now(UTC).timestamp() * 1000)


async def test_two_workers_own_their_preferred_halves(cluster: Cluster) -> None:
    a, b = await split(cluster)

    await cluster.watch(4 * HEARTBEAT)  # and it stays so

    assert a.owned == LOW
    assert b.owned == HIGH
    assert not a.owned & b.owned
    assert a.owned | b.owned == ALL
    assert Counter(a.acquired) == Counter(LOW)
    assert Counter(b.acquired) == Counter(HIGH)
    assert a.lost == b.lost == []
    assert cluster.overlaps == []
    for p in ALL:
        record = await lease_of(cluster, p)
        assert record is not None
        assert record.worker == ("a" if p in LOW else "b")
        assert record.deadline_ms > now_ms()
        assert record.epoch >= 1


async def test_a_clean_stop_hands_over_at_once(cluster: Cluster) -> None:
    a, b = await split(cluster)

    await a.leases.stop()

    assert a.owned == frozenset()
    assert sorted(a.lost) == sorted(LOW)
    for p in LOW:  # released, not left to expire
        record = await lease_of(cluster, p)
        assert record is None or record.worker != "a"
    took = await until(lambda: b.owned == ALL, 2 * HEARTBEAT + SLACK, cluster)
    assert took <= 2 * HEARTBEAT + SLACK
    assert Counter(b.acquired) == Counter(ALL)  # each partition acquired once
    assert b.lost == []
    assert cluster.overlaps == []


@pytest.mark.parametrize("death", ["kill", "disconnect"])
async def test_a_dead_workers_partitions_are_taken_over_without_overlap(
    cluster: Cluster, nats_url: str, death: str
) -> None:
    own = await nats.connect(nats_url, connect_timeout=5, allow_reconnect=False)
    try:
        a = cluster.add("a", LOW, js=own.jetstream())
        b = cluster.add("b", HIGH)
        await asyncio.gather(a.leases.start(), b.leases.start())
        await until(lambda: a.owned == LOW and b.owned == HIGH, 2 * HEARTBEAT + SLACK, cluster)

        if death == "kill":
            a.leases.kill()
        else:
            await own.close()  # cut off from NATS: it can no longer renew
        took = await until(lambda: b.owned == ALL, TTL + 2 * HEARTBEAT + SLACK, cluster)
        await cluster.watch(2 * HEARTBEAT)
    finally:
        await own.close()

    assert took <= TTL + 2 * HEARTBEAT + SLACK
    assert cluster.overlaps == []
    assert a.owned == frozenset()
    if death == "disconnect":  # it noticed by itself, before its deadline
        assert sorted(a.lost) == sorted(LOW)
    assert Counter(b.acquired) == Counter(ALL)


async def test_a_stolen_lease_is_lost_and_left_alone_until_it_expires(cluster: Cluster) -> None:
    a = cluster.add("a", ALL)
    await a.leases.start()
    await until(lambda: a.owned == ALL, 2 * HEARTBEAT + SLACK)
    kv = await cluster.js.key_value(cluster.bucket)
    stolen_for = 4 * TTL
    deadline = now_ms() + int(stolen_for * 1000)

    await kv.put(lease_key(3), msgspec.json.encode(LeaseRecord("thief", deadline, 10**9)))

    await until(lambda: 3 not in a.owned, HEARTBEAT + SLACK)
    await until(lambda: a.lost == [3], SLACK)
    while now_ms() < deadline - 100:  # not claimed back while the thief's lease lives
        assert 3 not in a.owned
        assert a.acquired.count(3) == 1
        await asyncio.sleep(0.01)
    record = await lease_of(cluster, 3)
    assert record == LeaseRecord("thief", deadline, 10**9)
    # once it has expired, the worker takes its preferred partition back
    await until(lambda: a.owned == ALL, 0.1 + 2 * HEARTBEAT + SLACK)
    assert a.acquired.count(3) == 2
    record = await lease_of(cluster, 3)
    assert record is not None
    assert record.worker == "a"
    assert record.epoch > 1  # a new claim: a new, larger epoch
    assert a.lost == [3]


async def test_a_late_joiner_without_preference_takes_nothing_while_others_live(
    cluster: Cluster,
) -> None:
    a, b = await split(cluster)
    c = cluster.add("c", ())
    await c.leases.start()

    await cluster.watch(TTL + 3 * HEARTBEAT)

    assert c.owned == frozenset()
    assert c.acquired == []
    assert a.owned == LOW
    assert b.owned == HIGH
    # when a worker leaves, its partitions go to the others, one owner each
    await a.leases.stop()
    await until(lambda: b.owned | c.owned == ALL, 2 * HEARTBEAT + SLACK, cluster)
    assert not b.owned & c.owned
    assert cluster.overlaps == []


async def test_a_returning_worker_gets_its_preferred_partitions_back(cluster: Cluster) -> None:
    a, b = await split(cluster)
    await b.leases.stop()
    await until(lambda: a.owned == ALL, 2 * HEARTBEAT + SLACK, cluster)

    b2 = cluster.add("b2", HIGH)
    await b2.leases.start()

    await until(lambda: a.owned == LOW and b2.owned == HIGH, 4 * HEARTBEAT + SLACK, cluster)
    assert sorted(a.lost) == sorted(HIGH)  # a stopped serving them before b2 started
    acquired = (len(a.acquired), len(b2.acquired))
    await cluster.watch(TTL + 3 * HEARTBEAT)  # stable: nothing moves any more
    assert (len(a.acquired), len(b2.acquired)) == acquired
    assert a.owned == LOW
    assert b2.owned == HIGH
    assert cluster.overlaps == []


async def test_a_restart_finds_the_bucket_and_its_stale_keys(cluster: Cluster) -> None:
    a = cluster.add("a", ALL)
    await a.leases.start()
    await until(lambda: a.owned == ALL, 2 * HEARTBEAT + SLACK)
    first = a.epochs()
    await a.leases.stop()
    assert a.owned == frozenset()

    await a.leases.start()  # the same worker again: bucket exists, keys deleted
    await until(lambda: a.owned == ALL, 2 * HEARTBEAT + SLACK)
    second = a.epochs()
    a.leases.kill()  # dies: its leases stay behind, unexpired for a while

    again = cluster.add("a", ALL)  # a new process with the same id
    await again.leases.start()
    took = await until(lambda: again.owned == ALL, TTL + 2 * HEARTBEAT + SLACK)

    assert took <= TTL + 2 * HEARTBEAT + SLACK
    third = again.epochs()
    assert first.keys() == second.keys() == third.keys() == ALL
    for p in ALL:
        assert first[p] < second[p] < third[p]  # every new claim has a larger epoch
    assert Counter(a.acquired) == Counter(ALL) + Counter(ALL)
    assert Counter(a.lost) == Counter(ALL)  # from the clean stop; the kill calls nothing


async def test_on_acquired_runs_before_owned_while_the_lease_is_renewed(cluster: Cluster) -> None:
    rebuilt = asyncio.Event()
    seen: list[frozenset[int]] = []

    async def slow_rebuild(p: int) -> None:
        seen.append(a.leases.owned)
        await asyncio.sleep(2 * TTL)  # longer than a lease lives unrenewed
        rebuilt.set()

    a = cluster.add("a", {0}, acquire=slow_rebuild)
    b = cluster.add("b", ALL - {0})
    await asyncio.gather(a.leases.start(), b.leases.start())

    await until(rebuilt.is_set, 2 * TTL + 2 * HEARTBEAT + SLACK, cluster)
    await until(lambda: a.owned == {0}, SLACK, cluster)

    assert seen == [frozenset()]  # not owned while it was being rebuilt
    assert 0 not in b.acquired  # renewed meanwhile: never free for b
    assert a.lost == []
    assert cluster.overlaps == []


async def test_a_failing_on_acquired_releases_the_lease(cluster: Cluster) -> None:
    failures = 0

    async def fail_once(p: int) -> None:
        nonlocal failures
        if failures == 0:
            failures += 1
            raise RuntimeError("rebuild failed")

    a = cluster.add("a", {0}, acquire=fail_once)
    await a.leases.start()

    await until(lambda: a.lost == [0], 2 * HEARTBEAT + SLACK)
    assert 0 not in a.owned
    await until(lambda: a.owned == ALL, 3 * TTL + 3 * HEARTBEAT + SLACK)  # tried again later
    assert a.acquired.count(0) == 2


def idle_worker(js: JetStreamContext, bucket: str, *, replicas: int = 1) -> PartitionLeases:
    """Leases of a worker that does nothing with the partitions it gets."""

    async def nothing(p: int) -> None:
        return None

    return PartitionLeases(
        js,
        worker_id="a",
        partitions=PARTITIONS,
        preferred=LOW,
        bucket=bucket,
        clock=SystemClock(),
        on_acquired=nothing,
        on_lost=nothing,
        replicas=replicas,
    )


async def test_start_without_nats_is_adapter_unavailable(nats_url: str, bucket: str) -> None:
    client = await nats.connect(nats_url, connect_timeout=5, allow_reconnect=False)
    await client.close()

    leases = idle_worker(client.jetstream(), bucket)
    with pytest.raises(AdapterUnavailable):
        await leases.start()


async def test_replicated_leases_are_refused_on_a_server_before_2_9_21(
    nats_client: Client, bucket: str
) -> None:
    """Its clustered compare-and-set is not serialized (nats-server #4320): two workers
    could both win a partition. Refused before anything is created."""
    version = server_version(nats_client.jetstream())
    assert version is not None
    assert version < SERIALIZED_WRITES_SINCE, "design.md: the test server is a 2.9 before .21"

    leases = idle_worker(nats_client.jetstream(), bucket, replicas=3)
    with pytest.raises(UnsafeNatsServer, match=r"3 replicas.*#4320.*2\.9\.21"):
        await leases.start()
    with pytest.raises(NotFoundError):
        await nats_client.jetstream().stream_info(f"KV_{bucket}")


def test_settings_that_leave_no_time_to_renew_are_refused() -> None:
    async def nothing(p: int) -> None:
        return None

    with pytest.raises(ValueError, match="renew"):
        PartitionLeases(
            None,  # type: ignore[arg-type]
            worker_id="a",
            partitions=PARTITIONS,
            preferred=(),
            ttl=timedelta(seconds=1),
            heartbeat=timedelta(seconds=1),
            clock=SystemClock(),
            on_acquired=nothing,
            on_lost=nothing,
        )
