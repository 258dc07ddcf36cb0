"""Issue 11's throughput targets, all measured in one run on one throwaway PostgreSQL.

Run: ``python -m benchmarks.throughput --out /tmp/throughput.json`` (about 4 minutes;
``--seconds`` per point, ``--quick`` for a smoke run). In order:

1. pgbench with the store's own two-upsert statement (a push's writes) at 16 clients:
   the reference, with its CPU per transaction; run again at the end (the two apart
   show the host's drift). Each 16-connection point also has pgbench run for a short
   slice right before and right after it: a point's ratio divides by the mean of its
   own two slices, so that it compares the same minutes of the host (pgbench moved
   by 40 % between the start and the end of one run here);
2. the floor (:mod:`benchmarks.floor_app`): a bare ASGI app under pushpop's uvicorn
   configuration that does only what any durable push or pop needs (HTTP, JSON, the
   meta + segment write through pushpop's own group-committed ``PostgresStore``), on its
   own fresh database: push and pop (depth 1, on filled queues, always writing) at 16
   connections over 50 queues. Its ratio to pgbench is the most a Python server reaches
   on this host: each goal against pgbench carries it, and says so when it asks for
   more; each real runtime's 50-queue point is also shown as a fraction of it;
3. for each runtime (embedded, Dapr; both on PostgreSQL) and each mode (optimised =
   the defaults; baseline = ``PUSHPOP_GROUP_COMMIT=0``, ``PUSHPOP_COALESCE=false``), a
   fresh server on its own database, one mode after the other, then: push at 16
   connections round robin over 50 queues, push at 16 connections to one queue (the hot
   queue), pop (depth 1) at 16 connections over the same 50 queues and from the hot
   queue. Pops start on queues filled beyond what they can drain (the push phases plus
   multi-item pushes); the fraction of pops that found nothing is measured anyway
   (queue depths before and after against the pops answered). Then push p50 at 1
   connection, both modes in turn in 1-second slices (both servers up), so that their
   ratio compares the same minutes of the host;
4. the CPU each process spends per operation: the server (the pushpop process or the
   floor app; in Dapr mode daprd and placement+scheduler apart), this run's PostgreSQL
   cluster, the load generator, and "other": what the rest of the host burnt meanwhile
   (noise).

Load comes from ``wrk`` (one thread; Lua script ``queue_load.lua``), since a Python
client on two cores saturates before the server does; without ``wrk`` it falls back to
the aiohttp closed loop of :mod:`benchmarks.core` and says so.
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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import SimpleNamespace

import aiohttp
import httpx
import psutil
import psycopg
import typer
import uvloop
from rich.console import Console
from rich.table import Table

from actor_service.stores.postgres import SCHEMA
from benchmarks.core import STATEMENT, closed_loop, fill, pgbench, popper, pusher
from benchmarks.cpu import DAPR_PROCESSES, Meter, host_busy
from benchmarks.dapr_vs_embedded import rotate
from benchmarks.floor_app import DAPR_STATE_ENV, DATABASE_URL_ENV
from benchmarks.hops import breakdown, scrape
from benchmarks.hops import table as hop_table
from supervise.dapr_processes import ensure_dapr_built
from supervise.pgserver import PostgresServer
from supervise.ports import free_port
from supervise.server import ServerProcess, wait_ready

console = Console(width=None if sys.stdout.isatty() else 200)
app = typer.Typer(add_completion=False)

LUA = Path(__file__).with_name("queue_load.lua")
ROOT = Path(__file__).resolve().parents[1]
# (runtime, mode) of the floor app's points, by the runtime whose goals each one bounds:
# the plain floor, and its Dapr form (two more HTTP legs and daprd; --runtimes dapr)
FLOORS = {"embedded": ("floor", "bare"), "dapr": ("floor", "dapr")}
# runtimes that serve from one process by design (a Dapr-mode deployment scales out)
ONE_PROCESS = {"embedded"}
QUEUES = 50
CONNECTIONS = 16
SETTLE_SECONDS = 0.3
MODES = {
    "optimised": {},
    "baseline": {"PUSHPOP_GROUP_COMMIT": "0", "PUSHPOP_COALESCE": "false"},
}
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


@dataclass
class Point:
    runtime: str
    mode: str
    op: str  # push | pop
    queues: int
    connections: int
    requests: int
    seconds: float
    errors: int
    p50_ms: float
    p99_ms: float
    coalesced_requests: int
    cpu_us_per_op: dict[str, float]
    empty_fraction: float | None = None  # pops only
    # mean ms per stage, from the server's /metrics (benchmarks/hops.py); floor: none
    hops_ms: dict[str, float] = field(default_factory=dict)
    # pgbench tps in slices right before and after the point (16 connections): its ratio's
    # reference; None: the run's (c=1 points, and JSON of runs before this existed)
    pgbench_tps: float | None = None

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    @property
    def name(self) -> str:
        if self.connections == 1:
            return f"{self.op} c=1 (p50)"
        return f"{self.op} {self.queues}q c={self.connections}"


def per_op(cpu: dict[str, float], operations: float) -> dict[str, float]:
    """CPU seconds per process over a point -> CPU-µs per operation."""
    return {k: v / max(1, operations) * 1e6 for k, v in cpu.items()}


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
        for whatever they leave behind (the cause was not pinned down). Measured: with the
        embedded runs' databases left in place, daprd's state saves in the Dapr points
        took 4.4-5.0 ms per turn instead of ~2.3, and the hot-queue rates fell by a third."""
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
        minutes of the host: a p50 of ~1-3 ms moves with the host's speed, and measured
        minutes apart one mode's hiccup read as a 1.6x regression. A point's p50 and p99
        are the medians of its slices'."""
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
            ref = pgbench(SimpleNamespace(url=url), STATEMENT, CONNECTIONS, seconds)  # type: ignore[arg-type]
        cpu["other"] = max(0.0, host_busy() - busy0 - sum(cpu.values()))
        txs = ref.tps * max(1, round(seconds))
        return {"tps": ref.tps, "cpu_us_per_tx": per_op(cpu, txs)}


