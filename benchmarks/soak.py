"""Soak: mixed load for a long time while the server's RSS, file descriptors and
PostgreSQL sessions are sampled; a leak shows as a slope, a healthy server is flat.

``python -m benchmarks.soak --minutes 30``: its own PostgreSQL and ``pushpop serve``, an
open-loop mix of pushes, pops and locked pops; the growth of each resource from the
second to the last quarter.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from dataclasses import dataclass, field

import aiohttp
import httpx
import psutil
import psycopg
import typer
import uvloop
from rich.console import Console
from rich.table import Table

from load_tests.measure.load import open_loop
from supervise.pgserver import PostgresServer
from supervise.server import ServerProcess

console = Console()
app = typer.Typer(add_completion=False)


@dataclass
class Sample:
    at: float
    rss_mib: float
    fds: int
    sessions: int
    active_actors: int


@dataclass
class Mix:
    """One request of the mix per call: pushes outrun pops so the queues never run dry."""

    url: str
    queues: list[str]
    rng: random.Random = field(default_factory=lambda: random.Random(7))
    statuses: dict[int, int] = field(default_factory=dict)

    async def __call__(self, s: aiohttp.ClientSession) -> int:
        q = self.rng.choice(self.queues)
        if self.rng.random() < 0.1:  # churn: new queue ids every minute, so actors come and go
            q = f"churn-{int(time.monotonic() // 60)}-{self.rng.randrange(200)}"
        roll = self.rng.random()
        if roll < 0.45:
            body = {"item": {"n": self.rng.randrange(10**9), "pad": "x" * self.rng.randrange(512)},
                    "priority": self.rng.randrange(4)}  # fmt: skip
            status = await self._post(s, f"/queue/{q}/push", body)
        elif roll < 0.75:
            status = await self._post(s, f"/queue/{q}/pop?depth={self.rng.randrange(1, 10)}")
        else:
            status = await self._locked(s, q)
        self.statuses[status] = self.statuses.get(status, 0) + 1
        return status

    async def _post(self, s: aiohttp.ClientSession, path: str, body: object = None) -> int:
        async with s.post(self.url + path, json=body) as r:
            await r.read()
            return r.status

    async def _locked(self, s: aiohttp.ClientSession, q: str) -> int:
        """Pop with ack, then acknowledge (most), release, or leave it to expire."""
        async with s.post(f"{self.url}/queue/{q}/pop?depth=5&require_ack=true&ttl_seconds=5") as r:
            reply = await r.json()
            if r.status != 200 or "lock_id" not in reply:
                return r.status
        roll = self.rng.random()
        if roll < 0.8:
            return await self._post(s, f"/queue/{q}/acknowledge", {"lock_id": reply["lock_id"]})
        if roll < 0.95:
            return await self._post(s, f"/queue/{q}/release", {"lock_id": reply["lock_id"]})
        return 200  # abandoned: the lock expires and its items come back


def sample(proc: psutil.Process, pg_url: str, server_url: str) -> Sample:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
        ).fetchone()
    actors = 0
    for line in httpx.get(server_url + "/metrics", timeout=10).text.splitlines():
        if line.startswith("pushpop_active_actors "):
            actors = int(float(line.split()[1]))
    return Sample(
        time.monotonic(),
        proc.memory_info().rss / 2**20,
        proc.num_fds(),
        int(row[0]) if row else -1,
        actors,
    )


async def drive(
    url: str, pg_url: str, proc: psutil.Process, minutes: float, rate: float, every: float
) -> tuple[list[Sample], Mix, list[tuple[float, float, float]]]:
    mix = Mix(url, [f"soak-{n}" for n in range(50)])
    samples: list[Sample] = []
    windows: list[tuple[float, float, float]] = []  # (rate, p50 ms, p99 ms) per window
    end = time.monotonic() + minutes * 60
    connector = aiohttp.TCPConnector(limit=256)
    async with aiohttp.ClientSession(connector=connector) as s:
        while time.monotonic() < end:
            window = min(every, end - time.monotonic())
            result = await open_loop(s, rate, window, mix, "soak")
            samples.append(await asyncio.to_thread(sample, proc, pg_url, url))
            windows.append((result.sent / window, result.ms(50), result.ms(99)))
            last = samples[-1]
            console.print(
                f"{(last.at - samples[0].at) / 60:5.1f} min  RSS {last.rss_mib:6.1f} MiB  "
                f"fds {last.fds:4d}  PG sessions {last.sessions:3d}  "
                f"actors {last.active_actors:4d}  p50 {windows[-1][1]:.2f} ms  "
                f"p99 {windows[-1][2]:.2f} ms"
            )
    return samples, mix, windows


def report(samples: list[Sample], mix: Mix, windows: list[tuple[float, float, float]]) -> None:
    quarter = max(1, len(samples) // 4)
    first, last = samples[quarter : 2 * quarter] or samples[:1], samples[-quarter:]

    def avg(xs: list[Sample], attr: str) -> float:
        return sum(getattr(x, attr) for x in xs) / len(xs)

    table = Table(title="soak: second quarter vs last quarter (first quarter is warm-up)")
    for col in ("resource", "2nd quarter", "last quarter", "growth", "max"):
        table.add_column(col, justify="right" if col != "resource" else "left")
    resources = [
        ("rss_mib", "RSS MiB"),
        ("fds", "file descriptors"),
        ("sessions", "PostgreSQL sessions"),
        ("active_actors", "active actors"),
    ]
    for attr, label in resources:
        a, b = avg(first, attr), avg(last, attr)
        growth = f"{(b - a) / a:+.1%}" if a else "n/a"
        table.add_row(label, f"{a:.1f}", f"{b:.1f}", growth,
                      f"{max(getattr(x, attr) for x in samples):.1f}")  # fmt: skip
    console.print(table)
    p50s = sorted(w[1] for w in windows)
    p99s = sorted(w[2] for w in windows)
    console.print(
        f"windows: {len(windows)}; p50 median {p50s[len(p50s) // 2]:.2f} ms, "
        f"p99 median {p99s[len(p99s) // 2]:.2f} ms, worst p99 {p99s[-1]:.2f} ms"
    )
    console.print(f"statuses: {json.dumps(dict(sorted(mix.statuses.items())))}")


@app.command()
def main(
    minutes: float = typer.Option(30.0, help="how long to soak"),
    rate: float = typer.Option(150.0, help="requests per second (open loop)"),
    every: float = typer.Option(30.0, help="seconds per sample window"),
) -> None:
    """Mixed load for MINUTES minutes; RSS, fds, PostgreSQL sessions sampled throughout."""
    with PostgresServer() as pg:
        server = ServerProcess(store="postgres", database_url=pg.url,
                               env={"PUSHPOP_IDLE_TIMEOUT": "30"}).start()  # fmt: skip
        try:
            assert server.pid is not None
            samples, mix, windows = uvloop.run(
                drive(server.url, pg.url, psutil.Process(server.pid), minutes, rate, every)
            )
        finally:
            server.stop()
    report(samples, mix, windows)


if __name__ == "__main__":
    app()
