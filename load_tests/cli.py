"""``pushpop-bench``: what can this queue take on my hardware?

    pushpop-bench run S3a --duration 60s            # one variant (or a group: S4)
    pushpop-bench run-all --quick                    # every scenario, briefly
    pushpop-bench compare RUN_A RUN_B                # what changed between two runs
    pushpop-bench limit                              # service vs raw PostgreSQL
    pushpop-bench list                               # the scenario catalogue

``run`` starts PostgreSQL (``--store postgres``, the default) and ``pushpop serve`` on
free loopback ports, warms the service up, runs the scenario headless with the open
arrival model, samples resources, analyses, and leaves a results folder with CSVs,
histograms, ``report.html`` per variant, an ``index.html`` and a verdict line. Its
exit code is that of ``check`` (0 pass, 1 errors, 3 threshold, 4 ledger).
"""

from __future__ import annotations

import re
import time
import uuid
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from load_tests import catalog
from load_tests.evaluation import Baseline, evaluate, load_results
from load_tests.scripts import analyze_results
from load_tests.scripts import check_thresholds as checks

EPILOG = (
    "Examples: **pushpop-bench run S3a --duration 60s** (one variant, or a group: S4) · "
    "**pushpop-bench run-all --quick** (every scenario, briefly) · "
    "**pushpop-bench compare RUN_A RUN_B** · **pushpop-bench limit** (service vs raw "
    "PostgreSQL) · **pushpop-bench list**. Exit codes: 0 pass, 1 errors, 3 threshold or "
    "regression, 4 ledger (lost or duplicated items)."
)
app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode="markdown",
    help="What can this queue take on my hardware? Starts PostgreSQL and `pushpop serve` "
    "(or targets --host), runs load scenarios with an open arrival model, and writes "
    "reports with exact microsecond percentiles.",
    epilog=EPILOG,
)
console = Console()

DURATION_RE = re.compile(
    r"^\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?\s*(?:(\d+(?:\.\d+)?)s?)?\s*$"
)


def parse_duration(text: str | None) -> float | None:
    """``90``, ``90s``, ``2m``, ``1h30m`` -> seconds."""
    if text is None or text == "":
        return None
    m = DURATION_RE.match(text)
    if not m or not any(m.groups()):
        raise typer.BadParameter(f"not a duration: {text!r} (try 60s, 2m, 1h30m)")
    h, mi, s = (float(g) if g else 0.0 for g in m.groups())
    return h * 3600 + mi * 60 + s


# shared options
Store = Annotated[str, typer.Option(help="state store of the started server: postgres | sqlite")]
Runtime = Annotated[str, typer.Option(help="embedded (in-process actors) | dapr (daprd sidecar)")]
Host = Annotated[
    str | None, typer.Option(help="target this running server instead of starting one")
]
DbUrl = Annotated[
    str | None, typer.Option(help="PostgreSQL of --host (for monitoring and `limit`)")
]
Out = Annotated[Path, typer.Option(help="results root")]


def _settings(
    *,
    duration: str | None,
    quick: bool,
    time_scale: float | None,
    bucket: float | None,
    workers: int,
    thresholds: Path | None,
    overrides: list[str],
    report: bool = True,
) -> Any:
    from load_tests.scripts.run_scenario import RunSettings

    secs = parse_duration(duration)
    if quick:
        secs = secs or catalog.QUICK_DURATION
        time_scale = time_scale or catalog.QUICK_TIME_SCALE
        bucket = bucket or 0.5
    return RunSettings(
        duration=secs,
        time_scale=time_scale or 1.0,
        bucket=bucket or 1.0,
        workers=workers,
        thresholds=thresholds,
        overrides=list(overrides),
        report=report,
        label=f"b{time.strftime('%m%d%H%M%S')}{uuid.uuid4().hex[:4]}",
    )


def _execute(
    variants: list[catalog.Variant],
    title: str,
    tag: str,
    *,
    settings: Any,
    host: str | None,
    store: str,
    runtime: str,
    database_url: str | None,
    out: Path,
    repeat: int = 1,
    warm: bool = True,
    baseline: Path | None = None,
    margin: float = 0.15,
) -> int:
    from load_tests.harness import local_harness
    from load_tests.scripts.run_all_scenarios import run_many
    from load_tests.scripts.warmup import HostUnreachable, warmup

    root = out / f"{time.strftime('%Y%m%d-%H%M%S')}-{tag}"
    t0 = time.time()
    with console.status("starting the service" if not host else f"checking {host}"):
        harness_cm = local_harness(
            host=host, store=store, runtime=runtime, database_url=database_url, workdir=root
        )
        try:
            harness = harness_cm.__enter__()
        except (HostUnreachable, TimeoutError) as exc:
            console.print(f"[red]error:[/red] {exc}", highlight=False)
            return checks.EXIT_ERRORS
    try:
        console.print(
            f"[bold]{title}[/bold]: {len(variants)} variant(s) against {harness.base_url} "
            f"({harness.store}, {harness.runtime}) -> {root}",
            soft_wrap=True,
        )
        if warm:
            console.print(f"warm-up: {warmup(harness.base_url)}")
        evaluation, _ = run_many(
            variants, harness, root, settings, title=title, repeat=repeat, baseline=baseline,
            margin=margin, console=console,
        )  # fmt: skip
    finally:
        harness_cm.__exit__(None, None, None)
    style = "green" if evaluation.code == checks.EXIT_OK else "red"
    console.print(f"\n[bold {style}]{evaluation.line}[/bold {style}]", soft_wrap=True)
    console.print(f"report: {root / 'index.html'}  ({time.time() - t0:.0f} s)")
    return evaluation.code


