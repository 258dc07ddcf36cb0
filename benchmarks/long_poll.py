"""Long-poll pop: wake-up latency after a push, and what an idle fleet costs the server.

``python -m benchmarks.long_poll [--rounds N] [--fleet N] [--seconds S] [--dapr]``:
figures, no pass/fail, on one real ``pushpop serve``; ``--dapr`` adds a push on one
host waking a waiter on another. What it measures and its figures: docs/long-poll.md.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx

from load_tests.measure.cpu import tree_cpu
from supervise.server import ServerProcess, wait_ready

POLL_EVERY = 0.1  # seconds between a polling client's pops


async def waiters(c: httpx.AsyncClient) -> float:
    for line in (await c.get("/metrics")).text.splitlines():
        if line.startswith("pushpop_long_poll_waiters "):
            return float(line.split()[1])
    raise RuntimeError("no pushpop_long_poll_waiters in /metrics")


async def until_waiters(c: httpx.AsyncClient, ok: Callable[[float], bool], pause: float) -> None:
    """Until the server's waiter gauge satisfies ``ok`` (another process: no event)."""
    while not ok(await waiters(c)):  # noqa: ASYNC110
        await asyncio.sleep(pause)


async def wake_latency(
    wait_url: str, push_url: str, rounds: int
) -> tuple[list[float], list[float]]:
    """(wake-up seconds after the push's answer, the push's round trip) per round."""
    wake, push = [], []
    run = uuid.uuid4().hex[:6]
    async with (
        httpx.AsyncClient(base_url=wait_url, timeout=30) as a,
        httpx.AsyncClient(base_url=push_url, timeout=30) as b,
        httpx.AsyncClient(base_url=wait_url, timeout=10) as metrics,
    ):
        base = await waiters(metrics)
        for i in range(rounds):
            q = f"lpb-{run}-{i % 20}"
            task = asyncio.create_task(a.post(f"/queue/{q}/pop", params={"wait_seconds": 10}))
            await until_waiters(metrics, lambda n: n > base, 0.002)
            sent = time.perf_counter()
            r = await b.post(f"/queue/{q}/push", json={"item": {"i": i}})
            answered = time.perf_counter()
            got = await task
            woke = time.perf_counter()
            assert r.status_code == 200 and got.json()["items"], (r.text, got.text)
            push.append(answered - sent)
            wake.append(woke - answered)
    return wake, push


def pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


def show_latency(name: str, wake: list[float], push: list[float]) -> None:
    ms = 1000.0
    print(f"{name}: wake-up after the push's answer p50 {pct(wake, 50) * ms:.2f} ms, "
          f"p99 {pct(wake, 99) * ms:.2f} ms, max {max(wake) * ms:.2f} ms "
          f"({len(wake)} rounds); the push itself p50 {pct(push, 50) * ms:.2f} ms, "
          f"p99 {pct(push, 99) * ms:.2f} ms")  # fmt: skip


REQUEST = "POST /queue/{q}/pop{query} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"


async def read_answer(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    return await reader.readexactly(length)


async def idle_fleet(server: ServerProcess, fleet: int, seconds: float) -> float:
    """% of one core the server spends while ``fleet`` long polls wait."""
    run = uuid.uuid4().hex[:6]
    conns = []
    for i in range(fleet):
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(REQUEST.format(q=f"idle-{run}-{i}", query="?wait_seconds=20").encode())
        conns.append((reader, writer))
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as metrics:
        await until_waiters(metrics, lambda n: n >= fleet, 0.05)
        await asyncio.sleep(0.5)
        assert server.pid is not None
        cpu0, t0 = tree_cpu(server.pid), time.monotonic()
        await asyncio.sleep(seconds)
        share = (tree_cpu(server.pid) - cpu0) / (time.monotonic() - t0)
        for _, writer in conns:
            writer.close()
        await until_waiters(metrics, lambda n: n == 0, 0.05)
    return share * 100


async def polling_fleet(server: ServerProcess, fleet: int, seconds: float) -> tuple[float, float]:
    """(% of one core of the server, polls per second) with ``fleet`` clients each
    popping its empty queue every 100 ms."""
    run = uuid.uuid4().hex[:6]
    polls = 0
    stop = asyncio.Event()

    async def client(i: int) -> None:
        nonlocal polls
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        request = REQUEST.format(q=f"poll-{run}-{i}", query="").encode()
        await asyncio.sleep(POLL_EVERY * i / fleet)  # spread over the period
        while not stop.is_set():
            writer.write(request)
            await read_answer(reader)
            polls += 1
            await asyncio.sleep(POLL_EVERY)
        writer.close()

    tasks = [asyncio.create_task(client(i)) for i in range(fleet)]
    await asyncio.sleep(2 * POLL_EVERY + 1)  # every queue's actor active, steady state
    assert server.pid is not None
    cpu0, t0, p0 = tree_cpu(server.pid), time.monotonic(), polls
    await asyncio.sleep(seconds)
    share = (tree_cpu(server.pid) - cpu0) / (time.monotonic() - t0)
    rate = (polls - p0) / (time.monotonic() - t0)
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    return share * 100, rate


async def embedded(args: argparse.Namespace, tmp: Path) -> None:
    server = ServerProcess(
        sqlite_path=tmp / "lp.sqlite3", log_path=tmp / "lp.log",
        env={"PUSHPOP_MAX_CONNECTIONS": str(args.fleet + 200)},
    )  # fmt: skip
    server.start()
    try:
        show_latency("embedded (SQLite)", *await wake_latency(server.url, server.url, args.rounds))
        idle = await idle_fleet(server, args.fleet, args.seconds)
        busy, rate = await polling_fleet(server, args.fleet, args.seconds)
        print(f"idle fleet, {args.fleet} clients, {args.seconds:g} s each, server CPU: "
              f"long-poll waiters {idle:.2f} % of a core; polling every "
              f"{POLL_EVERY * 1000:.0f} ms {busy:.1f} % of a core ({rate:.0f} polls/s "
              f"achieved of {args.fleet / POLL_EVERY:.0f} asked)")  # fmt: skip
    finally:
        server.stop()


async def dapr(args: argparse.Namespace, tmp: Path) -> None:
    from supervise.dapr_processes import Placement, Scheduler, ensure_dapr_built
    from supervise.pgserver import PostgresServer

    bin_dir = ensure_dapr_built()
    with (
        PostgresServer() as pg,
        Placement(tmp, bin_dir=bin_dir) as placement,
        Scheduler(tmp, bin_dir=bin_dir) as scheduler,
    ):
        env = {"PUSHPOP_PLACEMENT_ADDRESS": placement.address,
               "PUSHPOP_SCHEDULER_ADDRESS": scheduler.address}  # fmt: skip
        hosts = [
            ServerProcess(
                store="postgres",
                database_url=pg.url,
                runtime="dapr",
                log_path=tmp / f"host-{n}.log",
                env={**env, "PUSHPOP_DAPR_RUN_DIR": str(tmp / f"host-{n}-dapr")},
            )
            for n in "ab"
        ]
        try:
            for h in hosts:
                h.start(60)
                wait_ready(h.url, 60)
            a, b = hosts
            show_latency("Dapr, one host", *await wake_latency(a.url, a.url, args.rounds))
            show_latency("Dapr, push on B wakes A", *await wake_latency(a.url, b.url, args.rounds))
        finally:
            for h in hosts:
                h.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--fleet", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--dapr", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pushpop-lp-") as d:
        asyncio.run(embedded(args, Path(d)))
        if args.dapr:
            asyncio.run(dapr(args, Path(d)))


if __name__ == "__main__":
    main()
