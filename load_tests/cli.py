"""``pushpop-bench``: what can this queue take on my hardware? (load_tests/README.md)

The commands only parse options and print; the work is in the libraries (``runner``,
``analysis``, ``evaluation``, ``report``, ``limit``, ``ab``). Those that start processes
or draw plots are imported inside their commands, so ``list``, ``--version`` and
``--help`` answer at once. The load plan's scripts are these commands under old names.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
import uuid
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from load_tests import catalog
from load_tests.evaluation.baseline import Baseline
from load_tests.evaluation.codes import EXIT_ERRORS, EXIT_OK, EXIT_THRESHOLD, EXIT_WORSE
from load_tests.evaluation.console import check as check_results
from load_tests.evaluation.junit import markdown_table, write_junit
from load_tests.evaluation.results import load_results
from load_tests.evaluation.verdict import evaluate
from load_tests.settings import RunSettings

EPILOG = (
    "Examples: **pushpop-bench run S3a --duration 60s** (one variant, or a group: S4) · "
    "**pushpop-bench run-all --quick** (every scenario, briefly) · "
    "**pushpop-bench compare RUN_A RUN_B** · **pushpop-bench limit** (service vs raw "
    "PostgreSQL) · **pushpop-bench list**. Exit codes: 0 pass, 1 errors, 3 threshold or "
    "regression, 4 ledger (lost or duplicated items), 5 aborted (an `--abort` threshold "
    "failed during the run), 6 worse (`ab`: the working tree is slower than --base)."
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
ThresholdsFile = Annotated[Path | None, typer.Option(help="JSON thresholds file")]
Margin = Annotated[float, typer.Option(help="allowed relative regression")]
P50 = Annotated[float | None, typer.Option("--p50", help="p50 limit in ms (plan: 30)")]
P95 = Annotated[float | None, typer.Option("--p95", help="p95 limit in ms (plan: 50)")]
P99 = Annotated[float | None, typer.Option("--p99", help="p99 limit in ms (plan: 100)")]
MaxErrors = Annotated[
    float | None, typer.Option("--max-error-rate", help="failed/requests (plan: 0.01)")
]
AbortOn = Annotated[
    list[str],
    typer.Option(
        "--abort",
        help="stop the run early once this threshold fails (error_rate, dropped_ratio, "
        "p50_ms, p95_ms, p99_ms); exit code 5",
    ),
]
AbortGrace = Annotated[
    str | None, typer.Option(help="seconds of load before --abort thresholds count (10s)")
]
LivePort = Annotated[
    int | None,
    typer.Option(help="serve the running variant's metrics for Prometheus on this port"),
]
JUnit = Annotated[
    Path | None, typer.Option(help="also write the verdict as JUnit XML (one test per check)")
]


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
    abort: list[str] | None = None,
    abort_grace: str | None = None,
    live_port: int | None = None,
) -> RunSettings:
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
        abort=list(abort or []),
        abort_grace=parse_duration(abort_grace),
        live_port=live_port,
    )


def _execute(
    variants: list[catalog.Variant],
    title: str,
    tag: str,
    *,
    settings: RunSettings,
    host: str | None,
    store: str,
    runtime: str,
    database_url: str | None,
    out: Path,
    repeat: int = 1,
    warm: bool = True,
    baseline: Path | None = None,
    margin: float = 0.15,
    junit: Path | None = None,
) -> int:
    from load_tests.harness import local_harness
    from load_tests.runner import run_many
    from load_tests.warmup import HostUnreachable, warmup

    root = out / f"{time.strftime('%Y%m%d-%H%M%S')}-{tag}"
    t0 = time.time()
    with contextlib.ExitStack() as stack:
        with console.status("starting the service" if not host else f"checking {host}"):
            try:
                harness = stack.enter_context(
                    local_harness(
                        host=host, store=store, runtime=runtime, database_url=database_url,
                        workdir=root,
                    )
                )  # fmt: skip
            except (HostUnreachable, TimeoutError) as exc:
                console.print(f"[red]error:[/red] {exc}", highlight=False)
                return EXIT_ERRORS
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
    style = "green" if evaluation.code == EXIT_OK else "red"
    console.print(f"\n[bold {style}]{evaluation.line}[/bold {style}]", soft_wrap=True)
    console.print(f"report: {root / 'index.html'}  ({time.time() - t0:.0f} s)")
    if junit:
        console.print(f"JUnit: {write_junit(junit, evaluation, title)}")
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
    thresholds: ThresholdsFile = None,
    bucket: Annotated[float | None, typer.Option(help="histogram bucket (s)")] = None,
    set_: Annotated[list[str], typer.Option("--set", help="user class attribute k=v")] = [],  # noqa: B006
    extra: Annotated[bool, typer.Option(help="include extra points (S5e: 1M items)")] = False,
    warm: Annotated[bool, typer.Option(help="warm the service up first")] = True,
    out: Out = Path("results"),
    junit: JUnit = None,
    abort: AbortOn = [],  # noqa: B006
    abort_grace: AbortGrace = None,
    live_port: LivePort = None,
) -> None:
    """Run SCENARIO headless against a local (or --host) server and write a report."""
    try:
        variants = catalog.resolve(scenario, include_extra=extra)
    except KeyError as exc:
        raise typer.BadParameter(str(exc)) from exc
    settings = _settings(
        duration=duration, quick=quick, time_scale=time_scale, bucket=bucket, workers=workers,
        thresholds=thresholds, overrides=set_, abort=abort, abort_grace=abort_grace,
        live_port=live_port,
    )  # fmt: skip
    code = _execute(
        variants, f"pushpop-bench run {scenario}", scenario, settings=settings, host=host,
        store=store, runtime=runtime, database_url=database_url, out=out, repeat=repeat,
        warm=warm, baseline=baseline, margin=margin, junit=junit,
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
    thresholds: ThresholdsFile = None,
    bucket: Annotated[float | None, typer.Option(help="histogram bucket (s)")] = None,
    out: Out = Path("results"),
    junit: JUnit = None,
    abort: AbortOn = [],  # noqa: B006
    abort_grace: AbortGrace = None,
    live_port: LivePort = None,
) -> None:
    """Run every scenario (S1..S7) and write one index with all verdicts."""
    settings = _settings(
        duration=duration, quick=quick, time_scale=time_scale, bucket=bucket, workers=workers,
        thresholds=thresholds, overrides=[], abort=abort, abort_grace=abort_grace,
        live_port=live_port,
    )  # fmt: skip
    variants = catalog.resolve("all", include_extra=extra)
    code = _execute(
        variants, "pushpop-bench run-all" + (" --quick" if quick else ""),
        "all-quick" if quick else "all", settings=settings, host=host, store=store,
        runtime=runtime, database_url=database_url, out=out, junit=junit,
    )  # fmt: skip
    raise typer.Exit(code)


@app.command()
def compare(
    run_a: Annotated[Path, typer.Argument(help="the reference: results folder or *_stats.csv")],
    run_b: Annotated[Path, typer.Argument(help="the run to judge against A")],
    margin: Margin = 0.15,
    markdown: Annotated[
        Path | None, typer.Option(help="also write the table as markdown (a PR comment)")
    ] = None,
    junit: JUnit = None,
) -> None:
    """B against A, metric by metric, with the noise band of their repeats.

    Exits 3 when a metric of B is worse than A beyond the margin and the noise band.
    """
    a, b = load_results([run_a]), load_results([run_b])
    common = sorted(set(a) & set(b))
    if not common:
        console.print(f"no common variants: A has {sorted(a)}, B has {sorted(b)}")
        raise typer.Exit(EXIT_ERRORS)
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
    line = (
        f"FAIL: {len(regressions)} regression(s): {', '.join(regressions)}"
        if regressions
        else f"PASS: no regression beyond {margin:.0%} and the noise band"
    )
    if markdown:
        title = f"pushpop-bench compare: A = {run_a}, B = {run_b}"
        markdown.write_text(markdown_table(evaluation, title, verdict=line))
        console.print(f"markdown: {markdown}")
    if junit:
        console.print(f"JUnit: {write_junit(junit, evaluation, 'pushpop-bench compare')}")
    console.print(f"[{'red' if regressions else 'green'}]{line}[/]", highlight=False)
    if regressions:
        raise typer.Exit(EXIT_THRESHOLD)


@app.command()
def ab(
    base: Annotated[str, typer.Option(help="git revision to compare with (main, HEAD~1)")],
    scenario: Annotated[str, typer.Option(help="push/pop mix: S1a S3a S3b S3c S4a S4b")] = "S3a",
    slices: Annotated[int, typer.Option(min=2, help="slices per build (= rounds)")] = 6,
    slice_seconds: Annotated[float, typer.Option(help="length of one slice")] = 5.0,
    concurrency: Annotated[int, typer.Option(help="closed-loop connections")] = 8,
    out: Out = Path("results"),
) -> None:
    """BASE and the working tree side by side, in interleaved slices: better, same, worse?

    Exits 6 when a metric of the working tree is worse than BASE on every round beyond
    its margin.
    """
    from load_tests.ab import MIXES, run_ab, table, to_json
    from load_tests.evaluation.ab import WORSE

    if scenario not in MIXES:
        raise typer.BadParameter(f"{scenario}: choose from {', '.join(MIXES)}")
    root = out / f"{time.strftime('%Y%m%d-%H%M%S')}-ab"

    def progress(r: int, name: str, s: Any) -> None:
        console.print(f"round {r + 1}/{slices} {name}: {s.load.rate:,.0f} req/s")

    result = run_ab(
        base, scenario=scenario, slices=slices, slice_seconds=slice_seconds,
        concurrency=concurrency, workdir=root, on_slice=progress,
    )  # fmt: skip
    console.print(table(result))
    summary = to_json(result)
    (root / "ab.json").write_text(json.dumps(summary, indent=2))
    console.print(f"verdict: {summary['verdict']}; errors: {result.errors}; details: {root}")
    if summary["verdict"] == WORSE:
        raise typer.Exit(EXIT_WORSE)
    if result.errors:
        raise typer.Exit(EXIT_ERRORS)


def threshold_flags(
    p50: float | None, p95: float | None, p99: float | None, max_error_rate: float | None
) -> dict[str, Any]:
    """Command-line limits as threshold overrides (only those given)."""
    given = {"p50_ms": p50, "p95_ms": p95, "p99_ms": p99, "error_rate": max_error_rate}
    return {k: v for k, v in given.items() if v is not None}


@app.command()
def check(
    runs: Annotated[list[Path], typer.Argument(help="*_stats.csv files or results folders")],
    thresholds: ThresholdsFile = None,
    baseline: Annotated[
        Path | None, typer.Option(help="baseline.json to compare with", exists=True, dir_okay=False)
    ] = None,
    margin: Margin = 0.15,
    p50: P50 = None,
    p95: P95 = None,
    p99: P99 = None,
    max_error_rate: MaxErrors = None,
) -> None:
    """Print p50/p95/p99/errors per endpoint and one verdict per run; exit with the worst."""
    flags = threshold_flags(p50, p95, p99, max_error_rate)
    raise typer.Exit(check_results(runs, typer.echo, thresholds, baseline, margin, flags))


@app.command()
def analyze(
    paths: Annotated[
        list[Path], typer.Argument(help="Locust *_stats.csv files, variant or results folders")
    ],
    report: Annotated[bool, typer.Option(help="also write report.html")] = True,
    thresholds: ThresholdsFile = None,
    p50: P50 = None,
    p95: P95 = None,
    p99: P99 = None,
    max_error_rate: MaxErrors = None,
) -> None:
    """Print p50/p95/p99/errors per endpoint and the verdicts; exit non-zero on a failure.

    A pushpop-bench variant folder is (re)analysed first: its ``summary.json`` (and
    ``report.html``) are rewritten from the raw histograms.
    """
    from load_tests.runner import reanalyze

    flags = threshold_flags(p50, p95, p99, max_error_rate)
    reanalyze(paths, thresholds, report=report)
    raise typer.Exit(check_results(paths, typer.echo, thresholds, overrides=flags))


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
    from load_tests.limit import physical_limit

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


@app.command("warmup")
def warmup_command(
    host: Annotated[str, typer.Option(help="base URL of the service")] = "http://127.0.0.1:8000",
    requests: Annotated[int, typer.Option(help="push/pop requests to send")] = 200,
) -> None:
    """Wait for HOST to be ready, then push/pop REQUESTS times."""
    import httpx

    from load_tests.warmup import HostUnreachable, warmup

    try:
        typer.echo(warmup(host, requests))
    except (HostUnreachable, TimeoutError, httpx.HTTPError) as exc:
        typer.echo(f"warm-up failed: {exc}", err=True)
        raise typer.Exit(1) from None


def single_command_app(command: Callable[..., None], help_text: str | None) -> typer.Typer:
    """One command of this CLI as a program of its own (the load plan's script names)."""
    one = typer.Typer(add_completion=False, help=help_text)
    one.command()(command)
    return one


def _add_tool_apps() -> None:
    from load_tests.utils.queue_prepopulator import app as prepopulate_app
    from load_tests.utils.resource_monitor import app as monitor_app

    app.add_typer(prepopulate_app, name="prepopulate", help="bulk-load queues, verify depths")
    app.add_typer(monitor_app, name="monitor", help="sample CPU/RSS and PostgreSQL statistics")


_add_tool_apps()

if __name__ == "__main__":
    app()
