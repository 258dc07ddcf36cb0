"""What the workers' semantics cost: delayed items under a pop, keyed against plain pushes.

``python -m benchmarks.workers [--store sqlite|postgres] [--delayed N] [--rounds N]``:
the real app in-process on a real store, each figure beside its same-run reference, in
alternating rounds. Figures: docs/benchmarks.md.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import typer
import uvloop
from rich.console import Console
from rich.table import Table

from api.app import create_app
from api.settings import Settings

console = Console()
app = typer.Typer(add_completion=False)
ITEM = {"payload": "x" * 64}


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    gateway = create_app(settings)
    async with gateway.router.lifespan_context(gateway):
        transport = httpx.ASGITransport(app=gateway)
        async with httpx.AsyncClient(transport=transport, base_url="http://pushpop") as c:
            yield c


def _ok(r: httpx.Response) -> Any:
    if r.status_code != 200:
        raise RuntimeError(f"{r.request.method} {r.request.url}: {r.status_code} {r.text[:200]}")
    return r.json()


async def delayed_pops(c: httpx.AsyncClient, delayed: int, rounds: int, pops: int) -> list[Any]:
    """µs per pop of 10 ready items: a queue with ``delayed`` delayed items vs none."""
    run = uuid.uuid4().hex[:6]
    plain, crowded = f"plain-{run}", f"crowded-{run}"
    started = time.perf_counter()
    for done in range(0, delayed, 1000):
        n = min(1000, delayed - done)
        body = {"items": [{"item": ITEM, "delay_seconds": 86_400}] * n}
        _ok(await c.post(f"/queue/{crowded}/push", json=body))
    console.print(f"filled {delayed} delayed items in {time.perf_counter() - started:.1f} s")
    stats = _ok(await c.get(f"/queue/{crowded}"))
    if stats["delayed"] != delayed:
        raise RuntimeError(f"the queue holds {stats['delayed']} delayed items, not {delayed}")
    samples: list[Any] = []
    for r in range(rounds):
        for q in (plain, crowded) if r % 2 == 0 else (crowded, plain):
            for _ in range(0, 10 * pops, 1000):
                ready = {"items": [{"item": ITEM}] * min(1000, 10 * pops)}
                _ok(await c.post(f"/queue/{q}/push", json=ready))
            wall, cpu = time.perf_counter(), time.process_time()
            for _ in range(pops):
                got = _ok(await c.post(f"/queue/{q}/pop", params={"depth": 10}))
                if len(got["items"]) != 10:
                    raise RuntimeError(f"a pop on {q} got {len(got['items'])} items, not 10")
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            samples.append((q == crowded, wall / pops * 1e6, cpu / pops * 1e6))
    _ok(await c.delete(f"/queue/{crowded}"))
    return samples


async def keyed_pushes(c: httpx.AsyncClient, rounds: int, pushes: int) -> list[Any]:
    """Pushes/s at 16 concurrent requests, with and without an Idempotency-Key."""
    samples: list[Any] = []

    async def worker(q: str, keyed: bool, n: int) -> None:
        for _ in range(n):
            headers = {"Idempotency-Key": uuid.uuid4().hex} if keyed else {}
            _ok(await c.post(f"/queue/{q}/push", json={"item": ITEM}, headers=headers))

    for r in range(rounds):
        for keyed in (False, True) if r % 2 == 0 else (True, False):
            queues = [f"k{int(keyed)}-{r}-{i % 50}" for i in range(16)]
            started = time.perf_counter()
            await asyncio.gather(*(worker(q, keyed, pushes // 16) for q in queues))
            samples.append((keyed, (pushes // 16 * 16) / (time.perf_counter() - started)))
    return samples


async def measure(settings: Settings, delayed: int, rounds: int) -> tuple[list, list]:
    async with serving(settings) as c:
        pops = await delayed_pops(c, delayed, rounds, pops=100)
        pushes = await keyed_pushes(c, rounds, pushes=3200)
    return pops, pushes


@app.command()
def main(
    store: str = typer.Option("sqlite", help="sqlite or postgres"),
    database_url: str = typer.Option("", help="PostgreSQL URL (--store postgres)"),
    delayed: int = typer.Option(1_000_000, help="delayed items beside the ready ones"),
    rounds: int = typer.Option(5, help="rounds of each side, in turns"),
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings.from_env(
            store=store,
            database_url=database_url or None,
            sqlite_path=str(Path(tmp) / "bench.sqlite3"),
            idle_timeout=3600,
        )
        pops, pushes = uvloop.run(measure(settings, delayed, rounds))
    table = Table(title=f"pop of 10 ready items ({store}, medians of {rounds} rounds)")
    for col in ("queue", "wall µs/pop", "CPU µs/pop"):
        table.add_column(col, justify="right")
    med = {}
    for crowded in (False, True):
        rows = [s for s in pops if s[0] == crowded]
        med[crowded] = (statistics.median(s[1] for s in rows),
                        statistics.median(s[2] for s in rows))  # fmt: skip
        name = f"with {delayed:,} delayed" if crowded else "no delayed items"
        table.add_row(name, f"{med[crowded][0]:.0f}", f"{med[crowded][1]:.0f}")
    console.print(table)
    console.print(f"with / without: wall {med[True][0] / med[False][0]:.2f}x, "
                  f"CPU {med[True][1] / med[False][1]:.2f}x (goal <= 1.1)")  # fmt: skip
    rate = {k: statistics.median(s[1] for s in pushes if s[0] == k) for k in (False, True)}
    console.print(f"push at 16 concurrent requests ({store}): plain {rate[False]:.0f}/s, "
                  f"keyed {rate[True]:.0f}/s, keyed / plain {rate[True] / rate[False]:.2f}x "
                  "(goal >= 0.9)")  # fmt: skip


if __name__ == "__main__":
    app()
