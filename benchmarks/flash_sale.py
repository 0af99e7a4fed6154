"""Flash-sale benchmark: many buyers race for seats through the partition actors.

    python benchmarks/flash_sale.py --profile memory --seats 20000 --buyers 100000 --concurrency 100
    python benchmarks/flash_sale.py --profile postgres --database-url postgresql://...
    python benchmarks/flash_sale.py --profile pg-naive --database-url postgresql://...

Phase 1 (holds): every buyer asks to hold 1-2 random seats of one random area, with
``--concurrency`` requests in flight; each answer (granted or refused) is one hold
decision. Phase 2 (purchases): ``--purchases`` buyers place an order, pay with the
mock provider and get tickets. Double sales are counted independently: from the
granted holds (no seat granted twice while held) and from the tickets (no seat with
two live tickets). The last line printed is one JSON object.

Profile ``postgres`` is the platform with memory seat locks and PostgreSQL persistence
(orders, payments, tickets, outbox), in a schema of its own (``bench_pg_<hex>``) that it
drops when done. Profile ``pg-naive`` is the baseline: no partition actors, but the way
a typical ticket shop locks seats. One ``seats`` row per seat in PostgreSQL; a hold request is one
transaction of one guarded ``UPDATE ... WHERE status = 'free'`` per seat, rolled back
unless every seat was won. Same requests, same rng, same JSON keys; it works in a schema
of its own (``bench_naive_<hex>``, named on stderr) that it drops when done.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import gc
import json
import os
import random
import statistics
import subprocess
import sys
import threading
import time
import tracemalloc
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any, LiteralString

import nats
import nats.js.errors
import psycopg
import redis.asyncio as aioredis
from psycopg import sql
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool

from openticket import bootstrap
from openticket.adapters.memory import MemoryLockStore
from openticket.adapters.nats.streams import stream_name
from openticket.adapters.postgres import migrate
from openticket.adapters.system import RandomIdGenerator, SystemClock
from openticket.application.facade import OpenTicket
from openticket.application.seating.api import seat_statuses
from openticket.application.seating.commands import HoldSeats
from openticket.domain.seating import SeatInventory, SeatsUnavailable
from openticket.domain.shared import AreaId, HoldId, OrderId, SeatId, SessionId, UserId
from openticket.entrypoints.bootstrap import build_container
from openticket.entrypoints.settings import Settings
from openticket.testing.world import World, build_world, grid_seat_map

SEATS_PER_ROW = 50
PROFILES = ("memory", "redis", "nats", "postgres", "pg-naive")
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
Areas = list[tuple[AreaId, list[SeatId]]]


def seat_plan(seats: int, areas: int) -> dict[str, tuple[int, int]]:
    """``areas`` areas of equal size adding up to about ``seats`` seats."""
    per_area = max(seats // areas, 1)
    rows = max(per_area // SEATS_PER_ROW, 1)
    return {f"S{n}": (rows, min(per_area, SEATS_PER_ROW)) for n in range(areas)}


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """The ``p``-th percentile (0-100) of already sorted values."""
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, round(p / 100 * (len(sorted_values) - 1))))
    return sorted_values[index]


async def run_bounded(jobs: int, concurrency: int, job: Callable[[int], Awaitable[None]]) -> float:
    """Run ``job(0..jobs-1)`` with ``concurrency`` in flight; return the seconds taken."""
    counter = iter(range(jobs))

    async def worker() -> None:
        for n in counter:
            await job(n)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started


def platform_settings(profile: str, partitions: int, storage: Mapping[str, Any]) -> Settings:
    """The settings of a profile: memory everything, or PostgreSQL behind memory locks."""
    if profile not in PROFILES:
        raise SystemExit(f"unknown profile {profile!r}; known: {', '.join(PROFILES)}")
    return Settings(partitions=partitions, hold_ttl_seconds=600, **storage)


async def new_world(
    profile: str, seats: int, areas: int, partitions: int, storage: Mapping[str, str]
) -> World:
    """A running platform with one session of ``seats`` seats on sale."""
    clock = SystemClock()
    app = bootstrap(platform_settings(profile, partitions, storage), clock=clock)
    plan = seat_plan(seats, areas)
    world = await build_world(
        app,
        clock,
        seat_map=grid_seat_map(plan),
        prices=dict.fromkeys(plan, "1000.00"),
        max_seats_per_order=2,
    )
    await app.start(sweeper=False)
    return world


def area_seats(world: World) -> list[tuple[AreaId, list[SeatId]]]:
    """Every area with its seat ids."""
    return [(area.area_id, list(area.seat_ids())) for area in world.seat_map.areas]


async def hold_phase(
    world: World, buyers: int, concurrency: int, rng: random.Random
) -> dict[str, Any]:
    """Phase 1: hold decisions straight at the seating service."""
    app = world.app
    areas = area_seats(world)
    session = world.session_id
    if app.seating.actors:
        ids = app.seating.actors[0]._new_id  # the same id source the app uses
        for area_id, _ in areas:  # rebuild every inventory before the clock starts
            key = app.seating.router.key(session, area_id)
            await app.seating.actors[key.partition].ensure_loaded(key)
    else:  # the actors are in a worker process: have it rebuild them now
        ids = RandomIdGenerator().new_id
        await seat_statuses(app.seating, session, [area_id for area_id, _ in areas])
    # Requests are drawn before the clock starts (one or two neighbouring seats of a
    # random area, as buyers pick them, with the ids the API would give them): the
    # figures are the seat-hold path's, not the random generator's.
    holders = [world.buyer(n).user_id for n in range(1000)]
    requests = []
    for n in range(buyers):
        area_id, seats = areas[rng.randrange(len(areas))]
        first = rng.randrange(len(seats) - 1)
        wanted = tuple(seats[first : first + 1 + (n & 1)])
        requests.append(
            HoldSeats(
                session_id=session,
                area_id=area_id,
                hold_id=HoldId(ids()),
                holder_id=holders[n % 1000],
                order_id=OrderId(ids()),
                seat_ids=wanted,
                max_seats=2,
            )
        )
    latencies: list[float] = [0.0] * buyers
    granted: list[tuple[SeatId, ...]] = []
    ask, clock = app.seating.ask, time.perf_counter

    async def one(n: int) -> None:
        started = clock()
        try:
            held = await ask(requests[n])
            granted.append(held.seat_ids)
        except SeatsUnavailable:
            pass
        latencies[n] = clock() - started

    sent_before = getattr(app.seating, "messages", 0)  # over NATS: requests sent
    gc.collect()
    gc.freeze()  # the pre-drawn requests are the benchmark's, not the server's, memory
    try:
        elapsed = await run_bounded(buyers, concurrency, one)
    finally:
        gc.unfreeze()
    await app.seating.flush_events()
    seat_grants = Counter(seat for seats in granted for seat in seats)
    latencies.sort()
    batches = sum(a.batches for a in app.seating.actors.values())
    messages = getattr(app.seating, "messages", 0) - sent_before
    return {
        "holds_per_s": round(buyers / elapsed, 1),
        "hold_p50_ms": round(percentile(latencies, 50) * 1000, 3),
        "hold_p99_ms": round(percentile(latencies, 99) * 1000, 3),
        "hold_mean_ms": round(statistics.fmean(latencies) * 1000, 3),
        "holds_granted": len(granted),
        "seats_held": len(seat_grants),
        "hold_double_grants": sum(c - 1 for c in seat_grants.values() if c > 1),
        "decisions_per_batch": round(buyers / batches, 1) if batches else 0.0,
        "commands_per_message": round(buyers / messages, 1) if messages else 0.0,
    }


async def purchase_phase(
    world: World, purchases: int, concurrency: int, rng: random.Random
) -> dict[str, Any]:
    """Phase 2: order, pay (mock), tickets — the whole saga per buyer."""
    app = world.app
    areas = area_seats(world)
    completed = 0

    async def one(n: int) -> None:
        nonlocal completed
        _, seats = rng.choice(areas)
        wanted = rng.sample(seats, rng.choice((1, 2)))
        buyer = world.buyer(n)
        try:
            order = await app.place_order(buyer, world.session_id, wanted)
        except SeatsUnavailable:
            return
        await app.pay(buyer, order.order_id)
        completed += 1

    elapsed = await run_bounded(purchases, concurrency, one)
    return {"purchases_per_s": round(completed / elapsed, 1), "purchases": completed}


def bare_dict_rate(world: World, buyers: int, rng: random.Random) -> float:
    """Hold decisions per second of a plain dict loop: same requests, no actors, no events."""
    return bare_dict_rate_of(area_seats(world), buyers, rng)


def bare_dict_rate_of(areas: Areas, buyers: int, rng: random.Random) -> float:
    """:func:`bare_dict_rate` over the areas themselves (no world needed)."""
    requests = []
    for n in range(buyers):
        _, seats = areas[rng.randrange(len(areas))]
        first = rng.randrange(len(seats) - 1)
        requests.append(seats[first : first + 1 + (n & 1)])
    held: dict[SeatId, int] = {}
    started = time.perf_counter()
    for n, wanted in enumerate(requests):
        if not any(seat in held for seat in wanted):
            for seat in wanted:
                held[seat] = n
    return buyers / (time.perf_counter() - started)


async def count_tickets(app_container: Any, session_id: SessionId) -> tuple[int, int]:
    """Seats sold and double sales, counted from the stored tickets themselves."""
    if app_container.config.persistence() == "postgres":
        async with app_container.postgres_database().unit_of_work() as uow:
            rows = await uow.fetch_all(
                "SELECT seat_id, count(*) FROM tickets WHERE session_id = %s GROUP BY seat_id",
                (session_id,),
            )
        return len(rows), sum(count - 1 for _, count in rows if count > 1)
    database = app_container.memory_database()
    live = Counter(
        ticket.seat_id
        for ticket in database.tickets.rows.values()
        if ticket.session_id == session_id and ticket.is_live
    )
    return len(live), sum(c - 1 for c in live.values() if c > 1)


def bytes_per_seat(seats: int) -> float:
    """Memory of one partition's hot state (inventory + lock store) per seat, half held."""
    from openticket.adapters.memory import FakeClock, SequentialIdGenerator  # noqa: PLC0415

    clock, ids = FakeClock(), SequentialIdGenerator(1)
    seat_ids = [SeatId(f"A-{r}-{n}") for r in range(1, seats // 50 + 2) for n in range(1, 51)][
        :seats
    ]
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    store = MemoryLockStore(clock)
    inventory = SeatInventory(
        session_id=SessionId(ids.new_id()),
        area_id=AreaId("A"),
        seat_ids=frozenset(seat_ids),
        hold_ttl=timedelta(minutes=2),
    )
    for token, seat in enumerate(seat_ids[::2], start=1):
        inventory.hold(
            hold_id=HoldId(ids.new_id()),
            holder_id=UserId(ids.new_id()),
            order_id=OrderId(ids.new_id()),
            seat_ids=[seat],
            fencing_token=token,
            now=clock.now(),
            ids=ids.new_id,
        )
    inventory.collect_events()
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    del store, inventory
    return round(used / seats, 1)


# --- profile pg-naive: the baseline, seats locked by guarded UPDATEs in PostgreSQL ---

NAIVE_TABLES = (
    """CREATE TABLE seats (
        session_id uuid NOT NULL,
        seat_id text NOT NULL,
        status text NOT NULL DEFAULT 'free' CHECK (status IN ('free', 'held', 'sold')),
        hold_id uuid,
        held_until timestamptz,
        PRIMARY KEY (session_id, seat_id)
    )""",
    """CREATE TABLE tickets (
        ticket_id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        session_id uuid NOT NULL,
        seat_id text NOT NULL,
        hold_id uuid NOT NULL,
        holder_id uuid NOT NULL,
        issued_at timestamptz NOT NULL DEFAULT now(),
        UNIQUE (session_id, seat_id)
    )""",
    # What the clients were told (phase 1), for counting double grants in SQL.
    "CREATE TABLE granted_holds (hold_id uuid NOT NULL, seat_id text NOT NULL)",
)
NAIVE_HOLD = """
    UPDATE seats SET status = 'held', hold_id = %s, held_until = now() + %s
    WHERE session_id = %s AND seat_id = %s AND status = 'free'
    RETURNING seat_id"""
NAIVE_TICKET = """
    INSERT INTO tickets (session_id, seat_id, hold_id, holder_id) VALUES (%s, %s, %s, %s)"""
NAIVE_SELL = """
    UPDATE seats SET status = 'sold', held_until = NULL
    WHERE session_id = %s AND seat_id = ANY(%s) AND hold_id = %s AND status = 'held'"""
NAIVE_EXTRA_ROWS = """
    SELECT coalesce(sum(n - 1), 0), count(*) FROM (
        SELECT seat_id, count(*) AS n FROM {table} {where} GROUP BY seat_id HAVING count(*) > 1
    ) AS repeated"""
HOLD_TTL = timedelta(seconds=600)

NaivePool = AsyncConnectionPool[psycopg.AsyncConnection[TupleRow]]


def plan_areas(plan: dict[str, tuple[int, int]]) -> Areas:
    """Every area of the plan's seat map with its seat ids, in :func:`area_seats`' order."""
    return [(area.area_id, list(area.seat_ids())) for area in grid_seat_map(plan).areas]


def draw_hold_requests(
    areas: Areas, buyers: int, rng: random.Random
) -> list[tuple[AreaId, tuple[SeatId, ...]]]:
    """The hold phase's requests: one or two neighbouring seats of a random area.

    The same draws, in the same order, as :func:`hold_phase` makes from the same rng.
    """
    requests = []
    for n in range(buyers):
        area_id, seats = areas[rng.randrange(len(areas))]
        first = rng.randrange(len(seats) - 1)
        requests.append((area_id, tuple(seats[first : first + 1 + (n & 1)])))
    return requests


async def naive_hold_seats(
    conn: psycopg.AsyncConnection[TupleRow],
    session_id: uuid.UUID,
    hold_id: uuid.UUID,
    seats: Sequence[SeatId],
) -> bool:
    """One guarded UPDATE per seat in the open transaction; True when every seat was won.

    Stops at the first seat already taken: the caller rolls the transaction back.
    """
    for seat in seats:
        cursor = await conn.execute(NAIVE_HOLD, (hold_id, HOLD_TTL, session_id, seat))
        if await cursor.fetchone() is None:
            return False
    return True


async def naive_load_seats(
    conn: psycopg.AsyncConnection[TupleRow], session_id: uuid.UUID, areas: Areas
) -> None:
    """Empty the tables and COPY in one free row per seat."""
    await conn.execute("TRUNCATE seats, tickets, granted_holds")
    async with (
        conn.cursor() as cursor,
        cursor.copy("COPY seats (session_id, seat_id) FROM STDIN") as copy,
    ):
        for _, seats in areas:
            for seat in seats:
                await copy.write_row((session_id, seat))
    await conn.execute("ANALYZE seats")


async def naive_scalar(
    conn: psycopg.AsyncConnection[TupleRow],
    query: LiteralString | sql.Composed,
    params: Sequence[Any] = (),
) -> int:
    """The single integer a counting query returns."""
    cursor = await conn.execute(query, params)
    row = await cursor.fetchone()
    assert row is not None  # noqa: S101  # an aggregate always returns a row
    return int(row[0])


def naive_extra_rows(table: str, where: LiteralString = "") -> sql.Composed:
    """Rows beyond the first for each seat of ``table``: the double grants or sales."""
    return sql.SQL(NAIVE_EXTRA_ROWS).format(table=sql.Identifier(table), where=sql.SQL(where))


async def naive_hold_phase(
    *,
    pool: NaivePool,
    admin: psycopg.AsyncConnection[TupleRow],
    session_id: uuid.UUID,
    areas: Areas,
    buyers: int,
    concurrency: int,
    rng: random.Random,
) -> dict[str, Any]:
    """Phase 1 of pg-naive: one transaction of guarded UPDATEs per hold request."""
    # Drawn before the clock starts, as in hold_phase (the ids too).
    requests = [(wanted, uuid.uuid4()) for _, wanted in draw_hold_requests(areas, buyers, rng)]
    latencies: list[float] = [0.0] * buyers
    granted: list[tuple[uuid.UUID, tuple[SeatId, ...]]] = []
    deadlocks = 0
    clock = time.perf_counter

    async def one(n: int) -> None:
        nonlocal deadlocks
        wanted, hold_id = requests[n]
        started = clock()
        async with pool.connection() as conn:
            try:
                won = await naive_hold_seats(conn, session_id, hold_id, wanted)
            except psycopg.errors.DeadlockDetected:
                won = False
                deadlocks += 1
            if won:
                await conn.commit()
                granted.append((hold_id, wanted))
            else:
                await conn.rollback()
        latencies[n] = clock() - started

    elapsed = await run_bounded(buyers, concurrency, one)
    latencies.sort()

    # What the clients were told, counted in SQL; then checked against the seats table.
    async with (
        admin.cursor() as cursor,
        cursor.copy("COPY granted_holds (hold_id, seat_id) FROM STDIN") as copy,
    ):
        for hold_id, seats in granted:
            for seat in seats:
                await copy.write_row((hold_id, seat))
    double_grants = await naive_scalar(admin, naive_extra_rows("granted_holds"))
    seats_held = await naive_scalar(admin, "SELECT count(DISTINCT seat_id) FROM granted_holds")
    table_held = await naive_scalar(
        admin,
        "SELECT count(*) FROM seats WHERE session_id = %s AND status = 'held'",
        (session_id,),
    )
    unrecorded = await naive_scalar(
        admin,
        """SELECT count(*) FROM granted_holds g WHERE NOT EXISTS (
               SELECT 1 FROM seats s WHERE s.session_id = %s AND s.seat_id = g.seat_id
               AND s.hold_id = g.hold_id AND s.status = 'held')""",
        (session_id,),
    )
    print(
        f"pg-naive holds: {table_held} seats held in the table, {seats_held} granted, "
        f"{unrecorded} granted seats the table does not show held by their hold, "
        f"{deadlocks} deadlocks",
        file=sys.stderr,
    )
    return {
        "holds_per_s": round(buyers / elapsed, 1),
        "hold_p50_ms": round(percentile(latencies, 50) * 1000, 3),
        "hold_p99_ms": round(percentile(latencies, 99) * 1000, 3),
        "hold_mean_ms": round(statistics.fmean(latencies) * 1000, 3),
        "holds_granted": len(granted),
        "seats_held": seats_held,
        "hold_double_grants": double_grants,
        "decisions_per_batch": 1.0,  # one transaction per request: no batching
        "commands_per_message": 0.0,  # no command path
    }


async def naive_purchase_phase(
    *,
    pool: NaivePool,
    session_id: uuid.UUID,
    areas: Areas,
    purchases: int,
    concurrency: int,
    rng: random.Random,
) -> dict[str, Any]:
    """Phase 2 of pg-naive: hold, tickets and seats sold in one transaction per buyer."""
    position = {seat: n for _, seats in areas for n, seat in enumerate(seats)}
    # The same draws as purchase_phase makes; seats are then locked in seat-map order, as
    # a careful shop does, so that two buyers of the same two seats cannot deadlock.
    orders = []
    for _ in range(purchases):
        _, seats = rng.choice(areas)
        wanted = sorted(rng.sample(seats, rng.choice((1, 2))), key=position.__getitem__)
        orders.append((wanted, uuid.uuid4(), uuid.uuid4()))
    completed = deadlocks = 0

    async def one(n: int) -> None:
        nonlocal completed, deadlocks
        wanted, hold_id, holder_id = orders[n]
        async with pool.connection() as conn:
            try:
                won = await naive_hold_seats(conn, session_id, hold_id, wanted)
                if won:
                    async with conn.cursor() as cursor:
                        await cursor.executemany(
                            NAIVE_TICKET,
                            [(session_id, seat, hold_id, holder_id) for seat in wanted],
                        )
                        await cursor.execute(NAIVE_SELL, (session_id, wanted, hold_id))
                        won = cursor.rowcount == len(wanted)
            except psycopg.errors.DeadlockDetected:
                won = False
                deadlocks += 1
            if won:
                await conn.commit()
                completed += 1
            else:
                await conn.rollback()

    elapsed = await run_bounded(purchases, concurrency, one)
    if deadlocks:
        print(f"pg-naive purchases: {deadlocks} deadlocks", file=sys.stderr)
    return {"purchases_per_s": round(completed / elapsed, 1), "purchases": completed}


async def naive_count_tickets(
    admin: psycopg.AsyncConnection[TupleRow], session_id: uuid.UUID
) -> tuple[int, int]:
    """Seats sold and double sales, counted from the tickets table itself."""
    sold = await naive_scalar(
        admin, "SELECT count(DISTINCT seat_id) FROM tickets WHERE session_id = %s", (session_id,)
    )
    doubles = await naive_scalar(
        admin, naive_extra_rows("tickets", "WHERE session_id = %s"), (session_id,)
    )
    marked = await naive_scalar(
        admin, "SELECT count(*) FROM seats WHERE session_id = %s AND status = 'sold'", (session_id,)
    )
    print(f"pg-naive purchases: {sold} seats ticketed, {marked} marked sold", file=sys.stderr)
    return sold, doubles


async def run_pg_naive(args: argparse.Namespace) -> dict[str, Any]:
    """Profile pg-naive: both phases against a seats table, in a schema dropped at the end."""
    rng = random.Random(args.seed)
    plan = seat_plan(args.seats, args.areas)
    areas = plan_areas(plan)
    seat_count = sum(len(seats) for _, seats in areas)
    schema = f"bench_naive_{uuid.uuid4().hex[:12]}"
    connections = max(1, min(args.concurrency, args.pg_connections))
    options = f"-c search_path={schema}"
    print(f"pg-naive: schema {schema}, {connections} connections", file=sys.stderr)
    admin = await psycopg.AsyncConnection.connect(
        args.database_url, autocommit=True, options=options
    )
    pool: NaivePool | None = None
    try:
        await admin.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        for table in NAIVE_TABLES:
            await admin.execute(table)
        pool = AsyncConnectionPool(
            args.database_url,
            min_size=connections,
            max_size=connections,
            kwargs={"options": options},
            open=False,
        )
        await pool.open(wait=True, timeout=60)

        print(
            f"phase 1: {args.buyers} buyers, {seat_count} seats, {args.concurrency} in flight",
            file=sys.stderr,
        )
        session_id = uuid.uuid4()
        await naive_load_seats(admin, session_id, areas)
        loaded = await naive_scalar(admin, "SELECT pg_total_relation_size('seats')")
        holds = await naive_hold_phase(
            pool=pool,
            admin=admin,
            session_id=session_id,
            areas=areas,
            buyers=args.buyers,
            concurrency=args.concurrency,
            rng=rng,
        )
        # The seats table (heap, primary key, toast) after the holds, dead rows included.
        size = await naive_scalar(admin, "SELECT pg_total_relation_size('seats')")
        print(f"pg-naive seats table: {loaded} bytes loaded, {size} after holds", file=sys.stderr)

        print(f"phase 2: {args.purchases} purchases (hold, tickets, sold)", file=sys.stderr)
        session_id = uuid.uuid4()  # a fresh sale, as the memory profile builds a new world
        await naive_load_seats(admin, session_id, areas)
        purchases = await naive_purchase_phase(
            pool=pool,
            session_id=session_id,
            areas=areas,
            purchases=args.purchases,
            concurrency=args.concurrency,
            rng=rng,
        )
        seats_sold, ticket_doubles = await naive_count_tickets(admin, session_id)
    finally:
        if pool is not None:
            await pool.close()
        await admin.close()
        # A connection of its own: the admin one may be what failed.
        async with await psycopg.AsyncConnection.connect(
            args.database_url, autocommit=True
        ) as conn:
            await conn.execute(
                sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
            )
        print(f"pg-naive: dropped schema {schema}", file=sys.stderr)
    bare = bare_dict_rate_of(areas, args.buyers, random.Random(args.seed))

    return {
        "profile": args.profile,
        "seats": seat_count,
        "buyers": args.buyers,
        "concurrency": args.concurrency,
        **holds,
        "bare_dict_decisions_per_s": round(bare, 1),
        "ratio_to_bare_dict": round(holds["holds_per_s"] / bare, 4),
        **purchases,
        "seats_sold": seats_sold,
        "double_sales": holds["hold_double_grants"] + ticket_doubles,
        "bytes_per_seat": round(size / seat_count, 1),
    }


async def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run both phases and return the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="memory", choices=PROFILES)
    parser.add_argument("--seats", type=int, default=20_000)
    parser.add_argument("--buyers", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--purchases", type=int, default=10_000)
    parser.add_argument("--areas", type=int, default=20)
    parser.add_argument("--partitions", type=int, default=16)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("OPENTICKET_DATABASE_URL", DEFAULT_DATABASE_URL),
        help="PostgreSQL of the postgres and pg-naive profiles",
    )
    parser.add_argument(
        "--pg-connections",
        type=int,
        default=20,
        help="pg-naive: connection pool size (at most --concurrency)",
    )
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("OPENTICKET_REDIS_URL", DEFAULT_REDIS_URL),
        help="Redis of the redis profile",
    )
    parser.add_argument(
        "--nats-url",
        default=os.environ.get("OPENTICKET_NATS_URL", "nats://127.0.0.1:4222"),
        help="NATS of the nats profile",
    )
    parser.add_argument(
        "--raw-batch",
        type=int,
        default=8,
        help="redis: SET NX commands per pipeline in the raw redis-py loop it is compared to",
    )
    parser.add_argument(
        "--baseline",
        choices=("pg-naive",),
        default=None,
        help="redis: also run the pg-naive profile in this run and report the ratio",
    )
    args = parser.parse_args(argv)
    if args.profile == "pg-naive":
        return await run_pg_naive(args)
    if args.profile == "postgres":
        return await run_on_postgres(args)
    if args.profile == "redis":
        return await run_on_redis(args)
    if args.profile == "nats":
        return await run_on_nats(args)
    return await run_platform(args, {})


