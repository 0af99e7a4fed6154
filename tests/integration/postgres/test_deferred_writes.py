"""Writes that travel with the commit: a stale one still refuses the whole unit.

A versioned update is sent with the unit's outbox rows and its ``COMMIT`` in one
pipeline. When it matches no row the unit is refused (``ConcurrencyError``), nothing of
it is stored, and the units after it on the same connection pool work as before (a
connection whose pipeline failed is closed rather than given back: psycopg may count the
statements it meant to prepare in an aborted pipeline as prepared).
"""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

import pytest

from openticket.adapters.postgres import PostgresDatabase
from openticket.application.ports.errors import ConcurrencyError
from openticket.domain.ordering import Order
from openticket.domain.shared import PaymentId
from openticket.testing.contracts._builders import new_order

T0 = datetime(2030, 1, 1, tzinfo=UTC)


def _new_id() -> object:
    return uuid4()


async def _save_and_commit(database: PostgresDatabase, order: Order) -> None:
    async with database.unit_of_work() as uow:
        await uow.orders.save(order)
        await uow.commit()


@pytest.fixture
async def one_connection(database_url: str, schema: str) -> PostgresDatabase:
    """A pool of one connection: every unit uses the same one, as a busy pool would."""
    database = PostgresDatabase(database_url, schema=schema, min_connections=1, max_connections=1)
    yield database  # type: ignore[misc]
    await database.stop()


async def test_stale_saves_refused_again_and_again_never_spoil_the_next_unit(
    one_connection: PostgresDatabase,
) -> None:
    database = one_connection
    order = new_order()
    async with database.unit_of_work() as uow:
        await uow.orders.add(order)
        await uow.commit()
    async with database.unit_of_work() as uow:
        fresh = await uow.orders.get(order.order_id)
        assert fresh is not None
        fresh.start_payment(PaymentId(uuid4()), now=T0, ids=_new_id)  # type: ignore[arg-type]
        await uow.orders.save(fresh)
        await uow.commit()
    for _ in range(8):  # past psycopg's threshold for preparing a statement, all refused
        stale = order.detached_copy()
        stale.cancel(now=T0, ids=_new_id)  # type: ignore[arg-type]
        with pytest.raises(ConcurrencyError):
            await _save_and_commit(database, stale)  # its events go to the outbox with it
    for _ in range(3):  # the next units, on the same pool: their statements still work
        other = new_order()
        async with database.unit_of_work() as uow:
            await uow.orders.add(other)
            other.cancel(now=T0, ids=_new_id)  # type: ignore[arg-type]
            await uow.orders.save(other)
            await uow.commit()
    async with database.unit_of_work() as uow:
        stored = await uow.orders.get(order.order_id)
    assert stored is not None
    assert stored.status.value == "payment_pending"
