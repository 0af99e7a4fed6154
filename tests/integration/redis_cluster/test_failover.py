"""A master of the cluster killed (SIGKILL) in the middle of a sale; its replica promoted.
And the node a live feed listens on killed.

Redis replicates asynchronously: a master answers a write before its replica has it.
What the lock store guarantees through a failover, shown here on a cluster of the test's
own (node timeout 1 s) under a platform that keeps orders, payments and tickets in
PostgreSQL:

- what was replicated before the kill is on the promoted replica: holds and sold marks
  of every master, the failed one's included;
- the failed master's sessions are served again within seconds, the other masters'
  sessions all along;
- no seat is sold twice, and every captured payment ends as the order's tickets or one
  refund.

What it does not guarantee: a hold acknowledged in the last moment before the kill,
not yet replicated, is gone from the promoted replica. The second test makes that happen
on purpose and shows what its buyer then sees (docs/decisions.md, "Redis Cluster").
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar
from uuid import UUID, uuid4

import psycopg
import pytest
import redis
from psycopg import sql

from openticket.adapters.memory import MemoryPasswordHasher
from openticket.adapters.postgres import migrate
from openticket.adapters.redis.connection import RedisConnection
from openticket.adapters.redis.notifier import RedisNotifier
from openticket.adapters.system import SystemClock
from openticket.application.facade import OpenTicket
from openticket.application.ports.errors import AdapterUnavailable
from openticket.application.ports.messaging import SeatStatusChanged
from openticket.domain.ordering import Order, OrderStatus
from openticket.domain.seating import SeatStatus, SeatsUnavailable
from openticket.domain.shared import AreaId, DomainError, SessionId
from openticket.entrypoints.bootstrap import build_container
from openticket.entrypoints.container import Container
from openticket.entrypoints.settings import Settings
from openticket.testing.contracts._builders import T0, seat
from openticket.testing.world import World, build_world, grid_seat_map

from .conftest import MASTERS, LocalCluster, StartCluster

pytestmark = [pytest.mark.redis_cluster, pytest.mark.postgres]

T = TypeVar("T")

HOLD_TTL = 20.0
"""Seconds a hold lives (as in the production profile of issue 14): longer than the test."""
BACK_WITHIN = 15.0
"""Seconds the failed master's sessions may stay unserved after the kill (a bound, not a
target: with a node timeout of 1 s the promotion takes about two)."""
SEATS = {"A": (40, 25)}


# --- the platform on a cluster of the test's own ---------------------------------------------


@dataclass
class Deployment:
    cluster: LocalCluster
    container: Container
    database_url: str
    schema: str
    prefix: str

    @property
    def app(self) -> OpenTicket:
        app: OpenTicket = self.container.app()
        return app

    def token_key(self, session: SessionId) -> str:
        return f"{self.prefix}seat:token:{{{session}}}"


@pytest.fixture
def cluster(start_cluster: StartCluster) -> Iterator[LocalCluster]:
    """A cluster of the test's own: the test kills one of its masters."""
    with start_cluster() as cluster:
        yield cluster


@pytest.fixture
async def deployment(
    cluster: LocalCluster, database_url: str, schema_name: str, key_prefix: str
) -> AsyncIterator[Deployment]:
    await migrate(database_url, schema=schema_name)
    settings = Settings.from_env(
        {
            "OPENTICKET_DATABASE_URL": database_url,
            "OPENTICKET_DATABASE_SCHEMA": schema_name,
            "OPENTICKET_REDIS_URL": cluster.url,
            "OPENTICKET_REDIS_CLUSTER": "true",
            "OPENTICKET_REDIS_PREFIX": key_prefix,
            "OPENTICKET_PARTITIONS": "4",
            "OPENTICKET_HOLD_TTL_SECONDS": str(HOLD_TTL),
            # each of the sale's buyers orders again and again at a machine's pace
            "OPENTICKET_BOT_DEFENCE": "false",
        }
    )
    container = build_container(
        settings, clock=SystemClock(), password_hasher=MemoryPasswordHasher()
    )
    app: OpenTicket = container.app()
    await app.start()
    try:
        yield Deployment(cluster, container, database_url, schema_name, key_prefix)
    finally:
        await app.stop()


