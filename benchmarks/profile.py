"""Where the server's CPU per operation goes, part by part, in µs.

``python -m benchmarks.profile [--runtime embedded|dapr]`` serves pushpop on a throwaway
PostgreSQL (Dapr mode: state through daprd) with a stack sampler in the app process,
loads it with wrk (16 connections, 50 queues; push, then pop), and splits its CPU per operation
(psutil, over the same seconds) by where samples taken per ms of its CPU fell (a
syscall's CPU lands on the Python code that made it, the loop's C on the code it calls
next). Not a tracing profiler: its overhead distorts exactly the small calls weighed,
and on a shared host wall-clock timing charges other processes' time to socket writes.
"""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType

import httpx
import psutil
import typer

from supervise.pgserver import PostgresServer
from supervise.server import ServerProcess, wait_ready

app = typer.Typer(add_completion=False)
OUT_ENV = "PUSHPOP_SAMPLE_OUT"
LUA = Path(__file__).with_name("queue_load.lua")
ROOT = Path(__file__).resolve().parents[1]
LOOP = "event loop (uvloop's C, no Python frame above it)"

# first match from the innermost frame outward names a sample's part
PARTS = [
    ("sidecar transport (app -> daprd)", ("runtime/dapr/http1.py", "runtime/dapr/sidecar.py")),
    ("actor state save (transaction, scan)", ("runtime/dapr/actor_client.py",)),
    ("SDK state manager", ("dapr/actor/runtime/state_manager.py", "_state_provider.py")),
    ("QueueActor + state machine", ("actor_service/actor.py", "actor_service/queue_")),
    ("actor route (daprd -> app)", ("runtime/dapr/actor_route.py",)),
    ("SDK hooks (sdk_compat: activations, cache)", ("sdk_compat.py",)),
    ("sidecar guard", ("runtime/dapr/guard.py", "runtime/turns.py")),
    ("gateway (routes, validation, invoker)", ("/api/",)),
    ("uvicorn + httptools (both inbound legs)", ("uvicorn/", "httptools")),
    ("metrics (prometheus)", ("prometheus_client/",)),
    ("starlette/fastapi", ("starlette/", "fastapi/")),
    ("PostgreSQL client (psycopg)", ("psycopg",)),
    ("state store (SQL, group commit, claim)", ("actor_service/stores/",)),
    ("embedded runtime (turns, activations)", ("runtime/embedded.py", "runtime/store_state.py")),
    ("asyncio/uvloop scheduling", ("asyncio/", "uvloop")),
]


class Sampler:
    """Samples the main thread's Python stack every ``interval`` seconds of the process's
    CPU time (``ITIMER_PROF``): time waiting, or taken by other processes, draws none."""

    def __init__(self, interval: float = 0.001) -> None:
        self.interval = interval
        self.stacks: collections.Counter[tuple[str, ...]] = collections.Counter()
        signal.signal(signal.SIGPROF, self._sample)

    def _sample(self, signum: int, frame: FrameType | None) -> None:
        self.stacks[_stack(frame)] += 1

    def start(self) -> None:
        self.stacks.clear()
        signal.setitimer(signal.ITIMER_PROF, self.interval, self.interval)

    def stop(self) -> None:
        signal.setitimer(signal.ITIMER_PROF, 0)


def _stack(frame: FrameType | None) -> tuple[str, ...]:
    out = []
    while frame is not None and len(out) < 60:
        out.append(f"{frame.f_code.co_filename}:{frame.f_code.co_name}")
        frame = frame.f_back
    return tuple(out)


def part_of(stack: tuple[str, ...]) -> str:
    if stack and stack[0].endswith(("runners.py:run", ":run_until_complete", ":run_forever")):
        return LOOP
    for frame in stack:
        for name, marks in PARTS:
            if any(m in frame for m in marks):
                return name
    return "other (json, stdlib, ...)"