def start_postgres(attempts: int = 3) -> PostgresServer:
    """A throwaway cluster; again on another port if a concurrent test took the free one."""
    for attempt in range(attempts):
        pg = PostgresServer()
        try:
            return pg.start()
        except RuntimeError:
            pg.cleanup()
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def start_server(
    pg: PostgresServer, runtime: str, mode: str, tmp: Path, dapr_state: str, *,
    database: str | None = None, command: list[str] | None = None,
) -> ServerProcess:  # fmt: skip
    """``pushpop serve`` on a fresh database (``database``, default
    ``throughput_{runtime}_{mode}``); ``command`` serves another build instead
    (:mod:`benchmarks.builds`)."""
    env = dict(MODES[mode])
    if runtime == "dapr":
        env |= {"PUSHPOP_DAPR_RUN_DIR": str(tmp / f"dapr-{mode}"),
                "PUSHPOP_DAPR_STATE": dapr_state}  # fmt: skip
    database = database or f"throughput_{runtime}_{mode}"
    server = ServerProcess(
        store="postgres", database_url=pg.database(database, fresh=True),
        runtime=runtime, env=env, log_path=tmp / f"{runtime}-{mode}.log", command=command,
    )  # fmt: skip
    server.start(90)
    wait_ready(server.url)
    return server