MAX_SEATS_PER_USER = 1000
"""Each of the sale's buyers buys seat after seat: their cap must not end the sale."""


async def worlds_by_master(deployment: Deployment) -> dict[int, World]:
    """Sessions on sale until every master holds the seat locks of one; by master port.

    Each in a partition of its own: a partition actor writes its sessions' holds in one
    batch, which fails as a whole when one of them is on a master that is down.
    """
    router = deployment.container.router()
    found: dict[int, World] = {}
    partitions: set[int] = set()
    for _ in range(60):
        world = await build_world(
            deployment.app,
            SystemClock(),
            seat_map=grid_seat_map(SEATS),
            prices={"A": "100"},
            max_seats_per_user=MAX_SEATS_PER_USER,  # the sale's few buyers buy on and on
        )
        master = deployment.cluster.master_of(deployment.token_key(world.session_id))
        partition = router.partition_of(world.session_id, AreaId("A"))
        if master not in found and partition not in partitions:
            found[master] = world
            partitions.add(partition)
        if len(found) == MASTERS:
            return found
    raise AssertionError("60 sessions never covered every master in partitions of their own")


def until_replicated(cluster: LocalCluster, master: int, within: float = 10.0) -> None:
    """Wait until the master's replica has acknowledged everything the master has."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        offset = int(cluster.info(master, "replication")["master_repl_offset"])
        acked = cluster.replicas(master).values()
        if acked and min(acked) >= offset:
            return
        time.sleep(0.05)
    raise AssertionError(f"the replica of {master} never caught up within {within} s")


# --- what the buyers did ---------------------------------------------------------------------


@dataclass
class Attempt:
    session: SessionId
    started: float
    ended: float
    outcome: str
    order: Order | None = None


@dataclass
class Sale:
    """Buyers trying to buy one or two random seats at a time, and what each try ended as."""

    app: OpenTicket
    worlds: list[World]
    attempts: list[Attempt] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def buyer(self, world: World, n: int, rng: random.Random) -> None:
        seats = [str(s) for s in world.seat_map.seat_ids()]
        while not self.stop.is_set():
            started = time.monotonic()
            order: Order | None = None
            try:
                order = await self.app.place_order(
                    world.buyer(n), world.session_id, rng.sample(seats, rng.randint(1, 2))
                )
                await self.app.pay(world.buyer(n), order.order_id)
                outcome = "paid"
            except SeatsUnavailable:
                outcome = "seats taken"
            except AdapterUnavailable:
                outcome = "redis unavailable" if order is None else "paid while unavailable"
            except DomainError as e:
                outcome = e.code
            self.attempts.append(
                Attempt(world.session_id, started, time.monotonic(), outcome, order)
            )
            # a buyer told 503 tries again a moment later
            await asyncio.sleep(0.05 if "unavailable" in outcome else 0)

    def run(self, buyers_per_session: int) -> asyncio.Task[list[None]]:
        rng = random.Random(14)
        return asyncio.ensure_future(
            asyncio.gather(
                *(
                    self.buyer(world, 100 * i + n, random.Random(rng.random()))
                    for i, world in enumerate(self.worlds)
                    for n in range(buyers_per_session)
                )
            )
        )

    def first(self, outcome: str, session: SessionId, after: float) -> float | None:
        """When the first try of ``session`` started after ``after`` ended as ``outcome``."""
        return min(
            (
                a.started
                for a in self.attempts
                if a.session == session and a.started > after and a.outcome == outcome
            ),
            default=None,
        )

    def outcomes(self, session: SessionId, after: float = 0.0) -> Counter[str]:
        return Counter(
            a.outcome for a in self.attempts if a.session == session and a.started >= after
        )


# --- what PostgreSQL says in the end ---------------------------------------------------------


async def ledger_problems(deployment: Deployment) -> list[str]:
    """Broken promises in the database: seats sold twice, money neither ticketed nor refunded."""
    async with await psycopg.AsyncConnection.connect(deployment.database_url) as conn:
        await conn.execute(
            sql.SQL("SET search_path TO {}").format(sql.Identifier(deployment.schema))
        )
        checks = {
            "a seat with two live tickets": """
                SELECT session_id, seat_id FROM tickets
                GROUP BY session_id, seat_id HAVING count(*) > 1""",
            "a captured payment whose order is not completed": """
                SELECT p.payment_id FROM payments p JOIN orders o USING (order_id)
                WHERE p.status = 'succeeded'
                  AND (o.status <> 'completed' OR o.payment_id <> p.payment_id)""",
            "a completed order without a ticket per seat": """
                SELECT o.order_id FROM orders o
                WHERE o.status = 'completed'
                  AND (SELECT count(*) FROM order_items i WHERE i.order_id = o.order_id)
                   <> (SELECT count(*) FROM tickets t WHERE t.order_id = o.order_id)""",
            "a live ticket of an order that is not completed": """
                SELECT t.ticket_id FROM tickets t JOIN orders o USING (order_id)
                WHERE o.status <> 'completed'""",
        }
        problems = []
        for what, query in checks.items():
            rows = await (await conn.execute(sql.SQL(query))).fetchall()
            problems += [f"{what}: {row}" for row in rows]
        return problems


async def refunded_orders(deployment: Deployment) -> dict[UUID, str]:
    """Orders whose money was given back, and the order's status."""
    async with await psycopg.AsyncConnection.connect(deployment.database_url) as conn:
        await conn.execute(
            sql.SQL("SET search_path TO {}").format(sql.Identifier(deployment.schema))
        )
        rows = await (
            await conn.execute(
                "SELECT o.order_id, o.status FROM payments p JOIN orders o USING (order_id)"
                " WHERE p.status = 'refunded'"
            )
        ).fetchall()
        return {row[0]: row[1] for row in rows}


