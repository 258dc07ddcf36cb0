"""Group commit against real PostgreSQL and real SQLite.

Fewer commits than saves, every save readable by a fresh store; a save past its deadline
answers 503 unwritten (one near it is batched apart); one bad save does not fail its batch;
PostgreSQL killed mid-run fails saves only with StoreUnavailable and they recover in the
same store; through HTTP, every push answered 2xx survives a SIGKILL of the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import sqlite3
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from test_faults import fresh_database

from actor_service.errors import StoreUnavailable
from actor_service.stores.base import StateStore, Transaction, actor_key, call_deadline
from actor_service.stores.postgres import PostgresStore
from actor_service.stores.sqlite import SqliteStore
from supervise.pgserver import PostgresServer
from supervise.server import ServerProcess


def make_store(kind: str, pg: PostgresServer, path: Path, **kw: object) -> StateStore:
    if kind == "postgres":
        return PostgresStore(pg.url, **kw)  # type: ignore[arg-type]
    return SqliteStore(path / "gc.sqlite3", **kw)  # type: ignore[arg-type]


@pytest.fixture(params=["postgres", "sqlite"])
async def store(
    request: pytest.FixtureRequest, pg: PostgresServer, tmp_path: Path
) -> AsyncIterator[StateStore]:
    s = make_store(request.param, pg, tmp_path, group_commit=1)
    await s.open()
    try:
        yield s
    finally:
        await s.close()


def _json(value: bytes | None) -> object:
    return None if value is None else json.loads(value)


def key(run: str, actor: int, name: str) -> str:
    return actor_key("pushpop", "QueueActor", f"{run}-{actor}", name)


def save(run: str, actor: int, n: int) -> Transaction:
    return Transaction(
        [(key(run, actor, "meta"), b'{"n":%d}' % n), (key(run, actor, "s:1:0"), b"[%d]" % n)]
    )


async def test_concurrent_saves_share_commits_and_all_are_stored(
    store: StateStore, pg: PostgresServer, tmp_path: Path
) -> None:
    run = uuid.uuid4().hex[:8]
    committer = store.committer  # type: ignore[attr-defined]
    before_batches, before_saves = committer.batches, committer.saves

    async def actor(a: int) -> None:
        for n in range(5):  # one call at a time per actor, like the runtime
            await store.transact(save(run, a, n))

    await asyncio.gather(*(actor(a) for a in range(60)))
    saves = committer.saves - before_saves
    batches = committer.batches - before_batches
    assert saves == 300
    assert batches < saves / 2, f"{saves} saves in {batches} commits: no batching"
    fresh = make_store(store.name, pg, tmp_path, group_commit=0)
    await fresh.open()
    try:
        for a in range(60):
            assert _json(await fresh.get(key(run, a, "meta"))) == {"n": 4}
            assert (await fresh.get(key(run, a, "s:1:0"))) == b"[4]"
    finally:
        await fresh.close()


async def test_same_key_in_one_batch_last_write_wins(store: StateStore) -> None:
    """Concurrent saves never share keys in the runtime; if they ever do, order holds."""
    run = uuid.uuid4().hex[:8]
    k, other = key(run, 0, "meta"), key(run, 1, "meta")
    blocker = asyncio.create_task(store.transact(Transaction([(other, b"0")])))
    await asyncio.sleep(0)  # in flight: the next three queue into one batch
    first = asyncio.create_task(store.transact(Transaction([(k, b"1")])))
    gone = asyncio.create_task(store.transact(Transaction(deletes=[other])))
    last = asyncio.create_task(store.transact(Transaction([(k, b"2")])))
    await asyncio.gather(blocker, first, gone, last)
    assert await store.get(k) == b"2"
    assert await store.get(other) is None


@contextlib.contextmanager
def row_locked(kind: str, pg: PostgresServer, path: Path, k: str, seconds: float) -> Iterator[None]:
    """Another session holds a write lock (the row in PostgreSQL, the database in
    SQLite) for ``seconds`` from a thread, so that the store's commit waits."""
    if kind == "postgres":
        conn = psycopg.connect(pg.url)
        conn.execute(
            "INSERT INTO state (key, value, isbinary) VALUES (%s, '0', false) "
            "ON CONFLICT (key) DO UPDATE SET value = '0'",
            (k,),
        )
    else:
        conn = sqlite3.connect(path / "gc.sqlite3", isolation_level=None, check_same_thread=False)
        conn.execute("BEGIN IMMEDIATE")
    timer = threading.Timer(seconds, conn.rollback if kind == "postgres" else conn.commit)
    timer.start()
    try:
        yield
    finally:
        timer.join()
        conn.close()


