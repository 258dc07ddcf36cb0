"""Issue 11's throughput targets, all measured in one run on one throwaway PostgreSQL.

``python -m benchmarks.throughput [--quick] [--runtimes embedded,dapr] [--out FILE]``:
pgbench, the floor app, both runtimes optimised and baseline under ``wrk`` (else the
toolkit's closed loop), each point with its CPU per operation and per-hop times, judged
by :mod:`benchmarks.throughput_goals`. The method and the figures: docs/benchmarks.md.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import aiohttp
import httpx
import psutil
import psycopg
import typer
import uvloop
from rich.console import Console
from rich.table import Table

from actor_service.stores.postgres import SCHEMA
from benchmarks.hops import breakdown, scrape
from benchmarks.hops import table as hop_table
from benchmarks.serving import MODES, start_floor, start_postgres, start_server
from benchmarks.throughput_goals import (
    CONNECTIONS,
    FLOORS,
    QUEUES,
    Point,
    Target,
    busy_us,
    goal,
    ratios,
    reference_cpu,
    targets,
)
from load_tests.measure.cpu import DAPR_PROCESSES, Meter, host_busy, per_op
from load_tests.measure.load import closed_loop, fill, popper, pusher, rotate
from load_tests.measure.pgbench import PUSH_STATEMENT, run_pgbench
from supervise.dapr_processes import ensure_dapr_built
from supervise.pgserver import PostgresServer
from supervise.server import ServerProcess

console = Console(width=None if sys.stdout.isatty() else 200)
app = typer.Typer(add_completion=False)

LUA = Path(__file__).with_name("queue_load.lua")
SETTLE_SECONDS = 0.3
CPU_COLUMNS = ("server", "daprd", "placement+scheduler", "PostgreSQL", "load generator", "other")


@dataclass
class Load:
    """What the load generator saw over one point."""

    requests: int
    seconds: float
    errors: int
    p50_ms: float
    p99_ms: float


def run_wrk(url: str, op: str, prefix: str, queues: int, conns: int, seconds: float) -> Load:
    cmd = ["wrk", "-t1", f"-c{conns}", f"-d{max(1, round(seconds))}s", "--timeout", "10s",
           "-s", str(LUA), url, "--", op, prefix, str(queues)]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    match = re.search(r"^WRK_JSON (.*)$", out, re.M)
    if not match:
        raise RuntimeError(f"wrk printed no summary:\n{out}")
    r = json.loads(match.group(1))
    return Load(
        r["requests"], r["duration_us"] / 1e6, r["non_2xx"] + r["socket_errors"],
        r["p50_us"] / 1000, r["p99_us"] / 1000,
    )  # fmt: skip


def run_aiohttp(url: str, op: str, prefix: str, queues: int, conns: int, seconds: float) -> Load:
    make = pusher if op == "push" else lambda u, q: popper(u, q, depth=1)
    request = rotate([make(url, f"{prefix}-{i}") for i in range(queues)])

    async def go() -> Load:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as s:
            r = await closed_loop(s, conns, seconds, request, "")
        return Load(r.sent, r.seconds, r.errors, r.ms(50), r.ms(99))

    return uvloop.run(go())


def queue_depths(url: str, prefix: str, queues: int) -> list[int]:
    """Items in ``prefix``-0 .. ``prefix``-(queues-1), each."""
    with httpx.Client(base_url=url, timeout=60) as c:
        return [c.get(f"/queue/{prefix}-{i}").json()["depth"] for i in range(queues)]


def depths(url: str, prefix: str, queues: int) -> int:
    """Items left in ``prefix``-0 .. ``prefix``-(queues-1), summed."""
    return sum(queue_depths(url, prefix, queues))


def top_up(url: str, prefix: str, queues: int, items: int) -> None:
    """Bring each queue to at least ``items`` // ``queues`` items, 1,000 per request."""
    need = [max(0, items // queues - d) for d in queue_depths(url, prefix, queues)]

    async def go() -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600)) as s:
            sem = asyncio.Semaphore(4)

            async def one(i: int, n: int) -> None:
                async with sem:
                    await fill(s, url, f"{prefix}-{i}", n)

            await asyncio.gather(*(one(i, n) for i, n in enumerate(need) if n))

    asyncio.run(go())


