"""Connections the server dropped (restart, idle kill) do not fail the next request."""

from __future__ import annotations

import psycopg
import pytest

from openticket.adapters.postgres import PostgresDatabase
from openticket.testing.contracts._builders import new_order, new_user

pytestmark = pytest.mark.postgres


async def _kill_pooled_connections(database: PostgresDatabase, database_url: str) -> int:
    """Terminate, from outside, the server side of every idle connection of the pool."""
    pids = []
    for _ in range(3):  # the pool hands its idle connections out in turn
        conn = await database.take()
        pids.append(conn.info.backend_pid)
        await database.give_back(conn)
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as admin:
        for pid in set(pids):
            await admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    return len(set(pids))


async def test_reads_and_writes_go_on_after_the_server_dropped_the_pooled_connections(
    pg_database: PostgresDatabase, database_url: str
) -> None:
    """The unit that meets a dead connection takes a fresh one; nothing fails or is lost."""
    user = new_user()
    async with pg_database.unit_of_work() as uow:
        await uow.users.add(user)
        await uow.commit()

    assert await _kill_pooled_connections(pg_database, database_url) >= 1
    async with pg_database.unit_of_work() as uow:
        found = await uow.users.get(user.user_id)
    assert found is not None
    assert found.email == user.email

    await _kill_pooled_connections(pg_database, database_url)
    order = new_order()
    async with pg_database.unit_of_work() as uow:
        await uow.orders.add(order)
        await uow.commit()
    async with pg_database.unit_of_work() as uow:
        assert await uow.orders.get(order.order_id) is not None


async def test_a_connection_lost_inside_a_transaction_fails_the_unit_and_stores_nothing(
    pg_database: PostgresDatabase, database_url: str
) -> None:
    """Mid-transaction the unit cannot know what the server kept: it fails, rolled back."""
    from openticket.application.ports.errors import AdapterUnavailable

    order, later, user = new_order(), new_order(), new_user()

    async def add_both() -> None:
        async with pg_database.unit_of_work() as uow:
            await uow.orders.add(order)  # deferred: it travels with the next statement
            await uow.users.add(user)  # sent now, with the order: the transaction is open
            conn = uow._conn
            assert conn is not None
            async with await psycopg.AsyncConnection.connect(
                database_url, autocommit=True
            ) as admin:
                await admin.execute("SELECT pg_terminate_backend(%s)", (conn.info.backend_pid,))
            await uow.orders.add(later)
            await uow.commit()

    with pytest.raises(AdapterUnavailable):
        await add_both()
    async with pg_database.unit_of_work() as uow:
        assert await uow.orders.get(order.order_id) is None
        assert await uow.orders.get(later.order_id) is None
        assert await uow.users.get(user.user_id) is None