def start_floor(
    database_url: str, log_path: Path, *, dapr: bool = False, dapr_state: str = "direct"
) -> ServerProcess:
    """The floor app (:mod:`benchmarks.floor_app`) in uvicorn as ``pushpop serve`` runs it:
    uvloop, httptools, no access log, one process; the project imported from this tree.

    ``dapr``: its Dapr form, ready once an actor call has gone through (placement has
    handed out its table); ``dapr_state``: where that form writes (component: through
    daprd's actor state API, as pushpop's default Dapr mode; direct: its own store). The
    bare form always writes its own store (the app reads the setting only behind daprd)."""
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "benchmarks.floor_app:app", "--app-dir",
               str(ROOT), "--loop", "uvloop", "--http", "httptools", "--no-access-log",
               "--lifespan", "on", "--log-level", "warning", "--port", str(port)]  # fmt: skip
    if dapr:
        command = [sys.executable, "-m", "benchmarks.floor_app"]
    server = ServerProcess(
        port=port, env={DATABASE_URL_ENV: database_url, "PYTHONPATH": str(ROOT),
                        DAPR_STATE_ENV: dapr_state},
        log_path=log_path, command=command,
    )  # fmt: skip
    server.start(60)
    deadline = time.monotonic() + 60
    while dapr and httpx.post(f"{server.url}/queue/probe/pop", timeout=10).status_code != 200:
        if time.monotonic() > deadline:
            server.stop()
            raise TimeoutError(f"no actor call through daprd in 60 s; see {log_path}")
        time.sleep(0.2)
    return server


# ------------------------------------------------------------------ targets


@dataclass
class Target:
    runtime: str
    point: str  # Point.name of the optimised point it judges
    against: str  # pgbench | 50q | baseline
    value: float
    goal: str  # ">= 0.6" | "<= 1.2"
    met: bool = field(init=False)
    # against pgbench: the floor app's ratio to pgbench for the same operation
    floor: float | None = None

    def __post_init__(self) -> None:
        op, bound = self.goal.split()
        self.met = self.value >= float(bound) if op == ">=" else self.value <= float(bound)

    @property
    def name(self) -> str:
        return f"{self.runtime} {self.point} / {self.against}"

    @property
    def out_of_reach(self) -> bool:
        """A missed goal that asks for more than the floor app reached: no Python server
        can reach it here. A met goal is never out of reach, whatever the floor says."""
        op, bound = self.goal.split()
        return not self.met and op == ">=" and self.floor is not None and float(bound) > self.floor

    def verdict(self) -> str:
        line = f"{self.name} = {self.value:.3f}, goal {self.goal}: " + (
            "met" if self.met else "[red]MISSED[/red]"
        )
        if self.out_of_reach:
            line += (
                f" (goal {self.goal.split()[1]} is above the floor {self.floor:.2f} x pgbench: "
                "out of reach for a Python server on this host)"
            )
        elif self.floor is not None:
            line += f" (floor {self.floor:.2f} x pgbench)"
        return line


def floor_point(points: list[Point], op: str, runtime: str) -> Point | None:
    """The point of ``op`` (push or pop) of the floor that bounds ``runtime``, if measured."""
    if runtime not in FLOORS:
        return None
    wanted = (*FLOORS[runtime], op)
    return next((q for q in points if (q.runtime, q.mode, q.op) == wanted), None)


def ratios(p: Point, points: list[Point], ref: float) -> dict[str, float]:
    """A point against its same-run references: pgbench (in the slices around it, else
    the run's ``ref``); the 50-queue point of the same operation (for the hot queue); the
    baseline mode (for the c=1 p50)."""
    if p.connections == 1:
        base = next((q for q in points if (q.runtime, q.mode, q.name)
                     == (p.runtime, "baseline", p.name)), None)  # fmt: skip
        return {"baseline": p.p50_ms / base.p50_ms} if base and p.mode != "baseline" else {}
    out = {"pgbench": p.rate / (p.pgbench_tps or ref)}
    wide = next((q for q in points if (q.runtime, q.mode, q.op, q.queues, q.connections)
                 == (p.runtime, p.mode, p.op, QUEUES, p.connections)), None)  # fmt: skip
    if p.queues == 1 and wide:
        out["50q"] = p.rate / wide.rate
    floor = floor_point(points, p.op, p.runtime)
    if floor and (p.queues, p.connections) == (QUEUES, CONNECTIONS):
        out["floor"] = p.rate / floor.rate
    return out


