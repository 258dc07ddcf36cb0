"""One contract, every backend: PostgreSQL and SQLite for real, the memory twin alike."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest

from actor_service.errors import StoreUnavailable
from actor_service.stores.base import StateStore, Transaction, actor_key
from actor_service.stores.memory import MemoryStore
from actor_service.stores.postgres import PostgresStore
from actor_service.stores.sqlite import SqliteStore
from supervise.pgserver import PostgresServer


@pytest.fixture(params=["postgres", "sqlite", "memory"])
async def store(
    request: pytest.FixtureRequest, pg: PostgresServer, tmp_path: Path
) -> AsyncIterator[StateStore]:
    s: StateStore
    if request.param == "postgres":
        s = PostgresStore(pg.url)
    elif request.param == "sqlite":
        s = SqliteStore(tmp_path / "s.sqlite3")
    else:
        s = MemoryStore()
    await s.open()
    try:
        yield s
    finally:
        await s.close()


async def test_missing_key_is_none(store: StateStore) -> None:
    assert await store.get("never-written-" + store.name) is None


async def test_upsert_delete_and_isolation(store: StateStore, qid: str) -> None:
    a = actor_key("pushpop", "QueueActor", qid, "meta")
    b = actor_key("pushpop", "QueueActor", qid + "x", "meta")
    await store.transact(Transaction([(a, b'{"v":1}'), (b, b'{"v":2}')]))
    await store.transact(Transaction([(a, b'{"v":3}')]))
    assert _json(await store.get(a)) == {"v": 3}
    assert _json(await store.get(b)) == {"v": 2}
    await store.transact(Transaction(deletes=[a]))
    assert await store.get(a) is None
    assert _json(await store.get(b)) == {"v": 2}


async def test_values_with_nul_round_trip(store: StateStore, qid: str) -> None:
    """jsonb cannot hold U+0000: such values must still come back exactly."""
    key = actor_key("pushpop", "QueueActor", qid, "s:1:0")
    value = '{"items":[[1,{"k\\u0000":"a\\u0000b","é":"ü"},1.5]]}'.encode()
    await store.transact(Transaction([(key, value)]))
    assert _json(await store.get(key)) == _json(value)


async def test_large_transaction_with_deletes_is_all_applied(store: StateStore, qid: str) -> None:
    """A purge-sized save (many rows, past the prepared-statement shapes) plus deletes."""
    keys = [actor_key("pushpop", "QueueActor", qid, f"s:1:{n}") for n in range(40)]
    await store.transact(Transaction([(k, b'{"n":%d}' % n) for n, k in enumerate(keys)]))
    # rewrite the first 30, delete the last 10, and write one key twice (the last wins)
    rewrite = [(k, b'{"n":-%d}' % n) for n, k in enumerate(keys[:30])]
    await store.transact(Transaction([*rewrite, (keys[0], b'{"n":"last"}')], deletes=keys[30:]))
    assert _json(await store.get(keys[0])) == {"n": "last"}
    assert [_json(await store.get(k)) for k in keys[1:30]] == [{"n": -n} for n in range(1, 30)]
    assert [await store.get(k) for k in keys[30:]] == [None] * 10


async def test_upsert_then_delete_of_one_key_deletes_it(store: StateStore, qid: str) -> None:
    key = actor_key("pushpop", "QueueActor", qid, "meta")
    await store.transact(Transaction([(key, b'{"v":1}')]))
    await store.transact(Transaction([(key, b'{"v":2}')], deletes=[key]))
    assert await store.get(key) is None


@pytest.fixture(params=["postgres", "sqlite"])
async def real_store(
    request: pytest.FixtureRequest, pg: PostgresServer, tmp_path: Path
) -> AsyncIterator[StateStore]:
    s: StateStore = (
        PostgresStore(pg.url)
        if request.param == "postgres"
        else SqliteStore(tmp_path / "s.sqlite3")
    )
    await s.open()
    try:
        yield s
    finally:
        await s.close()


async def test_failed_transaction_applies_nothing(real_store: StateStore, qid: str) -> None:
    store = real_store
    good = actor_key("pushpop", "QueueActor", qid, "a")
    await store.transact(Transaction([(good, b'{"v":1}')]))
    # the second upsert is not JSON: PostgreSQL's jsonb rejects it; make SQLite fail too
    bad = b"not json" if isinstance(store, PostgresStore) else None
    with pytest.raises((psycopg.Error, StoreUnavailable, Exception)):
        await store.transact(Transaction([(good, b'{"v":2}'), ("k2", bad)]))  # type: ignore[list-item]
    assert _json(await store.get(good)) == {"v": 1}


async def test_postgres_table_is_daprs_v1_layout(pg: PostgresServer) -> None:
    """Same table, columns and migration marker as Dapr's state.postgresql v1."""
    s = PostgresStore(pg.url)
    await s.open()
    await s.close()
    with psycopg.connect(pg.url) as conn:
        cols = {
            r[0]: r[1]
            for r in conn.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_name = 'state'"
            )
        }
        marker = conn.execute("SELECT value FROM dapr_metadata WHERE key = 'migrations'").fetchone()
    assert cols["key"] == "text" and cols["value"] == "jsonb" and cols["isbinary"] == "boolean"
    assert {"insertdate", "updatedate", "expiredate", "row_id"} <= set(cols)
    assert marker == ("3",)