@app.command()
def run(
    scenario: Annotated[str, typer.Argument(help="a variant (S3a), a group (S4) or all")],
    duration: Annotated[str | None, typer.Option(help="load per steady variant: 60s, 2m")] = None,
    quick: Annotated[bool, typer.Option(help="short runs: 8 s, shapes x0.1")] = False,
    time_scale: Annotated[float | None, typer.Option(help="shrink the burst shapes")] = None,
    runtime: Runtime = "embedded",
    store: Store = "postgres",
    host: Host = None,
    database_url: DbUrl = None,
    workers: Annotated[int, typer.Option(help="Locust worker processes (0 = local)")] = 0,
    repeat: Annotated[int, typer.Option(help="run each variant N times (medians)")] = 1,
    baseline: Annotated[
        Path | None,
        typer.Option(help="compare with this baseline.json", exists=True, dir_okay=False),
    ] = None,
    margin: Annotated[float, typer.Option(help="allowed regression vs baseline")] = 0.15,
    thresholds: Annotated[Path | None, typer.Option(help="JSON thresholds")] = None,
    bucket: Annotated[float | None, typer.Option(help="histogram bucket (s)")] = None,
    set_: Annotated[list[str], typer.Option("--set", help="user class attribute k=v")] = [],  # noqa: B006
    extra: Annotated[bool, typer.Option(help="include extra points (S5e: 1M items)")] = False,
    warm: Annotated[bool, typer.Option(help="warm the service up first")] = True,
    out: Out = Path("results"),
) -> None:
    """Run SCENARIO headless against a local (or --host) server and write a report."""
    try:
        variants = catalog.resolve(scenario, include_extra=extra)
    except KeyError as exc:
        raise typer.BadParameter(str(exc)) from exc
    settings = _settings(
        duration=duration, quick=quick, time_scale=time_scale, bucket=bucket, workers=workers,
        thresholds=thresholds, overrides=set_,
    )  # fmt: skip
    code = _execute(
        variants, f"pushpop-bench run {scenario}", scenario, settings=settings, host=host,
        store=store, runtime=runtime, database_url=database_url, out=out, repeat=repeat,
        warm=warm, baseline=baseline, margin=margin,
    )  # fmt: skip
    raise typer.Exit(code)


@app.command("run-all")
def run_all(
    quick: Annotated[bool, typer.Option(help="short runs: 8 s, shapes x0.1")] = False,
    duration: Annotated[str | None, typer.Option(help="load per steady variant")] = None,
    time_scale: Annotated[float | None, typer.Option(help="shrink the burst shapes")] = None,
    extra: Annotated[bool, typer.Option(help="include extra points (S5e: 1M items)")] = False,
    runtime: Runtime = "embedded",
    store: Store = "postgres",
    host: Host = None,
    database_url: DbUrl = None,
    workers: Annotated[int, typer.Option(help="Locust worker processes (0 = local)")] = 0,
    thresholds: Annotated[Path | None, typer.Option(help="JSON thresholds")] = None,
    bucket: Annotated[float | None, typer.Option(help="histogram bucket (s)")] = None,
    out: Out = Path("results"),
) -> None:
    """Run every scenario (S1..S7) and write one index with all verdicts."""
    settings = _settings(
        duration=duration, quick=quick, time_scale=time_scale, bucket=bucket, workers=workers,
        thresholds=thresholds, overrides=[],
    )  # fmt: skip
    variants = catalog.resolve("all", include_extra=extra)
    code = _execute(
        variants, "pushpop-bench run-all" + (" --quick" if quick else ""),
        "all-quick" if quick else "all", settings=settings, host=host, store=store,
        runtime=runtime, database_url=database_url, out=out,
    )  # fmt: skip
    raise typer.Exit(code)