@dataclass
class Bench:
    pg: PostgresServer
    meter: Meter
    seconds: float
    generator: str  # wrk | aiohttp

    def checkpoint(self) -> None:
        """Flush the WAL of what came before, so no checkpoint lands mid-point."""
        with psycopg.connect(self.pg.url, autocommit=True) as conn:
            conn.execute("CHECKPOINT")

    def drop(self, *databases: str) -> None:
        """Drop databases whose server is done, so that the points after them do not pay
        for whatever they leave behind (docs/benchmarks.md says what that cost)."""
        self.pg.drop(*databases)
        self.checkpoint()

    def load(self, url: str, op: str, prefix: str, queues: int, conns: int, secs: float) -> Load:
        run = run_wrk if self.generator == "wrk" else run_aiohttp
        return run(url, op, prefix, queues, conns, secs)

    def measured_load(
        self, server: ServerProcess, cpu: dict[str, float], op: str, prefix: str,
        queues: int, conns: int, seconds: float,
    ) -> Load:  # fmt: skip
        """One load run, its CPU seconds per process (and the rest of the host's, "other")
        added to ``cpu``."""
        busy0, mine = host_busy(), {}
        with self.meter.measure(mine, server.pid):
            load = self.load(server.url, op, prefix, queues, conns, seconds)
        mine["other"] = max(0.0, host_busy() - busy0 - sum(mine.values()))
        for k, v in mine.items():
            cpu[k] = cpu.get(k, 0.0) + v
        return load

    def point(
        self, server: ServerProcess, labels: tuple[str, str], op: str, prefix: str,
        queues: int, conns: int, seconds: float,
    ) -> Point:  # fmt: skip
        before_items = depths(server.url, prefix, queues) if op == "pop" else 0
        around = [self.pgbench(self.slice_seconds)["tps"]]
        self.checkpoint()
        scraped = scrape(server.url)
        cpu: dict[str, float] = {}
        load = self.measured_load(server, cpu, op, prefix, queues, conns, seconds)
        # requests wrk left in flight finish (and are counted) first; then the counters,
        # before depths(), whose reads are no part of the point
        time.sleep(SETTLE_SECONDS)
        after = scrape(server.url)
        around.append(self.pgbench(self.slice_seconds)["tps"])
        empty = None
        if op == "pop":
            popped = before_items - depths(server.url, prefix, queues)
            answered = load.requests - load.errors
            empty = max(0.0, 1 - popped / answered) if answered else 0.0
        merged = after.get("pushpop_coalesced_requests_total")
        return Point(
            *labels, op, queues, conns, load.requests, load.seconds, load.errors,
            load.p50_ms, load.p99_ms, int(merged - scraped.get("pushpop_coalesced_requests_total")),
            per_op(cpu, load.requests), empty,
            breakdown(scraped, after, op), statistics.fmean(around),
        )  # fmt: skip

    def warm(self, server: ServerProcess) -> None:
        self.load(server.url, "push", "warm", QUEUES, CONNECTIONS, max(1.0, self.seconds / 4))

    def server_points(self, server: ServerProcess, labels: tuple[str, str]) -> list[Point]:
        """The 16-connection points (the c=1 point: :meth:`c1_points`, for all modes)."""
        s = self.seconds
        self.warm(server)
        push50 = self.point(server, labels, "push", "q", QUEUES, CONNECTIONS, s)
        push1 = self.point(server, labels, "push", "hot", 1, CONNECTIONS, s)
        self.fill_for_pops(server, max(push50.rate, push1.rate), {"q": QUEUES, "hot": 1})
        pop50 = self.point(server, labels, "pop", "q", QUEUES, CONNECTIONS, s)
        pop1 = self.point(server, labels, "pop", "hot", 1, CONNECTIONS, s)
        return [push50, push1, pop50, pop1]

    def c1_points(self, servers: dict[tuple[str, str], ServerProcess]) -> list[Point]:
        """Push at 1 connection on every server, in 1-second slices taken in turn
        (``seconds / 2`` each in all), so that a ratio between them compares the same
        minutes of the host (a p50 of a few ms moves with the host's speed). A point's p50
        and p99 are the medians of its slices'."""
        slices = max(1, round(self.seconds / 2))
        loads: dict[tuple[str, str], list[Load]] = {labels: [] for labels in servers}
        cpu: dict[tuple[str, str], dict[str, float]] = {labels: {} for labels in servers}
        self.checkpoint()
        before = {labels: scrape(server.url) for labels, server in servers.items()}
        for _ in range(slices):
            for labels, server in servers.items():
                loads[labels].append(
                    self.measured_load(server, cpu[labels], "push", "q", QUEUES, 1, 1.0)
                )
        time.sleep(SETTLE_SECONDS)
        points = []
        for labels, server in servers.items():
            done, after = loads[labels], scrape(server.url)
            requests = sum(x.requests for x in done)
            points.append(Point(
                *labels, "push", QUEUES, 1, requests, sum(x.seconds for x in done),
                sum(x.errors for x in done), statistics.median(x.p50_ms for x in done),
                statistics.median(x.p99_ms for x in done), 0,
                per_op(cpu[labels], requests), None,
                breakdown(before[labels], after, "push"),
            ))  # fmt: skip
        return points

    def floor_points(self, server: ServerProcess, labels: tuple[str, str]) -> list[Point]:
        """The floor app's push and pop over 50 queues at 16 connections; its pops too
        start on queues filled beyond what they can drain, so each answers an item."""
        s = self.seconds
        self.warm(server)
        push = self.point(server, labels, "push", "q", QUEUES, CONNECTIONS, s)
        self.fill_for_pops(server, push.rate, {"q": QUEUES})
        return [push, self.point(server, labels, "pop", "q", QUEUES, CONNECTIONS, s)]

    def fill_for_pops(self, server: ServerProcess, rate: float, queues: dict[str, int]) -> None:
        """Pops must not run dry: fill each prefix's queues with three times the push
        ``rate`` (at least 500/s) for as long as a point lasts."""
        need = int(3 * max(rate, 500) * self.seconds)
        for prefix, count in queues.items():
            top_up(server.url, prefix, count, need)

    @property
    def slice_seconds(self) -> float:
        """pgbench's slices around a point: a quarter of the point, at least a second."""
        return max(1.0, round(self.seconds / 4))

    def pgbench(self, seconds: float | None = None) -> dict[str, float | dict[str, float]]:
        """The reference: the store's two-upsert statement at 16 clients, with CPU per tx;
        ``seconds`` (default: a point's) for a slice around a point."""
        seconds = seconds or self.seconds
        url = self.pg.database("throughput_pgbench")
        with psycopg.connect(url) as conn, conn.transaction():
            for statement in SCHEMA:
                conn.execute(statement)
        self.checkpoint()
        cpu: dict[str, float] = {}
        busy0 = host_busy()
        with self.meter.measure(cpu, None):
            ref = run_pgbench(url, PUSH_STATEMENT, CONNECTIONS, seconds)
        cpu["other"] = max(0.0, host_busy() - busy0 - sum(cpu.values()))
        txs = ref.tps * max(1, round(seconds))
        return {"tps": ref.tps, "cpu_us_per_tx": per_op(cpu, txs)}