def serve() -> None:
    """``pushpop serve`` with the sampler: SIGUSR1 starts it, SIGUSR2 dumps and stops."""
    sampler = Sampler()
    out = os.environ[OUT_ENV]

    def start(*_: object) -> None:
        sampler.start()

    def dump(*_: object) -> None:
        sampler.stop()
        parts: collections.Counter[str] = collections.Counter()
        for stack, n in sampler.stacks.items():
            parts[part_of(stack)] += n
        Path(out).write_text(json.dumps(parts))
        # each part's commonest project frame, for reading where inside it time went
        where: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
        for stack, n in sampler.stacks.items():
            mine = [f for f in stack if "site-packages" not in f and "/lib/python" not in f]
            where[part_of(stack)][mine[0] if mine else stack[0]] += n
        top = {p: c.most_common(6) for p, c in where.items()}
        Path(out).with_suffix(".where.json").write_text(json.dumps(top, indent=1))

    signal.signal(signal.SIGUSR1, start)
    signal.signal(signal.SIGUSR2, dump)
    from api.cli import app as cli

    sys.argv = ["pushpop", "serve", "--log-level", "warning"]
    cli()


def _wrk(url: str, op: str, seconds: int) -> int:
    cmd = ["wrk", "-t1", "-c16", f"-d{seconds}s", "-s", str(LUA), url, "--", op, "q", "50"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    line = next(x for x in out.splitlines() if x.startswith("WRK_JSON "))
    return int(json.loads(line[9:])["requests"])


@app.command()
def main(
    seconds: int = typer.Option(10, help="seconds of load per operation"),
    runtime: str = typer.Option("dapr", help="dapr (state through daprd) or embedded"),
) -> None:
    if runtime not in ("dapr", "embedded"):
        raise typer.BadParameter("dapr or embedded", param_hint="--runtime")
    tmp = Path(tempfile.mkdtemp(prefix="pushpop-profile-"))
    print(f"samples and server log in {tmp}")
    pg = PostgresServer().start()
    env = {"PUSHPOP_DAPR_RUN_DIR": str(tmp / "dapr"), "PUSHPOP_DAPR_STATE": "component",
           OUT_ENV: str(tmp / "parts.json")}  # fmt: skip
    server = ServerProcess(
        store="postgres", database_url=pg.database("profile", fresh=True), runtime=runtime,
        env=env, log_path=tmp / "server.log",
        command=[sys.executable, "-m", "benchmarks.profile", "serve"],
    )  # fmt: skip
    try:
        server.start(90)
        wait_ready(server.url)
        _wrk(server.url, "push", 3)  # warm: activations, connections
        proc = psutil.Process(server.pid)
        for op in ("push", "pop"):
            if op == "pop":  # enough items for the pops
                with httpx.Client(base_url=server.url, timeout=60) as c:
                    items = [{"item": {"n": i}, "priority": 1} for i in range(1000)]
                    for q in range(50):
                        c.post(f"/queue/q-{q}/push", json={"items": items}).raise_for_status()
            os.kill(server.pid, signal.SIGUSR1)  # type: ignore[arg-type]
            t = proc.cpu_times()
            done = _wrk(server.url, op, seconds)
            t2 = proc.cpu_times()
            os.kill(server.pid, signal.SIGUSR2)  # type: ignore[arg-type]
            time.sleep(0.5)
            cpu = (t2.user + t2.system) - (t.user + t.system)
            us = cpu / done * 1e6
            parts: dict[str, int] = json.loads((tmp / "parts.json").read_text())
            total = sum(parts.values())
            print(f"\n{op}: {done / seconds:,.0f}/s, app CPU {us:,.0f} µs/op "
                  f"({total} samples, one per ms of its CPU)")  # fmt: skip
            for name, n in sorted(parts.items(), key=lambda kv: -kv[1]):
                print(f"  {us * n / total:7.1f} µs  {100 * n / total:5.1f} %  {name}")
    finally:
        server.stop()
        pg.cleanup()


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:  # the server process, started by main()
        serve()
    else:
        app()