@app.command()
def compare(
    run_a: Annotated[Path, typer.Argument(help="the reference: results folder or *_stats.csv")],
    run_b: Annotated[Path, typer.Argument(help="the run to judge against A")],
    margin: Annotated[float, typer.Option(help="allowed relative regression")] = 0.15,
) -> None:
    """B against A, metric by metric, with the noise band of their repeats.

    Exits 3 when a metric of B is worse than A beyond the margin and the noise band.
    """
    a, b = load_results([run_a]), load_results([run_b])
    common = sorted(set(a) & set(b))
    if not common:
        console.print(f"no common variants: A has {sorted(a)}, B has {sorted(b)}")
        raise typer.Exit(checks.EXIT_ERRORS)
    baseline = Baseline.from_runs({v: a[v] for v in common})
    baseline.source = str(run_a)
    evaluation = evaluate({v: b[v] for v in common}, baseline=baseline, margin=margin)
    t = Table(title=f"A = {run_a}   B = {run_b}", box=box.SIMPLE_HEAD)
    for col in ("variant", "metric", "A", "B", "change", "noise band", ""):
        t.add_column(col, justify="left" if col in ("variant", "metric") else "right")
    for v in evaluation.variants:
        for c in v.checks:
            if c.baseline is None:
                continue
            metric, value, _, base, change, noise, _ = c.cells()
            mark = "[red]REGRESSION[/red]" if c.regression else ""
            t.add_row(v.variant, metric, base, value, change, noise, mark)
    console.print(t)
    regressions = [f"{v.variant} {c.metric}" for v in evaluation.variants for c in v.regressions]
    if regressions:
        listed = ", ".join(regressions)
        console.print(f"[red]FAIL: {len(regressions)} regression(s): {listed}[/red]")
        raise typer.Exit(checks.EXIT_THRESHOLD)
    console.print(f"[green]PASS: no regression beyond {margin:.0%} and the noise band[/green]")


app.command("analyze")(analyze_results.main)
app.command("check")(checks.main)


@app.command("baseline")
def save_baseline(
    runs: Annotated[list[Path], typer.Argument(help="results directories (repeats welcome)")],
    out: Annotated[Path, typer.Option(help="where to write it")] = Path("baseline.json"),
) -> None:
    """Save the per-variant values (median and spread) of RUNS as a baseline for --baseline."""
    data = Baseline.from_runs(load_results(runs)).save(out)
    n = {v: d["runs"] for v, d in data["variants"].items()}
    console.print(f"baseline of {n} runs written to {out}")


@app.command()
def limit(
    concurrency: Annotated[int, typer.Option(help="pgbench clients = service users")] = 8,
    duration: Annotated[str, typer.Option(help="per measurement")] = "10s",
    runtime: Runtime = "embedded",
    host: Host = None,
    database_url: DbUrl = None,
    out: Out = Path("results"),
) -> None:
    """pgbench with the actor's transactions, then the service at the same concurrency."""
    from load_tests.harness import local_harness
    from load_tests.scripts.physical_limit import physical_limit

    root = out / f"{time.strftime('%Y%m%d-%H%M%S')}-limit"
    with local_harness(
        host=host, store="postgres", runtime=runtime, database_url=database_url, workdir=root
    ) as harness:
        physical_limit(
            harness, root, concurrency=concurrency, seconds=parse_duration(duration) or 10.0,
            console=console,
        )  # fmt: skip
    console.print(f"details: {root}")


@app.command("list")
def list_scenarios() -> None:
    """The scenario catalogue."""
    t = Table(title="pushpop-bench scenarios", box=box.SIMPLE_HEAD, pad_edge=False)
    t.add_column("variant", no_wrap=True)
    t.add_column("what")
    t.add_column("user class", no_wrap=True)
    t.add_column("schedule (full length)")
    for v in catalog.VARIANTS.values():
        if v.hidden:
            continue
        what = v.title + (f" [fault: {v.fault}]" if v.fault else "")
        sched = v.build_schedule(None, 1.0).describe()
        t.add_row(v.id + (" (extra)" if v.extra else ""), what, v.user.split(":")[-1], sched)
    console.print(t, markup=False)


def _version(value: bool) -> None:
    if value:
        try:
            console.print(f"pushpop-bench {version('pushpop')}")
        except PackageNotFoundError:
            console.print("pushpop-bench (not installed: running from a checkout)")
        raise typer.Exit()


@app.callback()
def _main(
    show_version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="print the version"),
    ] = False,
) -> None:
    """What can this queue take on my hardware?"""


def _add_tool_apps() -> None:
    from load_tests.scripts.warmup import main as warmup_main
    from load_tests.utils.queue_prepopulator import app as prepopulate_app
    from load_tests.utils.resource_monitor import app as monitor_app

    app.command("warmup")(warmup_main)
    app.add_typer(prepopulate_app, name="prepopulate", help="bulk-load queues, verify depths")
    app.add_typer(monitor_app, name="monitor", help="sample CPU/RSS and PostgreSQL statistics")


_add_tool_apps()

if __name__ == "__main__":
    app()