# ------------------------------------------------------------------ report


def ratio_cell(p: Point, points: list[Point], ref: float, ref_cpu: float) -> str:
    lines = []
    if p.connections > 1:  # what its CPU per op would allow if every core were spent
        lines.append(f"{ref_cpu / busy_us(p.cpu_us_per_op):.2f} x pgbench by CPU/op")
    if p.pgbench_tps:
        lines.append(f"pgbench around it: {p.pgbench_tps:.0f} tps")
    for against, value in ratios(p, points, ref).items():
        line = f"{value:.2f} x {against}"
        if g := goal(p, against):
            ok = Target(p.runtime, p.name, against, value, g).met
            line += f"  {g}: " + ("[green]met[/green]" if ok else "[red]missed[/red]")
        lines.append(line)
    return "\n".join(lines)


def cpu_cells(cpu: dict[str, float]) -> list[str]:
    cells = []
    for col in CPU_COLUMNS:
        v = cpu.get(col, cpu.get("pgbench") if col == "load generator" else None)
        cells.append(
            "" if v is None or (col in DAPR_PROCESSES.values() and v < 0.5) else f"{v:.0f}"
        )
    return cells


def report(result: dict) -> None:
    ref = result["pgbench"]["reference_tps"]
    ref_cpu = reference_cpu(result["pgbench"])
    points = [Point(**p) for p in result["points"]]
    goals = targets(points, ref, ref_cpu)
    table = Table(title="pushpop throughput (issue 11): one run, one PostgreSQL, 2 shared cores")
    for col in ("runtime / mode", "point", "result", "ratio (same run)", "errors / empty",
                "coalesced", *(f"{c}\nµs/op" for c in CPU_COLUMNS)):  # fmt: skip
        table.add_column(col, justify="left" if col in ("point", "ratio (same run)") else "right")
    for when in ("start", "end"):
        pg = result["pgbench"][when]
        table.add_row("pgbench", f"2-upsert tx, 16 clients ({when})", f"{pg['tps']:.0f} tps",
                      "", "", "", *cpu_cells(pg["cpu_us_per_tx"]))  # fmt: skip
    table.add_row("pgbench", "reference (mean)", f"{ref:.0f} tps", "", "", "", *[""] * 6)
    last = None
    for p in points:
        label = f"{p.runtime} / {p.mode}"
        if label != last:
            table.add_section()
        shown = f"{p.p50_ms:.2f} ms" if p.connections == 1 else f"{p.rate:.0f} /s"
        errs = str(p.errors) + ("" if p.empty_fraction is None else f" / {p.empty_fraction:.1%}")
        # requests still in flight when wrk stops are merged but not counted by wrk
        merged = f"{min(1.0, p.coalesced_requests / max(1, p.requests)):.0%}"
        table.add_row("" if label == last else label, p.name, shown,
                      ratio_cell(p, points, ref, ref_cpu), errs, merged,
                      *cpu_cells(p.cpu_us_per_op))  # fmt: skip
        last = label
    console.print(table)
    console.print(hop_table([
        (p.runtime, p.name, p.p50_ms, p.hops_ms) for p in points
        if p.mode == "optimised" and p.hops_ms and (p.queues, p.coalesced_requests) == (QUEUES, 0)
    ]))  # fmt: skip
    met = sum(t.met for t in goals)
    console.print(f"targets met: {met} of {len(goals)}")
    for t in goals:
        console.print(f"  {t.verdict()}")
    for note in result["notes"]:
        console.print(f"- {note}")


