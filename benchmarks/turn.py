"""What one actor turn costs in CPU, with no I/O: the part of a request no server can skip.

``python -m benchmarks.turn [--calls N] [--rounds N] [--base REV]``: the embedded runtime
on the memory store and the real app as ASGI calls, in-process, where a change to the
actor shows above the host's noise; ``--base`` times a git revision too, rounds in turns.
What it measures and its figures: docs/benchmarks.md.
"""

from __future__ import annotations

import functools
import inspect
import json
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import typer
import uvloop
from rich.console import Console
from rich.table import Table

from actor_service.runtime.embedded import EmbeddedRuntime
from actor_service.stores.memory import MemoryStore
from api.app import create_app
from api.invoker import EmbeddedInvoker
from api.settings import Settings

QUEUES = 50
ITEM = {"payload": "x" * 64}  # the throughput benchmark's item (benchmarks/queue_load.lua)
ENTRY = {"item": ITEM, "priority": 1}  # one pushed entry: the actor's payload, the HTTP body
PUSH_BODY = json.dumps(ENTRY).encode()
METHODS = ("Push", "Pop", "Stats", "HTTP push", "HTTP pop")

console = Console()
app = typer.Typer(add_completion=False)

Call = Callable[[int], Awaitable[bool]]  # call number -> did it push or pop an item


async def asgi_post(gateway: Any, path: str, query: bytes, body: bytes) -> tuple[int, bytes]:
    """One ``POST`` through the ASGI app as uvicorn would hand it over, minus the socket."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": query,
        "root_path": "", "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 8000),
        "headers": [(b"host", b"pushpop"), (b"content-type", b"application/json"),
                    (b"content-length", b"%d" % len(body))],
    }  # fmt: skip
    await gateway(scope, receive, send)
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


def calls_of(rt: EmbeddedRuntime, gateway: Any) -> dict[str, Call]:
    """Each measured method as one call, answering whether it pushed or popped an item."""

    async def actor(method: str, payload: dict[str, Any], i: int) -> bool:
        reply = await rt.invoke(f"t{i % QUEUES}", method, payload)
        if "ok" not in reply:
            raise RuntimeError(f"{method} failed: {reply}")
        return bool(reply["ok"].get("items", True))

    async def http(op: str, i: int) -> bool:
        query, body = (b"", PUSH_BODY) if op == "push" else (b"depth=1", b"")
        status, out = await asgi_post(gateway, f"/queue/t{i % QUEUES}/{op}", query, body)
        if status != 200:
            raise RuntimeError(f"HTTP {op} answered {status}: {out[:200]!r}")
        return bool(json.loads(out).get("items", True))

    return {
        "Push": functools.partial(actor, "Push", {"items": [ENTRY]}),
        "Pop": functools.partial(actor, "Pop", {"depth": 1}),
        "Stats": functools.partial(actor, "Stats", {}),
        "HTTP push": functools.partial(http, "push"),
        "HTTP pop": functools.partial(http, "pop"),
    }


async def _round(rt: EmbeddedRuntime, calls: dict[str, Call], n: int) -> dict[str, float]:
    """CPU-µs per call of each method, ``n`` calls each over the queues in turn."""
    per_queue = 2 * n // QUEUES + 1  # no pop of this round, actor or HTTP, finds none
    for q in range(QUEUES):
        await rt.invoke(f"t{q}", "Push", {"items": [ENTRY] * per_queue})
    out: dict[str, float] = {}
    for method in METHODS:
        call, empty = calls[method], 0
        started = time.process_time()
        for i in range(n):
            if not await call(i):
                empty += 1
        out[method] = (time.process_time() - started) / n * 1e6
        if empty:
            raise RuntimeError(f"{empty} of {n} {method} calls found their queue empty")
    for q in range(QUEUES):
        await rt.invoke(f"t{q}", "Purge", {})
    return out


async def measure(n: int, rounds: int) -> list[dict[str, float]]:
    rt = EmbeddedRuntime(MemoryStore(), idle_timeout=3600)
    invoker = EmbeddedInvoker(rt)
    calls = calls_of(rt, create_app(Settings.from_env(), invoker))
    await invoker.start()
    try:
        await _round(rt, calls, min(n, 1000))  # warm: activations, caches
        return [await _round(rt, calls, n) for _ in range(rounds)]
    finally:
        await invoker.stop()


def one_round(code: Path, calls: int) -> dict[str, float]:
    """One round in a fresh process whose ``actor_service`` is the one in ``code`` (this
    script run by path, with ``code`` first on its import path); checked, not assumed.

    ``load_tests.ab`` is imported here, not at the top: a round of the base runs this
    file with the base's packages first, and an older base may not have it."""
    from load_tests.ab import in_build

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "round.json"
        cmd = in_build(code, str(Path(__file__).resolve()), "--calls", str(calls),
                       "--rounds", "1", "--out", str(out))  # fmt: skip
        subprocess.run(cmd, check=True, capture_output=True, env=os.environ | {
            "PYTHONPATH": str(code)})  # fmt: skip
        result = json.loads(out.read_text())
    if not Path(result["code"]).is_relative_to(code):
        raise RuntimeError(f"the round imported {result['code']}, not the build in {code}")
    return result["rounds"][0]


