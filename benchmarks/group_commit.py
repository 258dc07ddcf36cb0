"""Group commit on and off, in one run, next to pgbench (issue 11 item 1).

``python -m benchmarks.group_commit [--seconds S] [--settings 2,1,4,0]``: one server per
``PUSHPOP_GROUP_COMMIT`` value, measured in turns, then each store alone and pgbench;
ratios against the same run only. Figures: docs/benchmarks.md.
"""

from __future__ import annotations

import asyncio
import os
import random
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp
import typer
import uvloop
from rich.console import Console
from rich.table import Table

from actor_service.stores.base import StateStore, Transaction, json_bytes
from actor_service.stores.postgres import PostgresStore
from actor_service.stores.sqlite import SqliteStore
from load_tests.measure.cpu import Meter
from load_tests.measure.load import Request, Result, closed_loop, merge, pusher
from load_tests.measure.pgbench import PUSH_STATEMENT, run_pgbench
from supervise.pgserver import PostgresServer
from supervise.server import ServerProcess

console = Console()
app = typer.Typer(add_completion=False)
QUEUES = 50


def spread_pusher(url: str, run: str) -> Request:
    """A push to one of ``QUEUES`` queues picked at random per request."""
    pushes = [pusher(url, f"{run}-{q}") for q in range(QUEUES)]
    return lambda session: random.choice(pushes)(session)


@dataclass
class Point:
    """One setting's numbers, summed over the rounds."""

    c16: list[Result] = field(default_factory=list)
    c1: list[Result] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=dict)


async def measure(
    servers: dict[int, ServerProcess], meter: Meter, seconds: float, rounds: int
) -> dict[int, Point]:
    """Settings take turns, ``rounds`` times, so that drift in the host's load (the
    cores are shared) hits them alike."""
    points = {n: Point() for n in servers}
    conn = aiohttp.TCPConnector(limit=64)
    async with aiohttp.ClientSession(connector=conn) as s:
        for n, server in servers.items():
            await closed_loop(s, 16, 1.0, spread_pusher(server.url, f"gc{n}"), "warm-up")
        order = list(servers.items())
        for r in range(rounds):
            # a different setting goes first each round: none always runs last
            for n, server in order[r % len(order) :] + order[: r % len(order)]:
                push = spread_pusher(server.url, f"gc{n}")
                with meter.measure(points[n].cpu, server.pid):
                    points[n].c16.append(await closed_loop(s, 16, seconds / rounds, push, ""))
                points[n].c1.append(await closed_loop(s, 1, seconds / 2 / rounds, push, ""))
    return points


def fmt_cpu(c: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.0f}" for k, v in c.items()) + f" = {sum(c.values()):.0f}"


async def store_alone(store: StateStore, seconds: float) -> tuple[float, float]:
    """Push-shaped saves (meta + a half-full segment) of 50 actors from 16 tasks straight
    into a store: group commit without HTTP or actors around it. Returns saves/s and
    this process's CPU µs per save."""
    await store.open()
    meta = json_bytes({"next_id": 1, "pri": {"1": [0, 1, 1.0]}})
    segment = json_bytes(
        {"start": 0, "items": [[n, {"payload": "x" * 64}, 1.0] for n in range(50)]}
    )
    busy: set[int] = set()
    count = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal count
        while time.perf_counter() < deadline:
            a = random.choice([q for q in range(QUEUES) if q not in busy])
            busy.add(a)  # one save at a time per actor, as the runtime guarantees
            keys = (f"bench||QueueActor||gc{a}||meta", f"bench||QueueActor||gc{a}||s:1:0")
            try:
                await store.transact(Transaction([(keys[0], meta), (keys[1], segment)]))
            finally:
                busy.discard(a)
            count += 1

    t0 = os.times()
    try:
        await asyncio.gather(*(worker() for _ in range(16)))
    finally:
        await store.close()
    t1 = os.times()
    return count / seconds, (t1.user + t1.system - t0.user - t0.system) / count * 1e6


def stores(url: str, tmp: str) -> dict[str, Callable[[int], StateStore]]:
    return {
        "PostgreSQL": lambda n: PostgresStore(url, group_commit=n),
        # SQLite's writer is one thread: any group_commit > 0 means one batch in flight
        "SQLite": lambda n: SqliteStore(f"{tmp}/gc-{n}.sqlite3", group_commit=n),
    }


