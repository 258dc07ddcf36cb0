"""Seeing the queues at scale: a ``GET /queues`` page and a ``/metrics`` scrape over 10,000 queues.

``python -m benchmarks.queue_listing [--queues N] [--rounds N] [--database-url URL]``:
the queues' rows written straight into the store, then the real app timed in-process
(``httpx.ASGITransport``), on SQLite and PostgreSQL. Figures: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from pathlib import Path

import httpx

from actor_service.actor import ACTOR_TYPE
from actor_service.queue_layout import new_meta
from actor_service.stores.base import StateStore, Transaction, actor_key, json_bytes
from api.app import create_app
from api.settings import Settings


def rows(queues: int, app_id: str) -> list[tuple[str, bytes]]:
    out = []
    for i in range(queues):
        qid = f"team-{i % 10}-queue-{i:06d}"
        meta = new_meta()
        meta["pri"] = {"1": [0, 40 + i % 50, 1_767_000_000.0 + i]}
        out.append((actor_key(app_id, ACTOR_TYPE, qid, "meta"), json_bytes(meta)))
        for k in range(3):
            segment = {"start": k * 16, "items": [[f"{k:016d}", {"n": k}, 1_767_000_000.0]]}
            out.append((actor_key(app_id, ACTOR_TYPE, qid, f"s:1:{k}"), json_bytes(segment)))
    return out


async def fill(store: StateStore, queues: int, app_id: str) -> None:
    all_rows = rows(queues, app_id)
    for i in range(0, len(all_rows), 2000):
        await store.transact(Transaction(upserts=all_rows[i : i + 2000]))


async def timed(call: Callable[[], Awaitable[httpx.Response]], rounds: int) -> list[float]:
    await call()  # warm: prepared statements, caches
    out = []
    for _ in range(rounds):
        started = time.perf_counter()
        r = await call()
        out.append((time.perf_counter() - started) * 1000)
        assert r.status_code == 200, r.text
    return out


def line(name: str, ms: list[float]) -> str:
    p95 = statistics.quantiles(ms, n=20)[-1] if len(ms) >= 20 else max(ms)
    return f"  {name:<44} median {statistics.median(ms):7.2f} ms   p95 {p95:7.2f} ms"


async def run(settings: Settings, queues: int, rounds: int, label: str) -> None:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        await app.state.queue_gauges.stop()  # the benchmark refreshes by itself
        store = app.state.invoker.runtime.store
        started = time.perf_counter()
        await fill(store, queues, settings.app_id)
        print(f"{label}: {queues} queues written in {time.perf_counter() - started:.1f}s")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as c:
            first = await c.get("/queues")
            middle_cursor = f"team-5-queue-{queues // 2:06d}"
            print(
                line(
                    "GET /queues (first page of 100)", await timed(lambda: c.get("/queues"), rounds)
                )
            )
            print(
                line(
                    "GET /queues?after=<middle> (100)",
                    await timed(lambda: c.get("/queues", params={"after": middle_cursor}), rounds),
                )
            )
            print(line("GET /queues?prefix=team-7-&limit=1000", await timed(
                lambda: c.get("/queues", params={"prefix": "team-7-", "limit": "1000"}),
                rounds)))  # fmt: skip
            assert len(first.json()["queues"]) == 100
            refresh = []
            for _ in range(max(3, rounds // 10)):
                t = time.perf_counter()
                await app.state.queue_gauges.refresh()
                refresh.append((time.perf_counter() - t) * 1000)
            print(line("gauge refresh (lists all, background)", refresh))
            scrape = await timed(lambda: c.get("/metrics"), rounds)
            print(line(f"GET /metrics ({settings.metrics_max_queues} queues labelled)", scrape))
            series = (await c.get("/metrics")).text.count("pushpop_queue_depth{")
            print(f"  pushpop_queue_depth series: {series}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--queues", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="pushpop-list-")))
        sqlite = Settings(store="sqlite", sqlite_path=str(tmp / "bench.sqlite3"))
        asyncio.run(run(sqlite, args.queues, args.rounds, "SQLite"))
        url = args.database_url
        if url is None:
            from supervise.pgserver import PostgresServer

            url = stack.enter_context(PostgresServer()).database("listing_bench", fresh=True)
        pg = Settings(store="postgres", database_url=url)
        asyncio.run(run(pg, args.queues, args.rounds, "PostgreSQL"))


if __name__ == "__main__":
    main()