async def answered(call: Callable[[], Awaitable[T]], within: float = BACK_WITHIN) -> T:
    """What ``call()`` answers once the store serves again (a caller retries a 503)."""
    deadline = time.monotonic() + within
    while True:
        try:
            return await call()
        except AdapterUnavailable:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


async def settle(deployment: Deployment, within: float = 30.0) -> list[str]:
    """The ledger's problems once the saga has caught up (its steps that failed while a
    master was down are retried), or those left after ``within`` seconds."""
    app = deployment.app
    deadline = time.monotonic() + within
    while True:
        await app.seating.flush_events()
        problems = await ledger_problems(deployment)
        if (not problems and not app.bus.retries) or time.monotonic() > deadline:
            return problems
        await asyncio.sleep(0.2)


def cut_off(cluster: LocalCluster, master: int, replica: int) -> None:
    """Close the replica's link to its master and pause the replica before it reconnects.

    It reconnects at its next replication tick (once a second): if that came first, the
    master still lists it, and the cut is made again.
    """
    for _ in range(10):
        node = redis.Redis(port=replica)
        try:
            node.execute_command("CLIENT KILL TYPE master")
        finally:
            node.close()
        cluster.pause(replica)
        deadline = time.monotonic() + 1
        while cluster.replicas(master) and time.monotonic() < deadline:
            time.sleep(0.02)
        if not cluster.replicas(master):
            return
        cluster.resume(replica)
        time.sleep(0.2)
    raise AssertionError(f"the replica {replica} could not be cut off from {master}")


# --- the tests ---------------------------------------------------------------------------------