@app.command()
def main(
    seconds: float = typer.Option(6.0, help="seconds per 16-connection point (1 conn: half)"),
    settings: str = typer.Option("2,1,4,0", help="PUSHPOP_GROUP_COMMIT values; 0 = off"),
    rounds: int = typer.Option(2, help="settings take turns this many times"),
) -> None:
    """Push throughput and p50 with group commit on and off, against pgbench."""
    values = [int(v) for v in settings.split(",")]
    with PostgresServer() as pg, tempfile.TemporaryDirectory() as tmp:
        assert pg.pid is not None
        meter = Meter(pg.pid)
        servers: dict[int, ServerProcess] = {}
        try:
            for n in values:
                servers[n] = ServerProcess(
                    store="postgres",
                    database_url=pg.database(f"gc_{n}", fresh=True),
                    env={"PUSHPOP_GROUP_COMMIT": str(n)},
                ).start()
            points = uvloop.run(measure(servers, meter, seconds, rounds))
            # pgbench on a table the store created
            bench_db = servers[values[0]].env["PUSHPOP_DATABASE_URL"]
        finally:
            for server in servers.values():
                server.stop()
        alone = {
            (kind, n): uvloop.run(store_alone(make(n), seconds / 2))
            for kind, make in stores(pg.url, tmp).items()
            for n in values
        }
        ref_cpu: dict[str, float] = {}
        with meter.measure(ref_cpu, None):
            ref = run_pgbench(bench_db, PUSH_STATEMENT, 16, seconds)
        txs = ref.tps * max(1, round(seconds))
    report(points, ref.tps, {k: v / txs * 1e6 for k, v in ref_cpu.items()})
    console.print(f"The store alone (no HTTP, no actors), 16 tasks over {QUEUES} actors:")
    for (kind, n), (rate, us) in alone.items():
        console.print(
            f"  {kind}, group commit {n or 'off'}: {rate:.0f} saves/s, "
            f"{us:.0f} µs of the process's CPU per save"
        )


def report(points: dict[int, Point], ref_tps: float, ref_cpu: dict[str, float]) -> None:
    table = Table(title="push, embedded runtime + PostgreSQL, same run")
    for col in ("group commit", "c=16 over 50 queues, /s", "p50 ms", "p99 ms", "c=1 /s",
                "c=1 p50 ms", "errors", "x pgbench"):  # fmt: skip
        table.add_column(col, justify="right")
    summary: dict[int, tuple[float, float]] = {}
    for n, pt in points.items():
        c16, c1 = merge("", pt.c16), merge("", pt.c1)
        tps = c16.sent / c16.seconds
        summary[n] = (tps, c1.ms(50))
        table.add_row(
            f"{n} in flight" if n else "off", f"{tps:.0f}", f"{c16.ms(50):.2f}",
            f"{c16.ms(99):.2f}", f"{c1.sent / c1.seconds:.0f}", f"{c1.ms(50):.2f}",
            str(c16.errors + c1.errors), f"{tps / ref_tps:.2f}",
        )  # fmt: skip
    console.print(table)
    console.print(f"pgbench, the store's two-upsert statement, 16 clients: {ref_tps:.0f} tps")
    console.print("CPU µs per operation at c=16:")
    for n, pt in points.items():
        sent = sum(r.sent for r in pt.c16)
        console.print(f"  push, group commit {n or 'off'}: " + fmt_cpu(
            {k: v / sent * 1e6 for k, v in pt.cpu.items()}
        ))  # fmt: skip
    console.print("  pgbench transaction: " + fmt_cpu(ref_cpu))
    if 0 in summary:
        off_tps, off_p50 = summary[0]
        for n, (tps, p50) in summary.items():
            if n:
                console.print(
                    f"group commit {n} / off, same run: throughput c=16 {tps / off_tps:.2f}x, "
                    f"p50 c=1 {p50 / off_p50:.2f}x (target <= 1.2)"
                )


if __name__ == "__main__":
    started = time.monotonic()
    try:
        app()
    finally:
        console.print(f"({time.monotonic() - started:.0f} s)")