@app.command()
def main(
    seconds: float = typer.Option(8.0, help="seconds per point (c=1: half)"),
    quick: bool = typer.Option(False, help="a short smoke run: 2 s per point"),
    out: str = typer.Option("/tmp/pushpop-throughput.json", help="where the JSON goes"),
    runtimes: str = typer.Option("embedded,dapr", help="comma-separated: embedded, dapr"),
    dapr_state: str = typer.Option("component", help="PUSHPOP_DAPR_STATE in Dapr mode"),
) -> None:
    """Push/pop throughput of both runtimes, optimised and baseline, against pgbench."""
    started = time.monotonic()
    if quick:
        seconds = 2.0
    wanted = [r.strip() for r in runtimes.split(",") if r.strip()]
    if "dapr" in wanted:
        ensure_dapr_built()
    generator = "wrk" if shutil.which("wrk") else "aiohttp"
    tmp = Path(tempfile.mkdtemp(prefix="pushpop-throughput-"))
    points: list[Point] = []
    servers: dict[tuple[str, str], ServerProcess] = {}
    pg = start_postgres()
    try:
        assert pg.pid is not None
        bench = Bench(pg, Meter(pg.pid, DAPR_PROCESSES), seconds, generator)
        start = bench.pgbench()
        for runtime, labels in FLOORS.items():
            if runtime != "embedded" and runtime not in wanted:
                continue
            console.print(f"[dim]floor / {labels[1]} (benchmarks/floor_app.py) ...[/dim]")
            url = pg.database(f"throughput_floor_{labels[1]}", fresh=True)
            floor = start_floor(url, tmp / f"floor-{labels[1]}.log", dapr=runtime == "dapr",
                                dapr_state=dapr_state)  # fmt: skip
            try:
                points += bench.floor_points(floor, labels)
            finally:
                floor.stop()
            bench.drop(f"throughput_floor_{labels[1]}")
        for runtime in wanted:
            wide: dict[tuple[str, str], list[Point]] = {}
            for mode in MODES:
                console.print(f"[dim]{runtime} / {mode} ...[/dim]")
                servers[runtime, mode] = start_server(pg, runtime, mode, tmp, dapr_state)
                wide[runtime, mode] = bench.server_points(servers[runtime, mode], (runtime, mode))
            # both modes stay up (the other one idle) for the c=1 points, taken in turns
            console.print(f"[dim]{runtime}: c=1, modes in turn ...[/dim]")
            c1 = bench.c1_points({labels: servers[labels] for labels in wide})
            for point in c1:
                push50, push1, *pops = wide.pop((point.runtime, point.mode))
                points += [push50, push1, point, *pops]
            for server in servers.values():
                server.stop()
            servers.clear()
            bench.drop(*(f"throughput_{runtime}_{mode}" for mode in MODES))
        end = bench.pgbench()
    finally:
        for server in servers.values():
            server.stop()
        pg.cleanup()
    ref = (start["tps"] + end["tps"]) / 2  # type: ignore[operator]
    notes = [
        f"{psutil.cpu_count()} cores, shared by the load generator, the server (and daprd) "
        "and PostgreSQL: every process's CPU per operation is spent out of the same budget",
        f"load generator: {generator}"
        if generator == "wrk"
        else "load generator: the aiohttp "
        "closed loop of load_tests.measure.load, since wrk was not found (it saturates the cores "
        "before the server does: the rates are the client's as much as the server's)",
        "pgbench: the store's own two-upsert statement (meta + segment, autocommit), 16 "
        f"clients on 16 row pairs; a 16-connection point's ratio divides by pgbench's mean "
        f"in {bench.slice_seconds:g}-s slices right before and after it ('pgbench around "
        "it'), a c=1 point's by the mean of the start and end runs",
        "pops are depth 1; 'empty' = pops answered without an item (queue depths before and "
        "after against the pops answered); 'coalesced' = requests that reached their actor "
        "inside a Batch call",
        "floor = benchmarks/floor_app.py: a bare ASGI app under pushpop's uvicorn "
        "configuration doing only HTTP, JSON and the same group-committed meta + segment "
        "write through pushpop's own PostgresStore (no framework, validation, actor, "
        "metrics, coalescing). Its same-run rate bounds any Python server on this host: "
        "'x floor' = a point's rate over the floor's for the same op, and a goal against "
        "pgbench above the floor's own ratio (the highest of: by rate; by CPU per op, "
        "pgbench's CPU-µs per tx over the floor's per op; and the floor's CPU per op "
        "spread over every core, as several processes could, against pgbench's rate; for "
        "embedded mode, one process by design, the floor's server never gets more than "
        "one core) is out of reach here; 'floor / dapr' is the same app behind daprd "
        "(gateway leg, actor call through daprd, the work in daprd's call back, its state "
        "written as this run's Dapr mode writes it): it bounds the Dapr goals",
        "'other' = CPU the rest of the host spent during the point (other test runs, the "
        "kernel): noise, when it is large",
        f"{seconds:g} s per point (c=1: {seconds / 2:g} s); Dapr state: {dapr_state}; "
        f"server logs in {tmp}; {time.monotonic() - started:.0f} s in all",
    ]
    result = {
        "seconds": seconds,
        "generator": generator,
        "cores": psutil.cpu_count(),
        "dapr_state": dapr_state,
        "pgbench": {"start": start, "end": end, "reference_tps": ref},
        "points": [asdict(p) for p in points],
        "targets": [
            asdict(t) | {"name": t.name, "out_of_reach": t.out_of_reach}
            for t in targets(points, ref, reference_cpu({"start": start, "end": end}))
        ],
        "notes": notes,
    }
    Path(out).write_text(json.dumps(result, indent=2))
    report(result)
    console.print(f"JSON: {out}")


if __name__ == "__main__":
    app()
