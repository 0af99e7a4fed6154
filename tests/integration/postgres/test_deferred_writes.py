"""Writes that travel with the commit: a stale one still refuses the whole unit.

A versioned update is sent with the unit's outbox rows and its ``COMMIT`` in one
round trip (one simple query, values bound on the client). When it matches no row the
unit is refused (``ConcurrencyError``), nothing of it is stored, and the units after it
on the same connection work as before. Values bound on the client mean what they mean
when bound on the server (a moment with any offset Python allows).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from uuid import uuid4

import pytest

from openticket.adapters.postgres import PostgresDatabase
from openticket.application.ports.errors import ConcurrencyError, InvalidInput
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


async def test_a_moment_with_an_offset_postgresql_would_not_parse_is_stored_as_that_moment(
    one_connection: PostgresDatabase,
) -> None:
    """PostgreSQL reads offsets up to 15:59 in text; Python's go to 23:59."""
    database = one_connection
    far = timezone(timedelta(hours=18, minutes=5))
    placed = datetime(1798, 11, 26, 11, 55, 16, tzinfo=far)
    order = new_order(now=placed)
    async with database.unit_of_work() as uow:
        await uow.orders.add(order)  # travels with the commit
        await uow.commit()
    async with database.unit_of_work() as uow:
        stored = await uow.orders.get(order.order_id)
    assert stored is not None
    assert stored.created_at == placed
    assert stored.expires_at == order.expires_at


async def test_a_moment_before_year_one_in_utc_is_refused_as_bad_input_and_stores_nothing(
    one_connection: PostgresDatabase,
) -> None:
    database = one_connection
    order = new_order(now=datetime(1, 1, 1, 6, tzinfo=timezone(timedelta(hours=18))))
    async with database.unit_of_work() as uow:
        await uow.orders.add(order)
        with pytest.raises(InvalidInput):
            await uow.commit()
    async with database.unit_of_work() as uow:
        assert await uow.orders.get(order.order_id) is None
