"""Service-core benchmark: the numbers the service-core issue sets targets for.

Run: ``make bench`` (or ``python -m benchmarks.core --seconds 20``). It starts a
throwaway PostgreSQL and ``pushpop serve --store postgres`` (embedded runtime),
then measures, all in the same run:

1. push latency at a fixed arrival rate (open model: latency counts from the
   scheduled send time, so a slow server cannot hide behind a slow client), next to
   its floor on this host: ``GET /health`` and pgbench's push statement alone, both
   at the same rate;
2. pop depth 10 on an empty queue, a 1,000-item queue and a 100,000-item queue;
3. ``pgbench`` with the writes a push performs (two upserts: meta + tail segment, in
   the store's own statement) at 16 clients, next to the service's push
   throughput at 16 clients and the CPU each process spends per push.

Latencies go into an HDR histogram at microsecond resolution.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import psutil
import psycopg
import typer
import uvloop
from hdrh.histogram import HdrHistogram
from rich.console import Console
from rich.table import Table

from actor_service.stores.base import Transaction, json_bytes
from actor_service.stores.postgres import PostgresStore, inline_statement
from supervise.pgserver import PostgresServer
from supervise.server import ServerProcess

console = Console()
app = typer.Typer(add_completion=False)


@dataclass
class Result:
    name: str
    hist: HdrHistogram
    sent: int
    errors: int
    seconds: float

    def ms(self, percentile: float) -> float:
        return self.hist.get_value_at_percentile(percentile) / 1000

    def row(self) -> list[str]:
        return [
            self.name,
            f"{self.sent / self.seconds:.0f}",
            f"{self.ms(50):.2f}",
            f"{self.ms(99):.2f}",
            f"{self.hist.get_max_value() / 1000:.2f}",
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


# The push's writes, as pgbench runs them: the meta row and a segment row of the
# client's own queue, in the statement PostgresStore itself sends (one multi-row upsert
# in autocommit, atomic on its own), built by the store's own code.
_KEY = "'bench||QueueActor||q' || :client_id || '||{name}'"
STATEMENT = (
    inline_statement(
        [
            (_KEY.format(name="meta"), """'{"next_id": 1, "pri": {"1": [0, 1, 1.0]}}'"""),
            (
                _KEY.format(name="s:1:0"),
                """'{"start": 0, "items": [[1, {"payload": "xxxx"}, 1.0]]}'""",
            ),
        ]
    )
    + "\n"
)


@dataclass
class PgbenchResult:
    tps: float
    p50_ms: float = float("nan")
    p99_ms: float = float("nan")


def pgbench(
    pg: PostgresServer, script: str, clients: int, seconds: float, rate: float | None = None
) -> PgbenchResult:
    """Run pgbench with ``script``; with ``rate``, paced and with latency percentiles.

    Paced latencies come from pgbench's per-transaction log; pgbench measures them
    from the scheduled start, like :func:`open_loop` does for the service.
    """
    with tempfile.TemporaryDirectory() as tmp:
        path = f"{tmp}/push.sql"
        with open(path, "w") as f:
            f.write(script)
        args = [
            "pgbench",
            "-n",
            "-M",
            "prepared",
            "-c",
            str(clients),
            "-j",
            "2" if clients > 1 else "1",
        ]
        args += ["-T", str(max(1, round(seconds))), "-f", path]
        if rate:
            args += ["-R", str(rate), "-l"]
        out = subprocess.run(
            [*args, pg.url], capture_output=True, text=True, check=True, cwd=tmp
        ).stdout
        tps = next(
            (
                float(line.split("=")[1].split()[0])
                for line in out.splitlines()
                if line.startswith("tps")
            ),
            None,
        )
        if tps is None:
            raise RuntimeError(out)
        if not rate:
            return PgbenchResult(tps)
        hist = new_hist()
        for log in Path(tmp).glob("pgbench_log*"):
            for line in log.read_text().splitlines():
                hist.record_value(max(1, int(line.split()[2])))  # µs
        return PgbenchResult(
            tps, hist.get_value_at_percentile(50) / 1000, hist.get_value_at_percentile(99) / 1000
        )


def health_probe(url: str) -> callable:  # type: ignore[valid-type]
    async def req(session: aiohttp.ClientSession) -> int:
        async with session.get(f"{url}/health") as r:
            await r.read()
            return r.status

    return req


class CpuMeter:
    """CPU seconds spent by the server, PostgreSQL and this load generator over a phase.

    On a 2-core host the three share the cores, so a throughput target is also a CPU
    budget per request; this is what shows where that budget goes.
    """

    def __init__(self, server_pid: int) -> None:
        self.server = psutil.Process(server_pid)

    def _now(self) -> dict[str, float]:
        pg = 0.0
        for proc in psutil.process_iter(["name"]):
            if (proc.info["name"] or "").startswith("postgres"):
                with contextlib.suppress(psutil.Error):
                    pg += sum(proc.cpu_times()[:2])
        return {
            "server": sum(self.server.cpu_times()[:2]),
            "PostgreSQL": pg,
            "load generator": sum(os.times()[:2]),
        }

    @contextlib.contextmanager
    def measure(self, into: dict[str, float]) -> Iterator[None]:
        before = self._now()
        yield
        after = self._now()
        into.update({k: after[k] - before[k] for k in before})


def verdict(ok: bool) -> str:
    return "[green]MET[/green]" if ok else "[red]NOT MET[/red]"


async def run(url: str, pg: PostgresServer, seconds: float, rate: float, server_pid: int) -> None:
    results: list[Result] = []
    meter = CpuMeter(server_pid)
    push_cpu: dict[str, float] = {}
    health_cpu: dict[str, float] = {}
    conn = aiohttp.TCPConnector(limit=256)
    async with aiohttp.ClientSession(connector=conn) as s:
        # warm up connections, imports and the pool
        await closed_loop(s, 4, 2, pusher(url, "warm"), "warmup")
        # the floor: the same client and HTTP stack doing no work, at the same rate
        health = await open_loop(
            s, rate, seconds / 3, health_probe(url), f"GET /health @ {rate:.0f}/s"
        )
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
            merged = new_hist()
            for r in runs:
                merged.add(r.hist)
            pop[label] = Result(
                f"pop depth 10, {label} queue @ {rate:.0f}/s",
                merged,
                sum(r.sent for r in runs),
                sum(r.errors for r in runs),
                sum(r.seconds for r in runs),
            )
            results.append(pop[label])
        with meter.measure(push_cpu):
            throughput = await closed_loop_per_client(s, 16, seconds, url)
        results.append(throughput)
        with meter.measure(health_cpu):
            health16 = await closed_loop(
                s, 16, seconds / 3, health_probe(url), "GET /health, 16 clients"
            )
        results.append(health16)
        results.append(
            await closed_loop(s, 16, seconds, pusher(url, "push-16"), "push, 16 clients, one queue")
        )
    store_tps = await store_ceiling(pg.url, 16, seconds)
    db_paced = pgbench(pg, STATEMENT, 1, seconds / 2, rate=rate)
    tx16 = pgbench(pg, STATEMENT, 16, seconds)

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