async def with_deadline(store: StateStore, tx: Transaction, seconds: float | None) -> None:
    token = call_deadline.set(None if seconds is None else time.monotonic() + seconds)
    try:
        await store.transact(tx)
    finally:
        call_deadline.reset(token)


async def test_expired_caller_gets_503_and_its_save_is_not_written(
    store: StateStore, pg: PostgresServer, tmp_path: Path
) -> None:
    run = uuid.uuid4().hex[:8]
    blocked = key(run, 0, "meta")
    with row_locked(store.name, pg, tmp_path, blocked, 0.8):
        first = asyncio.create_task(with_deadline(store, Transaction([(blocked, b"1")]), None))
        await asyncio.sleep(0.1)  # in flight, waiting for the lock
        late = asyncio.create_task(with_deadline(store, save(run, 1, 1), 0.3))
        patient = asyncio.create_task(with_deadline(store, save(run, 2, 1), None))
        results = await asyncio.gather(first, late, patient, return_exceptions=True)
    assert results[0] is None and results[2] is None, results
    assert isinstance(results[1], StoreUnavailable), results
    assert await store.get(key(run, 1, "meta")) is None
    assert _json(await store.get(key(run, 2, "meta"))) == {"n": 1}


async def test_caller_near_its_deadline_is_batched_apart(
    pg: PostgresServer, tmp_path: Path
) -> None:
    """PostgreSQL: a save with 0.6 s left whose row is locked times out at its deadline
    (503, nothing written, even once the lock is gone); the save batched with it that
    has time commits at once instead of sharing that timeout."""
    store = PostgresStore(pg.url, group_commit=1, statement_timeout=5.0)
    await store.open()
    run = uuid.uuid4().hex[:8]
    first_key, urgent_key = key(run, 0, "meta"), key(run, 1, "meta")
    try:
        with row_locked("postgres", pg, tmp_path, first_key, 0.3):
            with row_locked("postgres", pg, tmp_path, urgent_key, 2.0):
                t0 = time.monotonic()
                first = asyncio.create_task(
                    with_deadline(store, Transaction([(first_key, b"1")]), None)
                )
                await asyncio.sleep(0.1)
                urgent = asyncio.create_task(
                    with_deadline(store, Transaction([(urgent_key, b"1")]), 0.6)
                )
                relaxed = asyncio.create_task(with_deadline(store, save(run, 2, 1), None))
                await first
                await relaxed
                relaxed_at = time.monotonic() - t0
                with pytest.raises(StoreUnavailable):
                    await urgent
                urgent_at = time.monotonic() - t0
        assert relaxed_at < 0.6, f"the relaxed save waited for the urgent one ({relaxed_at:.2f}s)"
        assert urgent_at < 1.0, f"the urgent save answered after its deadline ({urgent_at:.2f}s)"
        assert await store.get(urgent_key) is None  # the locker rolled back; ours never landed
        assert await store.get(key(run, 2, "s:1:0")) == b"[1]"
    finally:
        await store.close()


async def test_one_bad_save_does_not_fail_its_batch(store: StateStore) -> None:
    run = uuid.uuid4().hex[:8]
    blocker = asyncio.create_task(store.transact(save(run, 0, 0)))
    await asyncio.sleep(0)
    bad_value = b"not json" if store.name == "postgres" else None
    bad = asyncio.create_task(
        store.transact(Transaction([(key(run, 1, "meta"), bad_value)]))  # type: ignore[list-item]
    )
    good = [asyncio.create_task(store.transact(save(run, a, 1))) for a in range(2, 8)]
    results = await asyncio.gather(blocker, bad, *good, return_exceptions=True)
    assert isinstance(results[1], Exception) and not isinstance(results[1], StoreUnavailable)
    assert all(r is None for r in results[2:]), results
    assert await store.get(key(run, 1, "meta")) is None
    for a in range(2, 8):
        assert await store.get(key(run, a, "s:1:0")) == b"[1]"