async def test_a_master_killed_mid_sale_loses_nothing_replicated_and_sells_no_seat_twice(
    deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    app, cluster = deployment.app, deployment.cluster
    worlds = await worlds_by_master(deployment)
    store = deployment.container.lock_store()

    # before the sale: every session has holds (unpaid) and sales, all replicated
    before: dict[SessionId, list[Order]] = {}
    for world in worlds.values():
        before[world.session_id] = [
            await app.place_order(world.buyer(90_000 + n), world.session_id, [f"A-40-{n + 1}"])
            for n in range(5)
        ]
        for n, order in enumerate(before[world.session_id][3:], start=3):
            await app.pay(world.buyer(90_000 + n), order.order_id)
    for master in worlds:
        until_replicated(cluster, master)

    victim = next(iter(worlds))
    doomed = worlds[victim].session_id
    survivors = [w.session_id for m, w in worlds.items() if m != victim]

    sale = Sale(app, list(worlds.values()))
    buyers = sale.run(buyers_per_session=6)
    try:
        await asyncio.sleep(1.5)
        killed = time.monotonic()
        cluster.kill(victim)
        # the sale goes on until the failed master's session sells again, and a second more
        back: float | None = None
        while back is None and time.monotonic() - killed < BACK_WITHIN and not buyers.done():
            await asyncio.sleep(0.05)
            back = sale.first("paid", doomed, after=killed)
        await asyncio.sleep(1.0)
    finally:
        sale.stop.set()
        await asyncio.wait_for(buyers, 30)
    assert back is not None, f"the failed master's session sold nothing in {BACK_WITHIN} s"

    # the promoted replica and the two other masters say ok; the saga catches up
    cluster.wait_ok(time.monotonic() + 30)
    problems = await settle(deployment)

    # what was replicated before the kill is still there, the failed master's too
    for world in worlds.values():
        snapshot = await answered(lambda w=world: store.load(w.session_id, AreaId("A")))
        held, paid = before[world.session_id][:3], before[world.session_id][3:]
        assert {o.hold_id for o in held} <= {h.hold_id for h in snapshot.holds}
        assert {o.seat_ids[0] for o in paid} <= set(snapshot.sold)

    # no seat sold twice, every captured payment ended in its tickets or a refund
    assert problems == []
    assert not app.bus.dead_letters, app.bus.dead_letters

    # the other masters' sessions sold on all along (cluster-require-full-coverage no)
    for session in survivors:
        during = sale.outcomes(session, after=killed)
        assert during["paid"] > 0, during
        assert during["redis unavailable"] == 0, during

    refunds = await refunded_orders(deployment)
    others = sum((sale.outcomes(s, after=killed) for s in survivors), Counter[str]())
    with capsys.disabled():
        print(
            f"\nmaster killed mid-sale: its session sold again {back - killed:.2f} s after the"
            f" kill; its buyers saw {dict(sale.outcomes(doomed, after=killed))}, the other"
            f" masters' {dict(others)}; refunds: {len(refunds)}"
        )


async def test_a_hold_not_yet_replicated_vanishes_with_its_master_and_is_restored_when_paid(
    deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    """The window asynchronous replication leaves, held open on purpose.

    The replica's link to its master is cut just before a buyer holds a seat: the hold
    is acknowledged, then the master is killed before the replica had it. The promoted
    replica knows nothing of it, and its session's token counter is one grant behind.
    The partition actor granted the hold and still has it: it keeps the seat from
    others, takes the next tokens above the lost one (``after_token``), and when the
    buyer pays it restores the hold in the store and sells it (``RestoreHold``).
    """
    app, cluster = deployment.app, deployment.cluster
    worlds = await worlds_by_master(deployment)
    victim, world = next(iter(worlds.items()))
    (replica,) = cluster.replicas(victim)
    store = deployment.container.lock_store()
    kept = await app.place_order(world.buyer(1), world.session_id, ["A-1-1"])
    until_replicated(cluster, victim)

    # cut the replica's link to its master and keep it from reconnecting: what the
    # master writes now waits in its backlog, which dies with it
    cut_off(cluster, victim, replica)
    try:
        lost = await app.place_order(world.buyer(2), world.session_id, ["A-1-2"])
        cluster.kill(victim)
    finally:
        cluster.resume(replica)
    cluster.wait_ok(time.monotonic() + 30)

    snapshot = await answered(lambda: store.load(world.session_id, AreaId("A")))
    holds = {h.hold_id for h in snapshot.holds}
    assert kept.hold_id in holds  # replicated before the kill: still there
    assert lost.hold_id not in holds  # acknowledged, never replicated: gone
    assert snapshot.last_fencing_token == kept.fencing_token < lost.fencing_token

    # the partition actor decided the hold and still has it: nobody else gets the seat
    with pytest.raises(SeatsUnavailable):
        await app.place_order(world.buyer(3), world.session_id, ["A-1-2"])

    # the counter forgot the lost grant; the actor's next hold still gets a larger token
    granted = await answered(lambda: app.place_order(world.buyer(4), world.session_id, ["A-2-1"]))
    assert granted.fencing_token > lost.fencing_token

    # the buyer of the lost hold pays: the actor restores the hold, the sale goes through
    await app.pay(world.buyer(2), lost.order_id)
    await app.pay(world.buyer(1), kept.order_id)
    for order in (lost, kept):
        assert (await app.get_order(world.admin, order.order_id)).status is OrderStatus.COMPLETED
    assert await refunded_orders(deployment) == {}
    assert await settle(deployment) == []
    with pytest.raises(SeatsUnavailable):  # sold
        await app.place_order(world.buyer(7), world.session_id, ["A-1-2"])
    with capsys.disabled():
        print(
            "\nlost hold: the buyer of a hold the failed master never replicated paid and got"
            " the seat (restored by the partition actor); the next hold's token stayed above"
            " the lost one"
        )


async def test_a_live_feed_outlives_the_death_of_the_node_it_listened_on(
    cluster: LocalCluster, key_prefix: str
) -> None:
    """The notifier subscribes on one node; that node dies; it listens on another."""
    watching_connection = RedisConnection(cluster.url, cluster=True)
    publishing_connection = RedisConnection(cluster.url, cluster=True)
    await watching_connection.start()
    await publishing_connection.start()
    watching = RedisNotifier(watching_connection.client, prefix=key_prefix)
    publishing = RedisNotifier(publishing_connection.client, prefix=key_prefix)
    session = SessionId(uuid4())
    channel = watching.seat_channel(session)

    def listening() -> list[int]:
        """The live nodes where someone subscribes to the channel (PUBSUB is per node)."""
        found = []
        for port in cluster.live_ports:
            node = redis.Redis(port=port, socket_timeout=2)
            try:
                [(_, count)] = node.pubsub_numsub(channel)
                if count:
                    found.append(port)
            except redis.RedisError:
                pass
            finally:
                node.close()
        return found

    changes = [
        SeatStatusChanged(session_id=session, seat_id=seat("A", 1, n), status=status, at=T0)
        for n, status in enumerate((SeatStatus.HELD, SeatStatus.SOLD, SeatStatus.AVAILABLE), 1)
    ]
    try:
        async with watching.watch_seats(session) as feed:
            (heard_on,) = listening()
            cluster.kill(heard_on)
            deadline = time.monotonic() + BACK_WITHIN
            while not listening():
                assert time.monotonic() < deadline, "the feed never listened again"
                await asyncio.sleep(0.1)
            cluster.wait_ok(time.monotonic() + 30)
            await answered(lambda: publishing.publish(changes))
            got = [await asyncio.wait_for(anext(feed), 5) for _ in changes]
            assert got == changes
    finally:
        await watching.stop()
        await publishing.stop()
        await watching_connection.stop()
        await publishing_connection.stop()
