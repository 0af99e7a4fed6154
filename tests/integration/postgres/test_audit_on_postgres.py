"""``openticket audit`` over a sale stored in PostgreSQL: clean books hold, broken ones are named.

The sale runs in process on the test's schema; the audit is the real command, run as an
operator would, against the same schema. Then the books are broken the way incidents
break them (money kept for an order that expired, a ticket left behind, an event never
published) and the audit must say so, with the ids.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import timedelta

import psycopg
import pytest

from openticket.adapters.memory import MemoryPasswordHasher
from openticket.application.facade import OpenTicket
from openticket.domain.ordering import OrderStatus
from openticket.entrypoints.bootstrap import build_container
from openticket.entrypoints.container import Container
from openticket.entrypoints.settings import Settings
from openticket.testing.world import World, build_world

pytestmark = pytest.mark.postgres

CLI = [sys.executable, "-m", "openticket.entrypoints.cli"]


@pytest.fixture
async def container(database_url: str, schema: str) -> AsyncIterator[Container]:
    built = build_container(
        # the system clock: the audit, a process of its own, reads the same time
        Settings(database_url=database_url, database_schema=schema, hold_ttl_seconds=120),
        password_hasher=MemoryPasswordHasher(),
    )
    app: OpenTicket = built.app()
    await app.start(sweeper=False)
    try:
        yield built
    finally:
        await app.stop()


@pytest.fixture
async def sale(container: Container) -> World:
    """Three purchases, one declined payment, one cancelled order."""
    app: OpenTicket = container.app()
    world = await build_world(app, container.clock())
    for n, seats in enumerate((["A-1-1", "A-1-2"], ["A-1-3"], ["A-2-1"]), start=1):
        order = await app.place_order(world.buyer(n), world.session_id, seats)
        await app.pay(world.buyer(n), order.order_id)
    declined = await app.place_order(world.buyer(4), world.session_id, ["A-2-2"])
    await app.pay(world.buyer(4), declined.order_id, outcome="decline")
    cancelled = await app.place_order(world.buyer(5), world.session_id, ["A-2-3"])
    await app.cancel_order(world.buyer(5), cancelled.order_id)
    return world


def audit(
    database_url: str, schema: str, world: World, *extra: str
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "OPENTICKET_DATABASE_URL": database_url,
        "OPENTICKET_DATABASE_SCHEMA": schema,
    }
    return subprocess.run(  # noqa: S603  # our own command
        [*CLI, "audit", "--session", str(world.session_id), *extra],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


async def sql(database_url: str, schema: str, statement: str, *params: object) -> None:
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await conn.execute(f"SET search_path TO {schema}")  # type: ignore[arg-type]
        await conn.execute(statement, params)  # type: ignore[arg-type]


async def test_the_books_of_a_clean_sale_hold(database_url: str, schema: str, sale: World) -> None:
    done = audit(database_url, schema, sale)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "every promise holds" in done.stdout
    assert "3 completed" in done.stdout
    assert "1 cancelled" in done.stdout
    assert "seats sold: 4" in done.stdout
    report = json.loads(audit(database_url, schema, sale, "--json").stdout)
    assert report["holds"] is True
    assert (report["purchases"], report["seats_sold"]) == (3, 4)
    assert report["orders"] == {"completed": 3, "failed": 1, "cancelled": 1}
    assert report["captured"] == {"TWD": "4800.00"}
    assert report["messages_parked"] is None  # no NATS configured


async def test_money_kept_for_an_expired_order_is_named_by_the_audit(
    database_url: str, schema: str, sale: World, container: Container
) -> None:
    """The incident of issue 14: paid, then expired without tickets or a refund."""
    app: OpenTicket = container.app()
    (first, *_) = (await app.list_orders(sale.buyer(1))).items
    await sql(database_url, schema, "DELETE FROM tickets WHERE order_id = %s", first.order_id)
    await sql(
        database_url,
        schema,
        "UPDATE orders SET status = 'expired', expires_at = now() - interval '1 hour'"
        " WHERE order_id = %s",
        first.order_id,
    )
    await sql(  # paid an hour ago: past any grace
        database_url,
        schema,
        "UPDATE payments SET processed_at = now() - interval '1 hour' WHERE payment_id = %s",
        first.payment_id,
    )
    broken = audit(database_url, schema, sale)
    assert broken.returncode == 1, broken.stdout + broken.stderr
    assert "captured_payment_unsettled" in broken.stdout
    assert str(first.payment_id) in broken.stdout
    assert str(first.order_id) in broken.stdout
    report = json.loads(audit(database_url, schema, sale, "--json").stdout)
    assert [f["check"] for f in report["findings"]] == ["captured_payment_unsettled"]


async def test_a_ticket_left_behind_and_an_event_never_published_are_named(
    database_url: str, schema: str, sale: World, container: Container
) -> None:
    app: OpenTicket = container.app()
    (first, *_) = (await app.list_orders(sale.buyer(1))).items
    assert first.status is OrderStatus.COMPLETED
    await sql(
        database_url,
        schema,
        "UPDATE orders SET status = 'cancelled' WHERE order_id = %s",
        first.order_id,
    )
    await sql(  # paid an hour ago: past any grace
        database_url,
        schema,
        "UPDATE payments SET processed_at = now() - interval '1 hour' WHERE payment_id = %s",
        first.payment_id,
    )
    await sql(
        database_url,
        schema,
        "INSERT INTO outbox (event_id, event_type, payload, occurred_at, stored_at)"
        " VALUES (gen_random_uuid(), 'OrderCreated', '{}', now(), now() - %s)",
        timedelta(minutes=5),
    )
    report = json.loads(audit(database_url, schema, sale, "--json").stdout)
    assert not report["holds"]
    assert sorted({f["check"] for f in report["findings"]}) == [
        "captured_payment_unsettled",
        "events_not_published",
        "ticket_without_completed_order",
    ]


def test_the_audit_needs_postgres_and_a_session_id(database_url: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENTICKET_DATABASE")}
    embedded = subprocess.run(  # noqa: S603
        [*CLI, "audit", "--session", "01a23778-6841-7ba6-8c6f-02c7db99384b"],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=False,
    )
    assert embedded.returncode == 2
    assert "OPENTICKET_DATABASE_URL" in embedded.stderr
    bad = subprocess.run(  # noqa: S603
        [*CLI, "audit", "--session", "not-a-session"],
        capture_output=True,
        text=True,
        env={**env, "OPENTICKET_DATABASE_URL": database_url},
        timeout=30,
        check=False,
    )
    assert bad.returncode == 2
    assert "not a session id" in bad.stderr
    down = subprocess.run(  # noqa: S603
        [*CLI, "audit", "--session", "01a23778-6841-7ba6-8c6f-02c7db99384b"],
        capture_output=True,
        text=True,
        env={**env, "OPENTICKET_DATABASE_URL": "postgresql://postgres@127.0.0.1:1/test"},
        timeout=60,
        check=False,
    )
    assert down.returncode == 3, down.stderr
    assert "Traceback" not in down.stderr
