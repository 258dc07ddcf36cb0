"""Service-core benchmark: the numbers the service-core issue sets targets for.

Run: ``make bench`` (or ``python -m benchmarks.core --seconds 20``). It starts a
throwaway PostgreSQL and ``pushpop serve --store postgres`` (embedded runtime),
then measures, all in the same run:

1. push latency at a fixed arrival rate (open model: latency counts from the
   scheduled send time, so a slow server cannot hide behind a slow client);
2. pop depth 10 on an empty queue, a 1,000-item queue and a 100,000-item queue;
3. ``pgbench`` with the transaction a push performs (two upserts: meta + tail
   segment) at 16 clients, next to the service's push throughput at 16 clients.

Latencies go into an HDR histogram at microsecond resolution.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import tempfile
import time
from dataclasses import dataclass

import aiohttp
import psycopg
import typer
import uvloop
from hdrh.histogram import HdrHistogram
from rich.console import Console
from rich.table import Table

from actor_service.pgserver import PostgresServer
from actor_service.stores.base import Transaction, json_bytes
from actor_service.stores.postgres import PostgresStore
from api.testing import ServerProcess

console = Console()
app = typer.Typer(add_completion=False)


@dataclass
class Result:
    name: str
    hist: HdrHistogram
    sent: int
    errors: int
    seconds: float

    def row(self) -> list[str]:
        h = self.hist
        return [
            self.name,
            f"{self.sent / self.seconds:.0f}",
            f"{h.get_value_at_percentile(50) / 1000:.2f}",
            f"{h.get_value_at_percentile(99) / 1000:.2f}",
            f"{h.get_max_value() / 1000:.2f}",
            str(self.errors),
        ]


def new_hist() -> HdrHistogram:
    return HdrHistogram(1, 60_000_000, 3)  # 1 µs .. 60 s


async def wait_until(t: float) -> None:
    """Return at perf_counter() ``t``, within microseconds rather than the loop's timer slack.

    An event-loop sleep wakes up late (uvloop: ~0.2 ms at p50, ~0.8 ms at p99 on this
    host), and latency counted from the scheduled send would charge that lateness to
    the server. So: sleep until shortly before, then yield to the loop until it is time
    (responses of requests in flight are handled while we wait).
    """
    delay = t - time.perf_counter() - 0.0015
    if delay > 0:
        await asyncio.sleep(delay)
    while time.perf_counter() < t:  # noqa: ASYNC110 - a spin on the clock, no event to wait on
        await asyncio.sleep(0)


async def open_loop(
    session: aiohttp.ClientSession, rate: float, seconds: float, request: callable, name: str
) -> Result:  # type: ignore[valid-type]
    """Send ``request()`` at ``rate``/s on schedule; latency from the scheduled time."""
    hist = new_hist()
    errors = 0
    tasks: set[asyncio.Task[None]] = set()
    # perf_counter, not loop.time(): uvloop's clock ticks in whole milliseconds
    start = time.perf_counter()
    n = int(rate * seconds)

    async def one(scheduled: float) -> None:
        nonlocal errors
        try:
            status = await request(session)
            if status != 200:
                errors += 1
        except aiohttp.ClientError:
            errors += 1
        hist.record_value(max(1, int((time.perf_counter() - scheduled) * 1e6)))

    for i in range(n):
        scheduled = start + i / rate
        await wait_until(scheduled)
        t = asyncio.create_task(one(scheduled))
        tasks.add(t)
        t.add_done_callback(tasks.discard)
    await asyncio.gather(*tasks)
    return Result(name, hist, n, errors, seconds)


async def closed_loop(
    session: aiohttp.ClientSession, clients: int, seconds: float, request: callable, name: str
) -> Result:  # type: ignore[valid-type]
    hist = new_hist()
    count = errors = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal count, errors
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            status = await request(session)
            hist.record_value(max(1, int((time.perf_counter() - t0) * 1e6)))
            count += 1
            errors += status != 200

    await asyncio.gather(*(worker() for _ in range(clients)))
    return Result(name, hist, count, errors, seconds)


async def closed_loop_per_client(
    s: aiohttp.ClientSession, clients: int, seconds: float, url: str
) -> Result:
    parts = await asyncio.gather(
        *(closed_loop(s, 1, seconds, pusher(url, f"push-c{i}"), "") for i in range(clients))
    )
    hist = new_hist()
    for p in parts:
        hist.add(p.hist)
    return Result(
        f"push, {clients} clients, own queue each",
        hist,
        sum(p.sent for p in parts),
        sum(p.errors for p in parts),
        seconds,
    )


def pusher(url: str, qid: str, priority: int = 1) -> callable:  # type: ignore[valid-type]
    body = json.dumps({"item": {"payload": "x" * 64}, "priority": priority})

    async def req(session: aiohttp.ClientSession) -> int:
        async with session.post(
            f"{url}/queue/{qid}/push", data=body, headers={"content-type": "application/json"}
        ) as r:
            await r.read()
            return r.status

    return req


def popper(url: str, qid: str, depth: int = 10) -> callable:  # type: ignore[valid-type]
    async def req(session: aiohttp.ClientSession) -> int:
        async with session.post(f"{url}/queue/{qid}/pop?depth={depth}") as r:
            await r.read()
            return r.status

    return req


async def fill(session: aiohttp.ClientSession, url: str, qid: str, n: int) -> None:
    for start in range(0, n, 1000):
        k = min(1000, n - start)
        body = {
            "items": [
                {"item": {"n": start + i, "payload": "x" * 64}, "priority": 1} for i in range(k)
            ]
        }
        async with session.post(f"{url}/queue/{qid}/push", json=body) as r:
            assert r.status == 200, await r.text()


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


def pgbench(pg: PostgresServer, clients: int, seconds: int) -> float:
    """TPS of the push transaction (two upserts in one transaction) straight on PostgreSQL."""
    script = tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False)
    script.write(
        "\\set q random(1, 1000000000)\n"
        "BEGIN;\n"
        "INSERT INTO state (key, value, isbinary) VALUES ('bench||QueueActor||q' || :client_id "
        '|| \'||meta\', \'{"next_id": 1, "pri": {"1": [0, 1, 1.0]}}\', false) ON CONFLICT (key) '
        "DO UPDATE SET value = excluded.value, isbinary = excluded.isbinary, "
        "updatedate = CURRENT_TIMESTAMP;\n"
        "INSERT INTO state (key, value, isbinary) VALUES ('bench||QueueActor||q' || :client_id "
        '|| \'||s:1:\' || (:q % 100), \'{"start": 0, "items": [[1, {"payload": "xxxx"}, 1.0]]}\','
        " false) ON CONFLICT (key) DO UPDATE SET value = excluded.value, "
        "isbinary = excluded.isbinary, updatedate = CURRENT_TIMESTAMP;\n"
        "END;\n"
    )
    script.close()
    out = subprocess.run(
        [
            "pgbench",
            "-n",
            "-M",
            "prepared",
            "-c",
            str(clients),
            "-j",
            "2",
            "-T",
            str(seconds),
            "-f",
            script.name,
            pg.url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for line in out.splitlines():
        if line.startswith("tps"):
            return float(line.split("=")[1].split()[0])
    raise RuntimeError(out)


async def run(url: str, pg: PostgresServer, seconds: float, rate: float) -> None:
    results: list[Result] = []
    conn = aiohttp.TCPConnector(limit=256)
    async with aiohttp.ClientSession(connector=conn) as s:
        # warm up connections, imports and the pool
        await closed_loop(s, 4, 2, pusher(url, "warm"), "warmup")
        results.append(
            await open_loop(s, rate, seconds, pusher(url, "push-rate"), f"push @ {rate:.0f}/s")
        )
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
        for label, runs in parts.items():
            merged = new_hist()
            for r in runs:
                merged.add(r.hist)
            results.append(
                Result(
                    f"pop depth 10, {label} queue @ {rate:.0f}/s",
                    merged,
                    sum(r.sent for r in runs),
                    sum(r.errors for r in runs),
                    sum(r.seconds for r in runs),
                )
            )
        throughput = await closed_loop_per_client(s, 16, seconds, url)
        results.append(throughput)
        results.append(
            await closed_loop(s, 16, seconds, pusher(url, "push-16"), "push, 16 clients, one queue")
        )
    store_tps = await store_ceiling(pg.url, 16, seconds)
    tps = pgbench(pg, 16, int(seconds))

    table = Table(title="pushpop service core (embedded runtime, PostgreSQL on loopback)")
    for col in ("scenario", "req/s", "p50 ms", "p99 ms", "max ms", "errors"):
        table.add_column(col, justify="right" if col != "scenario" else "left")
    for r in results:
        table.add_row(*r.row())
    console.print(table)
    by = {r.name: r for r in results}
    pop_empty = by[f"pop depth 10, empty queue @ {rate:.0f}/s"].hist.get_value_at_percentile(50)
    pop_1k = by[f"pop depth 10, 1K queue @ {rate:.0f}/s"].hist.get_value_at_percentile(50)
    pop_deep = by[f"pop depth 10, 100K queue @ {rate:.0f}/s"].hist.get_value_at_percentile(50)
    push_tps = throughput.sent / throughput.seconds
    console.print(f"pop p50, 100K queue / empty queue: {pop_deep / pop_empty:.2f}")
    console.print(f"pop p50, 100K queue / 1K queue:    {pop_deep / pop_1k:.2f}")
    console.print(f"pgbench push transaction, 16 clients: {tps:.0f} tps")
    console.print(
        f"PostgresStore.transact alone (psycopg, same process model), 16 tasks: "
        f"{store_tps:.0f} tx/s = {store_tps / tps:.0%} of pgbench"
    )
    console.print(
        f"service push, 16 clients: {push_tps:.0f} req/s = {push_tps / tps:.0%} of pgbench, "
        f"{push_tps / store_tps:.0%} of the store layer alone"
    )


@app.command()
def main(seconds: float = 15.0, rate: float = 200.0) -> None:
    """Measure push/pop latency and throughput against raw PostgreSQL."""
    with PostgresServer() as pg:
        server = ServerProcess(store="postgres", database_url=pg.url).start()
        try:
            uvloop.run(run(server.url, pg, seconds, rate))
        finally:
            server.stop()


if __name__ == "__main__":
    app()
