"""The real services the adapters are tested against are there and usable.

These run first in the integration environment: if one fails, every adapter test of
that service would fail for the same reason, and this says which service and where.
"""

from __future__ import annotations

import uuid

import pytest


@pytest.mark.postgres
def test_postgres_accepts_a_transaction_and_rolls_it_back(database_url: str) -> None:
    import psycopg
    from psycopg import sql

    name = f"ci_probe_{uuid.uuid4().hex[:12]}"
    table = sql.Identifier(name)
    with psycopg.connect(database_url) as conn:
        with conn.transaction(force_rollback=True):
            conn.execute(sql.SQL("CREATE TABLE {} (seat_id text PRIMARY KEY)").format(table))
            conn.execute(sql.SQL("INSERT INTO {} VALUES ('A-1-1')").format(table))
            with pytest.raises(psycopg.errors.UniqueViolation), conn.transaction():
                conn.execute(sql.SQL("INSERT INTO {} VALUES ('A-1-1')").format(table))
        exists = conn.execute("SELECT to_regclass(%s)", (name,)).fetchone()
    assert exists == (None,)


@pytest.mark.redis
async def test_redis_set_nx_with_ttl_grants_one_lock(redis_url: str) -> None:
    import redis.asyncio as redis

    client = redis.Redis.from_url(redis_url)
    key = f"ci:probe:{uuid.uuid4().hex}"
    try:
        first = await client.set(key, "holder-1", nx=True, ex=5)
        second = await client.set(key, "holder-2", nx=True, ex=5)
        assert (first, second) == (True, None)
        assert 0 < await client.ttl(key) <= 5
    finally:
        await client.delete(key)
        await client.aclose()


@pytest.mark.nats
async def test_nats_jetstream_drops_a_duplicate_message_id(nats_url: str) -> None:
    import nats

    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    stream = f"CI_PROBE_{uuid.uuid4().hex[:10].upper()}"
    try:
        await js.add_stream(name=stream, subjects=[f"{stream.lower()}.>"], duplicate_window=60)
        first = await js.publish(f"{stream.lower()}.x", b"1", headers={"Nats-Msg-Id": "m1"})
        again = await js.publish(f"{stream.lower()}.x", b"1", headers={"Nats-Msg-Id": "m1"})
        # nats-py leaves `duplicate` as None (not False) on a first delivery
        assert (bool(first.duplicate), again.duplicate) == (False, True)
        assert (await js.stream_info(stream)).state.messages == 1
    finally:
        await js.delete_stream(stream)
        await nc.close()
