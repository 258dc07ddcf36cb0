"""Memory per idle queue: what a server's RSS grows by per queue holding one item.

``python -m benchmarks.idle_memory [--queues N] [--base REV]``: a ``pushpop serve`` per
store (SQLite, then PostgreSQL), warmed on N queues, then N more queues get one item
each; RSS after, less RSS before, over N. With ``--base``, the revision is served from
a git worktree in the same run, store by store, next to this checkout.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
from pathlib import Path

import httpx
import psutil
import typer

from load_tests.ab import in_build, worktree
from supervise.pgserver import PostgresServer
from supervise.server import ServerProcess

app = typer.Typer(add_completion=False)
ITEM = {"job": 1, "payload": "x" * 64}


async def _fill(url: str, prefix: str, queues: int) -> None:
    limits = httpx.Limits(max_connections=16)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        gate = asyncio.Semaphore(16)

        async def one(i: int) -> None:
            async with gate:
                r = await client.post(f"/queue/{prefix}-{i}/push", json={"item": ITEM})
                r.raise_for_status()

        await asyncio.gather(*(one(i) for i in range(queues)))


def bytes_per_queue(server: ServerProcess, queues: int) -> float:
    assert server.proc is not None
    proc = psutil.Process(server.proc.pid)
    asyncio.run(_fill(server.url, "warm", queues))  # pools, caches and code paths warm
    time.sleep(1)
    before = proc.memory_info().rss
    asyncio.run(_fill(server.url, "q", queues))
    time.sleep(1)
    return (proc.memory_info().rss - before) / queues


def serve(code: Path | None, store: str, pg: PostgresServer, name: str) -> ServerProcess:
    tmp = Path(tempfile.mkdtemp(prefix="pushpop-idle-"))
    command = in_build(code, "-m", "api.cli", "serve", "--log-level", "warning") if code else None
    return ServerProcess(
        store=store,
        database_url=pg.database(name, fresh=True) if store == "postgres" else None,
        sqlite_path=tmp / "state.sqlite3",  # read only when store == "sqlite"
        log_path=tmp / "server.log",
        command=command,
    )


@app.command()
def main(
    queues: int = typer.Option(20_000, help="queues given one item each"),
    base: str | None = typer.Option(None, help="also serve this git revision, store by store"),
) -> None:
    base_tree = worktree(base) if base else contextlib.nullcontext(None)
    with PostgresServer() as pg, base_tree as base_code:
        for store in ("sqlite", "postgres"):
            builds = [("head", None)] + ([("base", base_code)] if base_code else [])
            seen: dict[str, float] = {}
            for label, code in builds:
                server = serve(code, store, pg, f"idle_{label}").start()
                try:
                    seen[label] = bytes_per_queue(server, queues)
                finally:
                    server.stop()
            line = f"{store}: head {seen['head']:,.0f} B per idle queue"
            if "base" in seen:
                line += f", base {seen['base']:,.0f}, head / base {seen['head'] / seen['base']:.2f}"
            print(line, flush=True)


if __name__ == "__main__":
    app()