async def test_postgres_killed_mid_run_fails_batches_with_503_and_recovers(
    tmp_path: Path,
) -> None:
    pg = PostgresServer().start()
    store = PostgresStore(pg.url, group_commit=2, pool_timeout=1.0, statement_timeout=1.0)
    await store.open()
    run = uuid.uuid4().hex[:8]
    stored: set[int] = set()
    other_errors: list[BaseException] = []
    unavailable = 0
    stop = time.monotonic() + 6.0
    try:

        async def actor(a: int) -> None:
            nonlocal unavailable
            while time.monotonic() < stop:
                try:
                    await with_deadline(store, Transaction([(key(run, a, "meta"), b"1")]), 2.0)
                    stored.add(a)
                except StoreUnavailable:
                    unavailable += 1
                    await asyncio.sleep(0.05)
                except Exception as exc:
                    other_errors.append(exc)

        async def outage() -> None:
            await asyncio.sleep(1.0)
            await asyncio.to_thread(pg.kill)
            await asyncio.sleep(1.5)
            await asyncio.to_thread(pg.start)

        await asyncio.gather(outage(), *(actor(a) for a in range(40)))
        assert not other_errors, other_errors[:3]
        assert unavailable > 0, "the outage was not noticed"
        # back in service: every actor's save succeeds again, in the same store object
        await asyncio.gather(
            *(store.transact(Transaction([(key(run, a, "s:1:0"), b"2")])) for a in range(40))
        )
        for a in range(40):
            assert await store.get(key(run, a, "s:1:0")) == b"2"
        for a in stored:
            assert await store.get(key(run, a, "meta")) == b"1"
    finally:
        await store.close()
        pg.cleanup()


# ---------------------------------------------------------------------- through HTTP
def push_until_killed(server: ServerProcess, queues: int, seconds: float) -> dict[str, set[int]]:
    """32 concurrent clients push to ``queues`` queues; the server is SIGKILLed after
    ``seconds``. Returns the ids answered 2xx, per queue."""
    acked: dict[str, set[int]] = {f"q{q}": set() for q in range(queues)}
    lock = threading.Lock()
    stop = threading.Event()

    def client(seed: int) -> None:
        rnd = random.Random(seed)
        with httpx.Client(base_url=server.url, timeout=10) as c:
            while not stop.is_set():
                q = f"q{rnd.randrange(queues)}"
                try:
                    r = c.post(f"/queue/{q}/push", json={"item": {"s": seed}, "priority": 1})
                except httpx.HTTPError:
                    continue
                if r.status_code == 200:
                    with lock:
                        acked[q].update(r.json()["ids"])

    threads = [threading.Thread(target=client, args=(k,)) for k in range(32)]
    for t in threads:
        t.start()
    time.sleep(seconds)
    server.kill()
    stop.set()
    for t in threads:
        t.join(timeout=15)
    return acked


@pytest.mark.parametrize("kind", ["postgres", "sqlite"])
def test_sigkill_under_concurrent_pushes_keeps_every_2xx(kind: str, tmp_path: Path) -> None:
    with contextlib.ExitStack() as stack:
        if kind == "postgres":
            pg = stack.enter_context(PostgresServer())
            url = fresh_database(pg, "gc_crash")
            server = ServerProcess(store="postgres", database_url=url, log_path=tmp_path / "s.log")
        else:
            server = ServerProcess(
                store="sqlite", sqlite_path=tmp_path / "gc.sqlite3", log_path=tmp_path / "s.log"
            )
        server.env["PUSHPOP_GROUP_COMMIT"] = "2"
        server.start()
        acked = push_until_killed(server, 50, 3.0)
        server.start()
        try:
            total = sum(len(ids) for ids in acked.values())
            assert total > 200, f"too little load to prove anything: {total} pushes"
            with httpx.Client(base_url=server.url, timeout=30) as c:
                for q, ids in acked.items():
                    present: set[int] = set()
                    while True:
                        r = c.post(f"/queue/{q}/pop", params={"depth": 100})
                        assert r.status_code == 200, r.text
                        items = r.json()["items"]
                        if not items:
                            break
                        present.update(i["id"] for i in items)
                    assert ids <= present, f"{q}: 2xx pushes lost: {sorted(ids - present)[:10]}"
        finally:
            server.stop()
