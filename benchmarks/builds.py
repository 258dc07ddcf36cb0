"""Two builds of pushpop under the same load in one run: did a change make it faster?

``python -m benchmarks.builds --base REV``: the throughput benchmark's 16-connection
points on REV (a temporary git worktree) and on this checkout, side by side, in slices
taken in turn so both see the same minutes of the host; numbers, no verdict
(``pushpop-bench ab`` is the A/B with one). See docs/benchmarks.md.
"""

from __future__ import annotations

import json
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from benchmarks.serving import ROOT, start_postgres, start_server
from benchmarks.throughput import Bench
from benchmarks.throughput_goals import CONNECTIONS
from load_tests.ab import imported_from, in_build, worktree
from load_tests.measure.cpu import DAPR_PROCESSES, Meter, per_op
from supervise.server import ServerProcess

console = Console(width=None if sys.stdout.isatty() else 160)
app = typer.Typer(add_completion=False)

# name -> (operation, queue prefix, queues): the throughput benchmark's 16-connection points
POINTS = {
    "push50": ("push", "q", 50),
    "push1": ("push", "hot", 1),
    "pop50": ("pop", "q", 50),
    "pop1": ("pop", "hot", 1),
}
# pops are given this many items per second of load, per build, so none pops an empty queue
POP_FILL_RATE = 1500


def median(samples: list[dict[str, float]], key: str) -> float:
    return statistics.median(s[key] for s in samples)


@app.command()
def main(
    base: str = typer.Option(
        ..., help="git revision to compare with the checkout (main, HEAD~1, ...)"
    ),
    runtime: str = typer.Option("embedded", help="embedded or dapr (component state)"),
    rounds: int = typer.Option(4, help="slices per build and point"),
    seconds: float = typer.Option(3.0, help="length of one slice"),
    points: str = typer.Option(",".join(POINTS), help="comma-separated: " + ", ".join(POINTS)),
    out: str = typer.Option("/tmp/pushpop-builds.json", help="where the JSON goes"),
) -> None:
    chosen = [p.strip() for p in points.split(",") if p.strip()]
    unknown = [p for p in chosen if p not in POINTS]
    if unknown:
        raise typer.BadParameter(f"unknown points {unknown}; choose from {list(POINTS)}")
    tmp = Path(tempfile.mkdtemp(prefix="pushpop-builds-"))
    generator = "wrk" if shutil.which("wrk") else "aiohttp"
    pg = start_postgres()
    servers: dict[str, ServerProcess] = {}
    try:
        assert pg.pid is not None
        bench = Bench(pg, Meter(pg.pid, DAPR_PROCESSES), seconds, generator)
        with worktree(base) as base_dir:
            builds = {"base": base_dir, "head": ROOT}
            code = {name: imported_from(path) for name, path in builds.items()}
            for name, path in builds.items():
                (tmp / name).mkdir()  # its log and Dapr run directory
                servers[name] = server = start_server(
                    pg, runtime, "optimised", tmp / name, "component", database=f"builds_{name}",
                    command=in_build(path, "-m", "api.cli", "serve", "--log-level", "warning"),
                )  # fmt: skip
                bench.warm(server)
            results = []
            for point in chosen:
                op, prefix, queues = POINTS[point]
                if op == "pop":
                    for server in servers.values():
                        bench.fill_for_pops(server, POP_FILL_RATE * rounds, {prefix: queues})
                samples: dict[str, list[dict[str, float]]] = {name: [] for name in servers}
                for r in range(rounds):
                    order = list(servers.items())
                    for name, server in order if r % 2 == 0 else reversed(order):
                        cpu: dict[str, float] = {}
                        load = bench.measured_load(server, cpu, op, prefix, queues,
                                                   CONNECTIONS, seconds)  # fmt: skip
                        samples[name].append({
                            "rate": load.requests / load.seconds, "errors": load.errors,
                            "server_us": per_op(cpu, load.requests).get("server", 0.0),
                        })  # fmt: skip
                results.append({"point": point, "samples": samples} | {
                    f"{name}_{key}": median(samples[name], key)
                    for name in servers for key in ("rate", "server_us")
                })  # fmt: skip
    finally:
        for server in servers.values():
            server.stop()
        pg.cleanup()
    result = {
        "runtime": runtime, "generator": generator, "rounds": rounds, "seconds": seconds,
        "builds": {"base": {"rev": base, "code": code["base"]},
                   "head": {"rev": "checkout", "code": code["head"]}},
        "points": results, "logs": str(tmp),
    }  # fmt: skip
    Path(out).write_text(json.dumps(result, indent=2))
    title = (f"{runtime}: head (this checkout) against base ({base}), medians of {rounds} "
             f"slices of {seconds:g} s at {CONNECTIONS} connections")  # fmt: skip
    table = Table(title=title)
    for column in ("point", "base /s", "head /s", "head / base", "base server µs/op",
                   "head server µs/op", "head / base", "errors"):  # fmt: skip
        table.add_column(column, justify="right")
    for r in results:
        errors = sum(s["errors"] for runs in r["samples"].values() for s in runs)
        table.add_row(
            r["point"], f"{r['base_rate']:,.0f}", f"{r['head_rate']:,.0f}",
            f"{r['head_rate'] / r['base_rate']:.3f}", f"{r['base_server_us']:,.0f}",
            f"{r['head_server_us']:,.0f}", f"{r['head_server_us'] / r['base_server_us']:.3f}",
            str(int(errors)),
        )  # fmt: skip
    console.print(table)
    console.print(f"JSON: {out}; server logs in {tmp}")


if __name__ == "__main__":
    app()