async def raw_redis_rate(
    client: aioredis.Redis, prefix: str, operations: int, concurrency: int, batch: int
) -> float:
    """``SET key value NX EX 120`` per second of a bare redis-py loop.

    ``concurrency`` workers each send pipelines of ``batch`` commands (one seat each,
    fresh keys), as many as ``operations`` commands in all: Redis's own ceiling for
    the work a hold decision writes, without any decision made in Python.
    """
    rounds = max(operations // batch, 1)
    value = b"h:00000000-0000-0000-0000-000000000000:1"

    async def one(n: int) -> None:
        pipe = client.pipeline(transaction=False)
        base = n * batch
        for k in range(batch):
            pipe.set(f"{prefix}raw:{base + k}", value, nx=True, ex=120)
        await pipe.execute()

    elapsed = await run_bounded(rounds, concurrency, one)
    return rounds * batch / elapsed


async def run_on_redis(args: argparse.Namespace) -> dict[str, Any]:
    """The platform on the Redis lock store, against a raw redis-py loop on the same server."""
    prefix = f"bench:{uuid.uuid4().hex[:12]}:"
    print(f"redis: keys under {prefix}", file=sys.stderr)
    client = aioredis.Redis.from_url(args.redis_url)
    try:
        result = await run_platform(
            args, {"redis_url": args.redis_url, "redis_prefix": prefix, "lock_store": "redis"}
        )
        print(
            f"raw redis-py: {args.buyers} SET NX in pipelines of {args.raw_batch}", file=sys.stderr
        )
        raw = await raw_redis_rate(client, prefix, args.buyers, args.concurrency, args.raw_batch)
    finally:
        async for key in client.scan_iter(match=f"{prefix}*", count=1000):
            await client.delete(key)
        await client.aclose()
        print(f"redis: deleted the keys under {prefix}", file=sys.stderr)
    result["raw_redis_setnx_per_s"] = round(raw, 1)
    result["ratio_to_raw_redis"] = round(result["holds_per_s"] / raw, 4)
    if args.baseline == "pg-naive":
        print("baseline: the pg-naive profile on the same requests", file=sys.stderr)
        naive = await run_pg_naive(args)
        result["pg_naive_holds_per_s"] = naive["holds_per_s"]
        result["pg_naive_hold_p99_ms"] = naive["hold_p99_ms"]
        result["pg_naive_double_sales"] = naive["double_sales"]
        result["ratio_to_pg_naive"] = round(result["holds_per_s"] / naive["holds_per_s"], 2)
    return result


async def run_on_nats(args: argparse.Namespace) -> dict[str, Any]:
    """Holds over the NATS command path to one ``openticket worker`` process.

    The catalog and tickets are in PostgreSQL (a schema of the run's own), the actors
    and their memory locks in the worker; this process is the API side.
    """
    run = uuid.uuid4().hex[:10].upper()
    schema, prefix = f"bench_nats_{run.lower()}", f"B{run}"
    storage = {
        "database_url": args.database_url,
        "database_schema": schema,
        "nats_url": args.nats_url,
        "nats_prefix": prefix,
        "seat_actors": "workers",
    }
    env = {
        **os.environ,
        **{f"OPENTICKET_{k.upper()}": v for k, v in storage.items() if k != "seat_actors"},
        "OPENTICKET_PARTITIONS": str(args.partitions),
        "OPENTICKET_HOLD_TTL_SECONDS": "600",
        "OPENTICKET_LOCK_STORE": "memory",
    }
    print(f"nats: schema {schema}, prefix {prefix}; starting one worker", file=sys.stderr)
    await migrate(args.database_url, schema=schema)
    worker = subprocess.Popen(  # noqa: S603, ASYNC220  # our own command, started once
        [
            sys.executable,
            "-m",
            "openticket.entrypoints.cli",
            "worker",
            "--id",
            "bench",
            "--partitions",
            f"0-{args.partitions - 1}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    try:
        if worker.stdout is None:
            raise SystemExit("the worker has no output")
        for line in worker.stdout:
            if "Ctrl+C to stop" in line:
                break
        else:
            raise SystemExit("the worker did not start")
        # the rest of its output is read and dropped: a full pipe would stop the worker
        threading.Thread(target=collections.deque, args=(worker.stdout, 0), daemon=True).start()
        await asyncio.sleep(1.0)  # its leases: every partition claimed and served
        return await run_platform(args, storage)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        await _drop_nats(args.nats_url, prefix)
        await _drop_schema(args.database_url, schema)
        print(f"nats: removed schema {schema} and the {prefix} streams", file=sys.stderr)


async def _drop_nats(url: str, prefix: str) -> None:
    nc = await nats.connect(url)
    js = nc.jetstream()
    for stream in ("SEATS", "ORDERS", "PAYMENTS"):
        with contextlib.suppress(nats.js.errors.NotFoundError):
            await js.delete_stream(stream_name(stream, prefix))
    for bucket in ("openticket_leases", "openticket_seats"):
        with contextlib.suppress(nats.js.errors.NotFoundError):
            await js.delete_key_value(stream_name(bucket, prefix))
    await nc.close()


async def _drop_schema(url: str, schema: str) -> None:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        await conn.execute(
            sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
        )
        await conn.commit()


async def run_on_postgres(args: argparse.Namespace) -> dict[str, Any]:
    """The platform profile with PostgreSQL persistence, in a schema of its own."""
    schema = f"bench_pg_{uuid.uuid4().hex[:12]}"
    print(f"postgres: migrating schema {schema}", file=sys.stderr)
    await migrate(args.database_url, schema=schema)
    try:
        return await run_platform(
            args, {"database_url": args.database_url, "database_schema": schema}
        )
    finally:
        async with await psycopg.AsyncConnection.connect(args.database_url) as conn:
            await conn.execute(
                sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
            )
            await conn.commit()
        print(f"postgres: dropped schema {schema}", file=sys.stderr)


async def run_platform(args: argparse.Namespace, storage: Mapping[str, str]) -> dict[str, Any]:
    """Both phases through the platform (memory locks; the storage the profile asks)."""
    rng = random.Random(args.seed)
    print(
        f"phase 1: {args.buyers} buyers, {args.seats} seats, {args.concurrency} in flight",
        file=sys.stderr,
    )
    world = await new_world(args.profile, args.seats, args.areas, args.partitions, storage)
    try:
        holds = await hold_phase(world, args.buyers, args.concurrency, rng)
    finally:
        await world.app.stop()

    print(f"phase 2: {args.purchases} purchases (order, pay, tickets)", file=sys.stderr)
    container = build_container(
        platform_settings(args.profile, args.partitions, storage), clock=SystemClock()
    )
    app: OpenTicket = container.app()
    plan = seat_plan(args.seats, args.areas)
    world = await build_world(
        app,
        SystemClock(),
        seat_map=grid_seat_map(plan),
        prices=dict.fromkeys(plan, "1000.00"),
        max_seats_per_order=2,
    )
    await app.start(sweeper=False)
    try:
        purchases = await purchase_phase(world, args.purchases, args.concurrency, rng)
        await app.seating.flush_events()
        seats_sold, ticket_doubles = await count_tickets(container, world.session_id)
    finally:
        await app.stop()
    bare = bare_dict_rate(world, args.buyers, random.Random(args.seed))

    return {
        "profile": args.profile,
        "seats": sum(rows * seats for rows, seats in plan.values()),
        "buyers": args.buyers,
        "concurrency": args.concurrency,
        **holds,
        "bare_dict_decisions_per_s": round(bare, 1),
        "ratio_to_bare_dict": round(holds["holds_per_s"] / bare, 4),
        **purchases,
        "seats_sold": seats_sold,
        "double_sales": holds["hold_double_grants"] + ticket_doubles,
        "bytes_per_seat": bytes_per_seat(args.seats),
    }


if __name__ == "__main__":
    result = asyncio.run(main())
    print(json.dumps(result))
