"""A maintainer's A/B (``pushpop-bench ab --base REV``): did my change make it faster?

REV from a temporary git worktree and the working tree, served side by side on one
PostgreSQL, loaded in closed-loop slices taken in turn (the order flipping every round)
so both see the same minutes of a shared host; the verdict is
:mod:`load_tests.evaluation.ab`. How it loads and judges: load_tests/README.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from rich.table import Table

from load_tests.evaluation.ab import BETTER, METRICS, WORSE, Comparison, compare, overall
from load_tests.measure.cpu import tree_cpu
from load_tests.measure.load import Request, Result, closed_loop
from load_tests.warmup import warmup
from supervise.server import ServerProcess

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mix:
    push_share: float  # the rest are pops
    queues: int


# the scenarios' push/pop mixes (their user classes), as a closed loop
MIXES = {
    "S1a": Mix(1.0, 1),
    "S3a": Mix(0.5, 10),
    "S3b": Mix(0.8, 10),
    "S3c": Mix(0.2, 10),
    "S4a": Mix(0.5, 1),
    "S4b": Mix(0.5, 10),
}


@contextlib.contextmanager
def worktree(rev: str) -> Iterator[Path]:
    """``rev`` checked out in a temporary worktree of this repository, removed after."""
    tmp = Path(tempfile.mkdtemp(prefix="pushpop-base-"))
    path = tmp / "base"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(path), rev],
                   check=True, capture_output=True)  # fmt: skip
    try:
        yield path
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(path)],
                       capture_output=True)  # fmt: skip
        shutil.rmtree(tmp, ignore_errors=True)


def in_build(code: Path, *args: str) -> list[str]:
    """This venv's Python run in ``code``: ``-m`` puts the working directory first on
    ``sys.path``, so the build's own packages are imported, not the installed checkout."""
    return ["sh", "-c", 'cd "$0" && exec "$@"', str(code), sys.executable, *args]


def imported_from(code: Path) -> str:
    """Where a server started in ``code`` imports ``api`` from (checked, not assumed)."""
    cmd = in_build(code, "-c", "import api; print(api.__file__)")
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip()


@dataclass
class Slice:
    load: Result
    cpu_s: float  # the server's and its children's (daprd in Dapr mode)

    @property
    def errors(self) -> int:
        return self.load.errors

    def metrics(self) -> dict[str, float]:
        return {
            "requests/s": self.load.rate,
            "p50": self.load.ms(50),
            "p99": self.load.ms(99),
            "server CPU/op": self.cpu_s / max(self.load.sent, 1) * 1e6,
        }


def mixed(url: str, mix: Mix, tag: str) -> Request:
    """Pushes and pops in the scenario's shares (a deterministic mix), over its queues."""
    counter = itertools.count()

    async def request(session: aiohttp.ClientSession) -> int:
        n = next(counter)
        queue = f"{url}/queue/ab-{tag}-{n % mix.queues}"
        if int((n + 1) * mix.push_share) > int(n * mix.push_share):
            post = session.post(f"{queue}/push", json={"item": {"n": n}, "priority": n % 3})
        else:
            post = session.post(f"{queue}/pop")
        async with post as r:
            await r.read()
            return r.status

    return request


async def _load(url: str, mix: Mix, concurrency: int, seconds: float, tag: str) -> Result:
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        return await closed_loop(session, concurrency, seconds, mixed(url, mix, tag), tag)


def load_slice(server: ServerProcess, mix: Mix, concurrency: int, seconds: float) -> Slice:
    cpu0 = tree_cpu(server.pid or 0)
    load = asyncio.run(_load(server.url, mix, concurrency, seconds, f"{server.port}"))
    return Slice(load, tree_cpu(server.pid or 0) - cpu0)


@dataclass
class AbResult:
    base_rev: str
    scenario: str
    code: dict[str, str]  # build -> where its api package came from
    slices: dict[str, list[Slice]]
    comparisons: list[Comparison]

    @property
    def errors(self) -> int:
        return sum(s.errors for runs in self.slices.values() for s in runs)


def interleaved(rounds: int) -> Iterator[tuple[int, str]]:
    """(round, build): base, head, then head, base, ... so neither always goes first."""
    for r in range(rounds):
        for name in ("base", "head") if r % 2 == 0 else ("head", "base"):
            yield r, name


def run_ab(
    base_rev: str,
    *,
    scenario: str = "S3a",
    slices: int = 6,
    slice_seconds: float = 5.0,
    concurrency: int = 8,
    workdir: Path,
    head_dir: Path = ROOT,
    on_slice: Callable[[int, str, Slice], None] | None = None,
) -> AbResult:
    """Serve ``base_rev`` and ``head_dir`` on one PostgreSQL and load them in turn."""
    from supervise.pgserver import PostgresServer

    mix = MIXES[scenario]
    workdir.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        pg = PostgresServer().start()
        stack.callback(pg.cleanup)
        builds = {"base": stack.enter_context(worktree(base_rev)), "head": head_dir}
        code = {name: imported_from(path) for name, path in builds.items()}
        servers: dict[str, ServerProcess] = {}
        for name, path in builds.items():
            server = ServerProcess(
                store="postgres", database_url=pg.database(f"ab_{name}", fresh=True),
                log_path=workdir / f"{name}.log",
                command=in_build(path, "-m", "api.cli", "serve", "--log-level", "warning"),
            )  # fmt: skip
            stack.callback(server.stop)
            servers[name] = server.start(60)
            warmup(server.url)
        taken: dict[str, list[Slice]] = {"base": [], "head": []}
        for r, name in interleaved(slices):
            taken[name].append(load_slice(servers[name], mix, concurrency, slice_seconds))
            if on_slice:
                on_slice(r, name, taken[name][-1])
    per = {name: [s.metrics() for s in runs] for name, runs in taken.items()}
    comparisons = [
        compare(m, [s[m.name] for s in per["base"]], [s[m.name] for s in per["head"]])
        for m in METRICS
    ]
    return AbResult(base_rev, scenario, code, taken, comparisons)


def table(result: AbResult) -> Table:
    """Per metric: each build's median, the ratio head / base, its noise band, the verdict."""
    rounds = len(result.slices["base"])
    t = Table(title=f"{result.scenario}: head (working tree) / base ({result.base_rev}), "
                    f"{rounds} interleaved slices each")  # fmt: skip
    for column in ("metric", "base", "head", "head / base", "noise band (min-max)", "margin"):
        t.add_column(column, justify="right")
    t.add_column("verdict")
    for c in result.comparisons:
        colour = {WORSE: "red", BETTER: "green"}.get(c.verdict, "")
        t.add_row(
            c.metric.name, f"{c.base:,.2f} {c.metric.unit}", f"{c.head:,.2f} {c.metric.unit}",
            f"{c.ratio:.3f}", f"{c.low:.3f} - {c.high:.3f}", f"±{c.metric.margin:.0%}",
            f"[{colour}]{c.verdict}[/{colour}]" if colour else c.verdict,
        )  # fmt: skip
    return t


def to_json(result: AbResult) -> dict[str, Any]:
    return {
        "base": result.base_rev, "scenario": result.scenario, "code": result.code,
        "errors": result.errors, "verdict": overall(result.comparisons),
        "slices": {name: [s.metrics() | {"errors": s.errors} for s in runs]
                   for name, runs in result.slices.items()},
        "comparisons": [{"metric": c.metric.name, "base": c.base, "head": c.head,
                         "ratio": c.ratio, "low": c.low, "high": c.high,
                         "verdict": c.verdict} for c in result.comparisons],
    }  # fmt: skip
