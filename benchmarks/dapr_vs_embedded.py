"""What Dapr mode costs: the same requests through the embedded runtime and through daprd.

``python -m benchmarks.dapr_vs_embedded [--seconds S] [--rate R] [--proxy-calls N]``:
push and pop at a fixed arrival rate against both modes on one PostgreSQL, one mode at a
time, and the gateway's two ways to reach an actor through daprd (the SDK's
``ActorProxy`` against a direct pooled call). Figures: docs/scaling.md.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import typer
from rich.console import Console
from rich.table import Table

from load_tests.measure.histograms import new_histogram, record_us
from load_tests.measure.load import Result, closed_loop, fill, open_loop, popper, pusher, rotate
from supervise.dapr_processes import ensure_dapr_built
from supervise.pgserver import PostgresServer
from supervise.server import ServerProcess, wait_ready

console = Console()
app = typer.Typer(add_completion=False)


async def measure(url: str, mode: str, seconds: float, rate: float, queues: int) -> list[Result]:
    """Push and pop at ``rate`` against one server, spread over ``queues`` queues.

    Spread, because one queue is one actor doing one call at a time: on one queue the
    rate would measure that actor's capacity (a few hundred calls/s, less through daprd
    on a slow day), not what the runtime adds to each call.
    """
    results = []
    conn = aiohttp.TCPConnector(limit=256)
    async with aiohttp.ClientSession(connector=conn) as s:
        await closed_loop(s, 4, 2, pusher(url, f"warm-{mode}"), "warmup")
        push = rotate([pusher(url, f"push-{mode}-{k}") for k in range(queues)])
        results.append(await open_loop(s, rate, seconds, push, f"{mode}: push"))
        pop_queues = [f"pop-{mode}-{k}" for k in range(queues)]
        for qid in pop_queues:
            await fill(s, url, qid, int(rate * seconds / queues) * 10 + 1000)
        pop = rotate([popper(url, qid) for qid in pop_queues])
        await closed_loop(s, 2, 1, pop, "warmup")
        results.append(await open_loop(s, rate, seconds, pop, f"{mode}: pop depth 10"))
    return results


Call = Callable[[], Awaitable[None]]


async def timed_calls(call: Call, n: int, concurrency: int, name: str) -> Result:
    hist = new_histogram()
    errors = 0
    per_worker = n // concurrency

    async def worker() -> None:
        nonlocal errors
        for _ in range(per_worker):
            t0 = time.perf_counter()
            try:
                await call()
            except Exception:
                errors += 1
            record_us(hist, (time.perf_counter() - t0) * 1e6)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return Result(name, hist, per_worker * concurrency, errors, time.perf_counter() - t0)


async def proxy_vs_direct(runinfo: dict, n: int) -> list[Result]:
    """ActorProxy (SDK HTTP client) vs one pooled aiohttp session, on the same actor."""
    # the SDK reads these at call time (dapr.conf.settings)
    os.environ["DAPR_HTTP_PORT"] = str(runinfo["dapr_http_port"])
    os.environ["DAPR_API_TOKEN"] = runinfo["dapr_api_token"]
    from dapr.actor import ActorId, ActorProxy
    from dapr.actor.client.proxy import ActorProxyFactory

    from actor_service.actor import QueueActorInterface
    from actor_service.serializer import PlainJSONSerializer

    factory = ActorProxyFactory(message_serializer=PlainJSONSerializer())
    proxies = [
        ActorProxy.create("QueueActor", ActorId(f"bench-proxy-{i}"), QueueActorInterface, factory)
        for i in range(16)
    ]
    base = f"http://127.0.0.1:{runinfo['dapr_http_port']}/v1.0/actors/QueueActor"
    headers = {"dapr-api-token": runinfo["dapr_api_token"], "content-type": "application/json"}
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64), headers=headers)
    body = {"items": [{"item": {"payload": "x" * 64}, "priority": 1}]}
    raw = json.dumps(body).encode()
    counter = iter(range(10**9))

    async def via_proxy() -> None:
        # RPC style: the proxy exposes the actor methods by their Dapr names
        reply = await proxies[next(counter) % 16].Push(body)
        assert "ok" in reply, reply

    async def direct() -> None:
        i = next(counter) % 16
        async with session.post(f"{base}/bench-direct-{i}/method/Push", data=raw) as r:
            reply = json.loads(await r.read())
            assert "ok" in reply, reply

    results = []
    try:
        for conc in (1, 16):
            for name, call in (("ActorProxy", via_proxy), ("direct aiohttp", direct)):
                await timed_calls(call, 200, conc, "warmup")
                results.append(await timed_calls(call, n, conc, f"{name}, {conc} caller(s)"))
    finally:
        await session.close()
    return results


def table(title: str, results: list[Result]) -> Table:
    t = Table(title=title)
    for col in ("scenario", "req/s", "p50 ms", "p99 ms", "max ms", "errors"):
        t.add_column(col, justify="right" if col != "scenario" else "left")
    for r in results:
        t.add_row(*r.row())
    return t


@app.command()
def main(
    seconds: float = 15.0, rate: float = 200.0, queues: int = 10, proxy_calls: int = 2000
) -> None:
    """Push/pop p50/p99 at a fixed rate, embedded vs Dapr mode, both on PostgreSQL."""
    ensure_dapr_built()
    tmp = Path(tempfile.mkdtemp(prefix="pushpop-bench-dapr-"))
    with PostgresServer() as pg:
        embedded = ServerProcess(
            store="postgres", database_url=pg.database("bench_embedded"),
            log_path=tmp / "embedded.log",
        )  # fmt: skip
        dapr = ServerProcess(
            store="postgres", database_url=pg.database("bench_dapr"), runtime="dapr",
            log_path=tmp / "dapr.log",
            env={"PUSHPOP_DAPR_RUNINFO": str(tmp / "runinfo.json"),
                 "PUSHPOP_DAPR_RUN_DIR": str(tmp / "dapr")},
        )  # fmt: skip
        try:
            embedded.start(60)
            dapr.start(60)
            wait_ready(embedded.url)
            wait_ready(dapr.url)
            results: list[Result] = []
            for mode, server in (("embedded", embedded), ("dapr", dapr)):
                results += asyncio.run(measure(server.url, mode, seconds, rate, queues))
            console.print(
                table(f"PostgreSQL, {rate:.0f} req/s open loop over {queues} queues", results)
            )
            by = {r.name: r.ms(50) for r in results}
            for op in ("push", "pop depth 10"):
                added = by[f"dapr: {op}"] - by[f"embedded: {op}"]
                verdict = "meets" if added <= 3.0 else "MISSES"
                console.print(f"Dapr adds {added:.2f} ms at p50 to {op} ({verdict} the 3 ms goal)")
            if proxy_calls:
                runinfo = json.loads((tmp / "runinfo.json").read_text())
                proxy = asyncio.run(proxy_vs_direct(runinfo, proxy_calls))
                console.print(table("gateway -> daprd -> actor Push: ActorProxy vs direct", proxy))
        finally:
            dapr.stop()
            embedded.stop()
    console.print(f"logs in {tmp}")


if __name__ == "__main__":
    app()
