"""Service-core benchmark (``make bench``): the numbers the service-core issue sets targets for.

Push latency at a fixed arrival rate next to its floor (``GET /health`` + pgbench's push
statement), pop on an empty, a 1K and a 100K queue, and push throughput at 16 clients
against pgbench with the CPU per push, all in one run; figures in docs/benchmarks.md.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp
import psutil
import psycopg
import typer
import uvloop
from rich.console import Console
from rich.table import Table

from actor_service.stores.base import Transaction, json_bytes
from actor_service.stores.postgres import PostgresStore
from load_tests.measure.cpu import Meter
from load_tests.measure.load import (
    Result,
    closed_loop,
    fill,
    getter,
    merge,
    open_loop,
    popper,
    pusher,
)
from load_tests.measure.pgbench import PUSH_STATEMENT, run_pgbench
from supervise.pgserver import PostgresServer
from supervise.server import ServerProcess

console = Console()
app = typer.Typer(add_completion=False)


async def closed_loop_per_client(
    s: aiohttp.ClientSession, clients: int, seconds: float, url: str
) -> Result:
    parts = await asyncio.gather(
        *(closed_loop(s, 1, seconds, pusher(url, f"push-c{i}"), "") for i in range(clients))
    )
    return merge(f"push, {clients} clients, own queue each", list(parts), concurrent=True)


async def store_ceiling(url: str, tasks: int, seconds: float) -> float:
    """Push-shaped transactions (meta + a half-full segment) through our PostgresStore
    from one Python process: what the driver layer allows before any HTTP or actor work."""
    store = PostgresStore(url, max_size=tasks)
    await store.open()
    meta = json_bytes({"next_id": 1, "pri": {"1": [0, 1, 1.0]}})
    segment = json_bytes(
        {"start": 0, "items": [[n, {"payload": "x" * 64}, 1.0] for n in range(50)]}
    )
    count = 0
    deadline = time.perf_counter() + seconds

    async def worker(k: int) -> None:
        nonlocal count
        keys = (f"bench||QueueActor||s{k}||meta", f"bench||QueueActor||s{k}||s:1:0")
        while time.perf_counter() < deadline:
            await store.transact(Transaction(upserts=[(keys[0], meta), (keys[1], segment)]))
            count += 1

    try:
        await asyncio.gather(*(worker(k) for k in range(tasks)))
    finally:
        await store.close()
    return count / seconds


def verdict(ok: bool) -> str:
    return "[green]MET[/green]" if ok else "[red]NOT MET[/red]"


async def run(url: str, pg: PostgresServer, seconds: float, rate: float, server_pid: int) -> None:
    results: list[Result] = []
    assert pg.pid is not None
    meter = Meter(pg.pid)
    push_cpu: dict[str, float] = {}
    health_cpu: dict[str, float] = {}
    conn = aiohttp.TCPConnector(limit=256)
    async with aiohttp.ClientSession(connector=conn) as s:
        # warm up connections, imports and the pool
        await closed_loop(s, 4, 2, pusher(url, "warm"), "warmup")
        # the floor: the same client and HTTP stack doing no work, at the same rate
        health = await open_loop(s, rate, seconds / 3, getter(url), f"GET /health @ {rate:.0f}/s")
        results.append(health)
        push = await open_loop(s, rate, seconds, pusher(url, "push-rate"), f"push @ {rate:.0f}/s")
        results.append(push)
        # pop depth 10 at a steady rate on an empty, a small and a deep queue
        await fill(s, url, "pop-1k", 1_000 + int(rate * seconds) * 10)
        t0 = time.perf_counter()
        await fill(s, url, "pop-100k", 100_000 + int(rate * seconds) * 10)
        console.print(f"prepopulated 100k items in {time.perf_counter() - t0:.1f}s")
        # the prepopulation wrote ~100 MB of WAL: checkpoint now rather than mid-measurement,
        # and interleave the three queues over rounds so that drift hits them alike
        with psycopg.connect(pg.url, autocommit=True) as conn:
            conn.execute("CHECKPOINT")
        pops = {"empty": "pop-empty", "1K": "pop-1k", "100K": "pop-100k"}
        parts: dict[str, list[Result]] = {label: [] for label in pops}
        for _ in range(3):
            for label, qid in pops.items():
                parts[label].append(await open_loop(s, rate, seconds / 3, popper(url, qid), label))
        pop: dict[str, Result] = {}
        for label, runs in parts.items():
            pop[label] = merge(f"pop depth 10, {label} queue @ {rate:.0f}/s", runs)
            results.append(pop[label])
        with meter.measure(push_cpu, server_pid):
            throughput = await closed_loop_per_client(s, 16, seconds, url)
        results.append(throughput)
        with meter.measure(health_cpu, server_pid):
            health16 = await closed_loop(s, 16, seconds / 3, getter(url), "GET /health, 16 clients")
        results.append(health16)
        results.append(
            await closed_loop(s, 16, seconds, pusher(url, "push-16"), "push, 16 clients, one queue")
        )
    store_tps = await store_ceiling(pg.url, 16, seconds)
    db_paced = run_pgbench(pg.url, PUSH_STATEMENT, 1, seconds / 2, rate=rate)
    tx16 = run_pgbench(pg.url, PUSH_STATEMENT, 16, seconds)

    table = Table(title="pushpop service core (embedded runtime, PostgreSQL on loopback)")
    for col in ("scenario", "req/s", "p50 ms", "p99 ms", "max ms", "errors"):
        table.add_column(col, justify="right" if col != "scenario" else "left")
    for r in results:
        table.add_row(*r.row())
    table.add_row(
        f"pgbench, push statement @ {rate:.0f}/s, 1 client",
        f"{db_paced.tps:.0f}",
        f"{db_paced.p50_ms:.2f}",
        f"{db_paced.p99_ms:.2f}",
        "",
        "",
    )
    console.print(table)

    pop_empty, pop_1k, pop_deep = (pop[label].ms(50) for label in ("empty", "1K", "100K"))
    push_p50, push_p99, health_p50 = push.ms(50), push.ms(99), health.ms(50)
    push_tps = throughput.sent / throughput.seconds
    floor = health_p50 + db_paced.p50_ms
    console.print(
        f"push @ {rate:.0f}/s: p50 {push_p50:.2f} ms (target <= 2: {verdict(push_p50 <= 2)}), "
        f"p99 {push_p99:.2f} ms (target <= 10: {verdict(push_p99 <= 10)})"
    )
    console.print(
        f"  floor on this host: GET /health p50 {health_p50:.2f} ms (client + HTTP, no work) + "
        f"pgbench's push statement alone p50 {db_paced.p50_ms:.2f} ms = {floor:.2f} ms; "
        f"push / floor = {push_p50 / floor:.2f}"
    )
    console.print(
        f"pop p50, 100K queue / empty queue: {pop_deep / pop_empty:.2f} "
        f"(target <= 1.10: {verdict(pop_deep / pop_empty <= 1.10)}; an empty pop writes nothing)"
    )
    console.print(
        f"pop p50, 100K queue / 1K queue:    {pop_deep / pop_1k:.2f} "
        f"(same work, 100x the length: {verdict(pop_deep / pop_1k <= 1.10)})"
    )
    console.print(f"pgbench, 16 clients: the store's two-upsert statement {tx16.tps:.0f} tps")
    console.print(
        f"PostgresStore.transact alone (psycopg, one process), 16 tasks: {store_tps:.0f} tx/s = "
        f"{store_tps / tx16.tps:.0%} of pgbench"
    )
    console.print(
        f"service push, 16 clients: {push_tps:.0f} req/s = {push_tps / tx16.tps:.0%} of the "
        f"pgbench (target >= 60%: {verdict(push_tps >= 0.6 * tx16.tps)}), "
        f"{push_tps / store_tps:.0%} of the store layer alone"
    )
    cores = psutil.cpu_count() or 1
    budget = cores * 1e6 / (0.6 * tx16.tps)
    used = {k: v / throughput.sent * 1e6 for k, v in push_cpu.items()}
    noop = {k: v / health16.sent * 1e6 for k, v in health_cpu.items()}
    console.print(
        "CPU per push at 16 clients (µs): "
        + ", ".join(f"{k} {v:.0f}" for k, v in used.items())
        + f" = {sum(used.values()):.0f}; 60% of pgbench on {cores} cores allows "
        f"{budget:.0f} µs per push in all; a GET /health costs "
        + ", ".join(f"{k} {v:.0f}" for k, v in noop.items() if k != "PostgreSQL")
    )


@app.command()
def main(seconds: float = 15.0, rate: float = 200.0) -> None:
    """Measure push/pop latency and throughput against raw PostgreSQL."""
    with PostgresServer() as pg:
        server = ServerProcess(store="postgres", database_url=pg.url).start()
        try:
            assert server.pid is not None
            uvloop.run(run(server.url, pg, seconds, rate, server.pid))
        finally:
            server.stop()


if __name__ == "__main__":
    app()