async def test_postgres_schema_survives_a_concurrent_creator(pg: PostgresServer) -> None:
    """daprd's component creates the same tables on a fresh database, without our lock:
    CI saw ``type "dapr_metadata" already exists`` end a Dapr direct-state host's start."""
    url = pg.database("schema_race", fresh=True)
    with psycopg.connect(url) as other:  # daprd's creation, its transaction still open
        other.execute("CREATE TABLE IF NOT EXISTS dapr_metadata (key text PRIMARY KEY, "
                      "value text NOT NULL)")  # fmt: skip
        s = PostgresStore(url)
        opening = asyncio.create_task(s.open())
        await asyncio.sleep(1.0)  # ours now waits on the catalog behind the other's
        assert not opening.done()
        other.commit()
        await asyncio.wait_for(opening, 30)
    await s.close()
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT to_regclass('state')").fetchone() == ("state",)


async def test_postgres_schema_waits_for_daprds_migrations(pg: PostgresServer) -> None:
    """daprd migrates holding its metadata row "lock" FOR UPDATE, after reading its level:
    our schema must wait for it. CI saw a daprd read level 0, then run its "ADD expiredate"
    on the table we had just made, fail, and write level 1 over our 3: at every start again."""
    url = pg.database("schema_daprd_lock", fresh=True)
    with psycopg.connect(url) as daprd:  # daprd mid-migration: level read, lock held
        daprd.execute("CREATE TABLE dapr_metadata (key text PRIMARY KEY, value text NOT NULL)")
        daprd.execute("INSERT INTO dapr_metadata VALUES ('lock', 'lock')")
        daprd.commit()
        daprd.execute("SELECT value FROM dapr_metadata WHERE key = 'lock' FOR UPDATE")
        s = PostgresStore(url)
        opening = asyncio.create_task(s.open())
        await asyncio.sleep(1.0)
        assert not opening.done(), "our schema did not wait for daprd's migration lock"
        # daprd's migrations, then its lock released: ours goes on and finds them done
        daprd.execute("CREATE TABLE state (key text NOT NULL PRIMARY KEY, value jsonb NOT NULL, "
                      "isbinary boolean NOT NULL, insertdate TIMESTAMP WITH TIME ZONE NOT NULL "
                      "DEFAULT NOW(), updatedate TIMESTAMP WITH TIME ZONE NULL, expiredate "
                      "TIMESTAMP WITH TIME ZONE NULL, row_id bigint NOT NULL GENERATED BY "
                      "DEFAULT AS IDENTITY)")  # fmt: skip
        daprd.execute("INSERT INTO dapr_metadata VALUES ('migrations', '3')")
        daprd.commit()
        await asyncio.wait_for(opening, 30)
    await s.close()
    with psycopg.connect(url) as conn:
        level = conn.execute("SELECT value FROM dapr_metadata WHERE key = 'migrations'")
        assert level.fetchone() == ("3",)


async def test_postgres_down_is_store_unavailable() -> None:
    server = PostgresServer()
    server.start()
    s = PostgresStore(server.url, pool_timeout=1.0)
    await s.open()
    try:
        server.stop()
        with pytest.raises(StoreUnavailable):
            await s.get("k")
        with pytest.raises(StoreUnavailable):
            await s.ping()
        server.start()
        for _ in range(50):  # the pool reconnects on its own
            try:
                await s.ping()
                break
            except StoreUnavailable:
                import asyncio

                await asyncio.sleep(0.1)
        await s.ping()
    finally:
        await s.close()
        server.cleanup()


def _json(raw: bytes | None) -> object:
    import json

    assert raw is not None
    return json.loads(raw)