def compare(base: str, calls: int, rounds: int) -> dict[str, object]:
    """Rounds of the checkout (head) and of ``base``, taken in turns; medians and ratios."""
    from load_tests.ab import ROOT, worktree

    samples: dict[str, list[dict[str, float]]] = {"base": [], "head": []}
    with worktree(base) as base_dir:
        builds = [("base", base_dir), ("head", ROOT)]
        for r in range(rounds):
            for name, code in builds if r % 2 == 0 else reversed(builds):
                samples[name].append(one_round(code, calls))
    median = {name: {m: statistics.median(s[m] for s in runs) for m in METHODS}
              for name, runs in samples.items()}  # fmt: skip
    title = (f"actor turns and gateway requests, head (this checkout) / base ({base}): "
             f"medians of {rounds} rounds of {calls} calls, CPU-µs per call")  # fmt: skip
    table = Table(title=title)
    for column in ("method", "base", "head", "head / base", "rounds head < base"):
        table.add_column(column, justify="right")
    for m in METHODS:
        ahead = sum(h[m] < b[m] for h, b in zip(samples["head"], samples["base"], strict=True))
        b, h = median["base"][m], median["head"][m]
        table.add_row(m, f"{b:.1f}", f"{h:.1f}", f"{h / b:.3f}", f"{ahead} of {rounds}")
    console.print(table)
    own = {name: {op: statistics.median(r[f"HTTP {op}"] - r[op.capitalize()] for r in runs)
                  for op in ("push", "pop")} for name, runs in samples.items()}  # fmt: skip
    console.print("the gateway's own CPU per request (HTTP less the turn, median of rounds), "
                  "base -> head: " + ", ".join(f"{op} {own['base'][op]:.1f} -> "
                  f"{own['head'][op]:.1f} µs" for op in ("push", "pop")))  # fmt: skip
    return {"base": base, "calls": calls, "samples": samples, "median": median,
            "worktree": str(base_dir)}  # fmt: skip


@app.command()
def main(
    calls: int = typer.Option(20_000, help="calls per method per round"),
    rounds: int = typer.Option(5, help="rounds; the table shows their medians"),
    out: str = typer.Option("", help="write every round as JSON here"),
    base: str = typer.Option("", help="also time this git revision, in turns: head / base"),
) -> None:
    if base:
        result = compare(base, calls, rounds)
    else:
        results = uvloop.run(measure(calls, rounds))
        median = {m: statistics.median(r[m] for r in results) for m in METHODS}
        title = (
            f"actor turns and gateway requests in-process, no I/O ({calls} calls x {rounds} rounds)"
        )
        table = Table(title=title)
        for column in ("method", "CPU-µs per call (median)", "range", "x Stats"):
            table.add_column(column, justify="right")
        for m in METHODS:
            spread = f"{min(r[m] for r in results):.1f}-{max(r[m] for r in results):.1f}"
            table.add_row(m, f"{median[m]:.1f}", spread, f"{median[m] / median['Stats']:.2f}")
        console.print(table)
        gateway = {op: median[f"HTTP {op}"] - median[op.capitalize()] for op in ("push", "pop")}
        console.print("the gateway's own CPU per request (HTTP less the turn): "
                      + ", ".join(f"{op} {us:.1f} µs" for op, us in gateway.items()))  # fmt: skip
        code = inspect.getfile(EmbeddedRuntime)  # which build was timed (for --base)
        result = {"calls": calls, "rounds": results, "median": median, "code": code}
    if out:
        Path(out).write_text(json.dumps(result))


if __name__ == "__main__":
    app()
