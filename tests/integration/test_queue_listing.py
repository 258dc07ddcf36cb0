"""``GET /queues`` and the per-queue gauges (docs/api.md, "Seeing the queues").

The app runs in this process (``httpx.ASGITransport``, lifespan running) on a real
SQLite file and on the session's PostgreSQL; the store-level listing is checked on
both plus the memory twin, with the ids whose key order differs from their id order
(``a-b||meta`` sorts before ``a||meta``) and the escaped ids of ``.`` and ``..``.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from actor_service.actor import ACTOR_TYPE
from actor_service.actor_ids import actor_id_for
from actor_service.queue_layout import new_meta
from actor_service.stores.base import StateStore, Transaction, actor_key, json_bytes
from actor_service.stores.memory import MemoryStore
from actor_service.stores.postgres import PostgresStore
from actor_service.stores.sqlite import SqliteStore
from api import queue_list
from api.app import create_app
from api.queue_list import QueueLister
from api.settings import Settings
from supervise.pgserver import PostgresServer

APP = "pushpop"
ADMIN = "admin-key-0123456789"
PUSHER = "push-key-0123456789"
ORDERS_ADMIN = "orders-admin-0123456789"
KEYS = json.dumps(
    [
        {"key": ADMIN, "prefixes": [""], "operations": ["push", "pop", "admin"]},
        {"key": PUSHER, "prefixes": [""], "operations": ["push"]},
        {"key": ORDERS_ADMIN, "prefixes": ["orders-"], "operations": ["admin"]},
    ]
)


@pytest.fixture(params=["sqlite", "postgres"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    if request.param == "sqlite":
        return Settings(store="sqlite", sqlite_path=str(tmp_path / "state.sqlite3"))
    pg: PostgresServer = request.getfixturevalue("pg")
    name = f"listing_{abs(hash(request.node.name)) % 10**8}"
    return Settings(store="postgres", database_url=pg.database(name, fresh=True))


@asynccontextmanager
async def running(settings: Settings, **changes: Any) -> AsyncIterator[httpx.AsyncClient]:
    for name, value in changes.items():
        setattr(settings, name, value)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://pushpop.test") as c:
            c.app = app  # type: ignore[attr-defined]
            yield c


def meta_row(actor_id: str, depth: int, enqueued_at: float = 1000.0) -> tuple[str, bytes]:
    meta = new_meta()
    if depth:
        meta["pri"] = {"1": [0, depth, enqueued_at]}
        meta["next_id"] = depth + 1
    return actor_key(APP, ACTOR_TYPE, actor_id, "meta"), json_bytes(meta)


async def write_metas(store: StateStore, metas: dict[str, int]) -> None:
    """Queues made by writing their meta rows (queue id -> depth), a thousand a commit."""
    rows = [meta_row(actor_id_for(q), depth) for q, depth in metas.items()]
    for i in range(0, len(rows), 1000):
        await store.transact(Transaction(upserts=rows[i : i + 1000]))


def ok(r: httpx.Response) -> Any:
    assert r.status_code == 200, f"{r.request.url}: {r.status_code} {r.text}"
    return r.json()


def error_code(r: httpx.Response, status: int) -> str:
    assert r.status_code == status, f"{r.request.url}: {r.status_code} {r.text}"
    body = r.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    return body["error"]["code"]


async def all_pages(c: httpx.AsyncClient, **params: Any) -> list[list[dict]]:
    pages: list[list[dict]] = []
    after = None
    while True:
        query = {**params, **({"after": after} if after else {})}
        page = ok(await c.get("/queues", params=query))
        pages.append(page["queues"])
        after = page["next"]
        if after is None:
            return pages
        assert len(pages) < 50, "the cursor does not advance"


# ---- the store method, on every store -----------------------------------------------

TRICKY = ["a", "a-b", "a-b-deadletter", "a.b", "a:b", "a_b", "aa", "A", "-x", ".x", "z"]


@pytest.fixture(params=["memory", "sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StateStore]:
    if request.param == "memory":
        s: StateStore = MemoryStore()
    elif request.param == "sqlite":
        s = SqliteStore(tmp_path / "s.sqlite3")
    else:
        pg: PostgresServer = request.getfixturevalue("pg")
        url = pg.database(f"metas_{abs(hash(request.node.name)) % 10**8}", fresh=True)
        s = PostgresStore(url, group_commit=0)
    async with s:
        yield s


async def test_list_metas_sorts_by_actor_id_not_by_key(store: StateStore) -> None:
    await write_metas(store, {q: 1 for q in TRICKY})
    # rows that are not meta rows, or of another actor type or app, are never listed
    other = [
        (actor_key(APP, ACTOR_TYPE, "a", "s:1:0"), b'{"start":0,"items":[]}'),
        (actor_key(APP, "OtherActor", "b", "meta"), b"{}"),
        (actor_key("other-app", ACTOR_TYPE, "c", "meta"), b"{}"),
    ]
    await store.transact(Transaction(upserts=other))
    rows = await store.list_metas(APP, ACTOR_TYPE, "", None, 100)
    assert [a for a, _ in rows] == sorted(TRICKY)
    assert json.loads(rows[0][1])["pri"] == {"1": [0, 1, 1000.0]}
    assert [a for a, _ in await store.list_metas(APP, ACTOR_TYPE, "a-", None, 100)] == [
        "a-b",
        "a-b-deadletter",
    ]
    after_a = await store.list_metas(APP, ACTOR_TYPE, "a", "a", 3)
    assert [a for a, _ in after_a] == ["a-b", "a-b-deadletter", "a.b"]
    assert await store.list_metas(APP, ACTOR_TYPE, "a", "a_b", 10) == [("aa", rows[-2][1])]


async def test_list_metas_reads_back_a_value_stored_as_binary(store: StateStore) -> None:
    key, value = meta_row("nul", 2)
    value = value[:-1] + b',"note":"\\u0000"}'  # jsonb cannot hold U+0000: base64 in PG
    await store.transact(Transaction(upserts=[(key, value)]))
    [(actor_id, raw)] = await store.list_metas(APP, ACTOR_TYPE, "", None, 10)
    assert actor_id == "nul" and json.loads(raw)["note"] == "\x00"


# ---- the lister's own rules (pure: the memory twin) ---------------------------------


async def test_dot_queues_are_listed_in_queue_id_order() -> None:
    store = MemoryStore()
    # "." and ".." are stored as "~." and "~.." (sorting last), but listed in place
    await write_metas(store, {"-a": 1, ".": 1, "..": 2, ".a": 1, "b": 1})
    await store.transact(Transaction(upserts=[meta_row("~ready~", 1)]))  # not a queue
    lister = QueueLister(lambda: store, APP)
    whole = await lister.page("", None, 100)
    assert [q["queue_id"] for q in whole.queues] == ["-a", ".", "..", ".a", "b"]
    assert whole.next is None
    first = await lister.page("", None, 2)
    second = await lister.page("", first.next, 2)
    third = await lister.page("", second.next, 2)
    ids = [q["queue_id"] for p in (first, second, third) for q in p.queues]
    assert ids == ["-a", ".", "..", ".a", "b"] and third.next is None
    assert [q["queue_id"] for q in (await lister.page(".", None, 10)).queues] == [".", "..", ".a"]
    assert [q["queue_id"] for q in (await lister.page("..", None, 10)).queues] == [".."]


async def test_a_page_scans_a_bounded_number_of_empty_queues(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(queue_list, "SCAN_BUDGET", 300)
    store = MemoryStore()
    await write_metas(store, {f"e-{i:04d}": 0 for i in range(700)} | {"e-zz": 3})
    lister = QueueLister(lambda: store, APP)
    reads = 0
    real = store.list_metas

    async def counted(*args: Any) -> list[tuple[str, bytes]]:
        nonlocal reads
        reads += 1
        return await real(*args)

    store.list_metas = counted  # type: ignore[method-assign]
    page = await lister.page("", None, 5)
    assert page.queues == [] and page.next == "e-0299"  # 300 empty rows, then a cursor
    assert reads == 3  # two batches (200 rows, then 100) and the look-up of "." and ".."
    page = await lister.page("", page.next, 5)
    assert page.queues == [] and page.next == "e-0599"
    page = await lister.page("", page.next, 5)
    assert [q["queue_id"] for q in page.queues] == ["e-zz"] and page.next is None


# ---- GET /queues over HTTP ----------------------------------------------------------


async def test_three_pages_over_250_queues_prefixes_and_empty_queues(settings: Settings) -> None:
    async with running(settings) as c:
        ids = [f"p-{i:03d}" for i in range(250)]
        for i, q in enumerate(ids):
            ok(await c.post(f"/queue/{q}/push", json={"item": {"n": i}, "priority": i % 3}))
            if i == 0:  # listed as soon as its push has answered
                first = ok(await c.get("/queues"))
                assert [e["queue_id"] for e in first["queues"]] == ["p-000"]
        for q in ("p-1", "p-1-x", "other"):  # "p-1-x||meta" sorts before "p-1||meta"
            ok(await c.post(f"/queue/{q}/push", json={"item": {}}))
        expected = sorted([*ids, "p-1", "p-1-x", "other"])

        pages = await all_pages(c)
        assert [len(p) for p in pages] == [100, 100, 53]
        assert [e["queue_id"] for p in pages for e in p] == expected
        entry = pages[0][1]
        stats = ok(await c.get(f"/queue/{entry['queue_id']}"))
        assert entry == {
            "queue_id": stats["queue_id"],
            "depth": 1,
            "in_flight": 0,
            "delayed": 0,
            "locks": 0,
            "oldest_enqueued_at": stats["oldest_enqueued_at"],
        }
        assert isinstance(entry["oldest_enqueued_at"], float)

        ones = [e["queue_id"] for p in await all_pages(c, prefix="p-1", limit=40) for e in p]
        assert ones == sorted(q for q in expected if q.startswith("p-1"))
        assert ok(await c.get("/queues", params={"prefix": "nothing"})) == {
            "queues": [],
            "next": None,
        }

        # emptied queues drop out: popped empty, purged; a lock keeps one listed
        ok(await c.post("/queue/p-000/pop"))
        ok(await c.delete("/queue/p-001"))
        lock = ok(await c.post("/queue/p-002/pop", params={"require_ack": "true"}))
        listed = ok(await c.get("/queues", params={"prefix": "p-00", "limit": 3}))
        assert [e["queue_id"] for e in listed["queues"]] == ["p-002", "p-003", "p-004"]
        assert listed["queues"][0] | {"oldest_enqueued_at": None} == {
            "queue_id": "p-002",
            "depth": 0,
            "in_flight": 1,
            "delayed": 0,
            "locks": 1,
            "oldest_enqueued_at": None,
        }
        assert listed["next"] == "p-004"
        ok(await c.post("/queue/p-002/acknowledge", json={"lock_id": lock["lock_id"]}))
        listed = ok(await c.get("/queues", params={"prefix": "p-00", "limit": 3}))
        assert [e["queue_id"] for e in listed["queues"]] == ["p-003", "p-004", "p-005"]


async def test_bad_parameters_answer_400_invalid_parameter(tmp_path: Path) -> None:
    async with running(Settings(store="sqlite", sqlite_path=str(tmp_path / "s.db"))) as c:
        for query in (
            "limit=0",
            "limit=1001",
            "limit=abc",
            "limit=1.5",
            "limit=",
            "prefix=a%2Fb",
            "prefix=a%20b",
            "after=",
            "after=~x",
            "prefix=" + "a" * 1025,
            "limit=1&limit=2",
            "cursor=abc",
        ):
            assert error_code(await c.get("/queues?" + query), 400) == "INVALID_PARAMETER", query
        assert ok(await c.get("/queues?limit=1000&prefix=&after=a")) == {"queues": [], "next": None}


async def test_listing_needs_an_admin_key_for_the_prefix(tmp_path: Path) -> None:
    settings = Settings(store="sqlite", sqlite_path=str(tmp_path / "s.db"), api_keys=KEYS)
    async with running(settings) as c:
        admin = {"Authorization": f"Bearer {ADMIN}"}
        ok(await c.post("/queue/orders-1/push", json={"item": {}}, headers=admin))
        ok(await c.post("/queue/mail-1/push", json={"item": {}}, headers=admin))
        assert error_code(await c.get("/queues"), 401) == "UNAUTHENTICATED"
        wrong = {"X-API-Key": "not-a-key-at-all"}
        assert error_code(await c.get("/queues", headers=wrong), 401) == "UNAUTHENTICATED"
        pusher = {"X-API-Key": PUSHER}
        assert error_code(await c.get("/queues", headers=pusher), 403) == "FORBIDDEN"
        orders = {"Authorization": f"Bearer {ORDERS_ADMIN}"}
        assert error_code(await c.get("/queues", headers=orders), 403) == "FORBIDDEN"
        mine = ok(await c.get("/queues", params={"prefix": "orders-"}, headers=orders))
        assert [e["queue_id"] for e in mine["queues"]] == ["orders-1"]
        everything = ok(await c.get("/queues", headers=admin))
        assert [e["queue_id"] for e in everything["queues"]] == ["mail-1", "orders-1"]


# ---- per-queue gauges ---------------------------------------------------------------


def gauge_samples(text: str, name: str) -> dict[str, float]:
    out = {}
    for line in text.splitlines():
        if line.startswith(name + "{"):
            labels, value = line.rsplit(" ", 1)
            out[labels[len(name) + len('{queue="') : -2]] = float(value)
    return out


async def test_metrics_show_at_most_the_deepest_n_of_10000_queues(settings: Settings) -> None:
    async with running(settings, metrics_max_queues=25) as c:
        app = c.app  # type: ignore[attr-defined]
        before = ok(await c.get("/queues"))  # nothing yet
        assert before["queues"] == []
        depths = {f"m-{i:05d}": 1 + (i * 7919) % 10_000 for i in range(10_000)}
        depths |= {f"empty-{i}": 0 for i in range(50)}
        await write_metas(app.state.invoker.runtime.store, depths)
        ok(await c.post("/queue/m-live/push", json={"item": {}}))  # and one pushed for real
        await app.state.queue_gauges.refresh()
        started = time.perf_counter()
        text = (await c.get("/metrics")).text
        scrape = time.perf_counter() - started
        depth = gauge_samples(text, "pushpop_queue_depth")
        deepest = sorted(depths, key=lambda q: (depths[q], q), reverse=True)[:25]
        assert depth == {q: float(depths[q]) for q in deepest}
        for name in ("in_flight", "delayed", "oldest_age_seconds"):
            assert set(gauge_samples(text, f"pushpop_queue_{name}")) == set(deepest), name
        age = gauge_samples(text, "pushpop_queue_oldest_age_seconds")[deepest[0]]
        assert age == pytest.approx(time.time() - 1000.0, abs=60)
        assert "pushpop_queues 10001.0" in text
        print(f"scrape over 10,000 queues: {scrape * 1000:.1f} ms")


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
async def test_a_store_without_schema_creates_nothing_until_the_table_exists(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Dapr mode's listing of daprd's table: opening it must not create the table (that
    would race daprd's migrations); once daprd has made it, the listing works."""
    if kind == "sqlite":
        path = tmp_path / "dapr.sqlite3"
        reader: StateStore = SqliteStore(path, group_commit=0, schema=False)
        owner: StateStore = SqliteStore(path, group_commit=0)
    else:
        pg: PostgresServer = request.getfixturevalue("pg")
        url = pg.database("listing_schemaless", fresh=True)
        reader, owner = PostgresStore(url, group_commit=0, schema=False), PostgresStore(url)
    async with reader:
        assert await reader.list_metas(APP, ACTOR_TYPE, "", None, 10) == []
        if kind == "sqlite":
            assert reader._conn.execute("SELECT name FROM sqlite_master").fetchall() == []  # type: ignore[attr-defined]
        else:
            async with reader._pool.connection() as conn:  # type: ignore[attr-defined]
                cur = await conn.execute("SELECT to_regclass('state')")
                assert (await cur.fetchone())[0] is None
        async with owner:  # daprd, making its table
            await write_metas(owner, {"q": 2})
        assert [a for a, _ in await reader.list_metas(APP, ACTOR_TYPE, "", None, 10)] == ["q"]