# the goals of issue 11, for the optimised mode: (runtime or None for both, point, against)
GOALS = {
    ("embedded", "push 50q c=16", "pgbench"): ">= 0.6",
    ("embedded", "pop 50q c=16", "pgbench"): ">= 0.5",
    ("dapr", "push 50q c=16", "pgbench"): ">= 0.13",
    ("dapr", "pop 50q c=16", "pgbench"): ">= 0.13",
    ("dapr", "push 1q c=16", "pgbench"): ">= 0.13",
    ("dapr", "pop 1q c=16", "pgbench"): ">= 0.13",
    (None, "push 1q c=16", "50q"): ">= 1.0",
    (None, "pop 1q c=16", "50q"): ">= 1.0",
    (None, "push c=1 (p50)", "baseline"): "<= 1.2",
}


def goal(p: Point, against: str) -> str | None:
    if p.mode != "optimised":
        return None
    return GOALS.get((p.runtime, p.name, against)) or GOALS.get((None, p.name, against))


def busy_us(cpu: dict[str, float]) -> float:
    """CPU-µs per op of the processes doing the work (all but the rest of the host)."""
    return sum(v for k, v in cpu.items() if k != "other")


def reference_cpu(pgbench: dict) -> float:
    """pgbench's CPU-µs per transaction (PostgreSQL + pgbench), mean of start and end."""
    return sum(busy_us(pgbench[when]["cpu_us_per_tx"]) for when in ("start", "end")) / 2


def floor_bound(f: Point, ref: float, ref_cpu: float | None, one_process: bool = False) -> float:
    """The floor's ratio to pgbench (around the floor's point, else the run's ``ref``),
    the highest of: by rate; by CPU per op (what the two would reach if both spent every
    core: unlike a rate, CPU per op barely moves when the host is busy); and the floor
    spending every core against pgbench's measured rate. The highest only ever calls a
    goal reachable.

    ``one_process``: the bounded runtime serves from one process (embedded mode: one
    host per database, its actors in one event loop), whose server can never spend more
    than one core, however many the host has: spending every core, the floor's rate is
    capped by its server's CPU per op, and pgbench's is not."""
    ref = f.pgbench_tps or ref
    by_rate = f.rate / ref
    if not ref_cpu:
        return by_rate
    busy, cores = busy_us(f.cpu_us_per_op), psutil.cpu_count() or 1
    most = cores * 1e6 / busy  # the floor's rate with every core spent
    if one_process:
        most = min(most, 1e6 / f.cpu_us_per_op["server"])
    # pgbench with every core spent: cores * 1e6 / ref_cpu
    return max(by_rate, most * ref_cpu / (cores * 1e6), most / ref)


def targets(points: list[Point], ref: float, ref_cpu: float | None = None) -> list[Target]:
    floors = {
        (runtime, op): floor_bound(f, ref, ref_cpu, one_process=runtime in ONE_PROCESS)
        for runtime in FLOORS
        for op in ("push", "pop")
        if (f := floor_point(points, op, runtime))
    }
    # the floors are measured at 50 queues, one write per request: they bound the 50-queue
    # points, not a hot queue's, whose requests coalescing merges into fewer writes
    return [
        Target(p.runtime, p.name, against, value, g, floors.get((p.runtime, p.op)))
        if against == "pgbench" and (p.queues, p.connections) == (QUEUES, CONNECTIONS)
        else Target(p.runtime, p.name, against, value, g)
        for p in points
        for against, value in ratios(p, points, ref).items()
        if (g := goal(p, against))
    ]


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
        "closed loop of benchmarks.core, since wrk was not found (it saturates the cores "
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
