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

import json
import re
import time
import uuid
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from load_tests import catalog
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
    from load_tests.scripts.warmup import warmup

    root = out / f"{time.strftime('%Y%m%d-%H%M%S')}-{tag}"
    t0 = time.time()
    with console.status("starting the service" if not host else f"checking {host}"):
        harness_cm = local_harness(
            host=host, store=store, runtime=runtime, database_url=database_url, workdir=root
        )
        harness = harness_cm.__enter__()
    try:
        console.print(
            f"[bold]{title}[/bold]: {len(variants)} variant(s) against {harness.base_url} "
            f"({harness.store}, {harness.runtime}) -> {root}"
        )
        if warm:
            console.print(f"warm-up: {warmup(harness.base_url)}")
        code, _ = run_many(
            variants, harness, root, settings, title=title, repeat=repeat, console=console
        )
    finally:
        harness_cm.__exit__(None, None, None)
    if baseline is not None:
        found = checks.find_summaries([root])
        regressions = checks.compare_to_baseline(found, json.loads(baseline.read_text()), margin)
        for r in regressions:
            console.print(
                f"[red]REGRESSION {r['variant']} {r['metric']}: {r['baseline_median']:.3f} -> "
                f"{r['current_median']:.3f} ({r['change']:+.1%})[/red]"
            )
        if regressions:
            code = checks.worst([code, checks.EXIT_THRESHOLD])
    verdict = (root / "verdict.txt").read_text().strip().splitlines()[-1]
    console.print(f"\n[bold]{verdict}[/bold]")
    console.print(f"report: {root / 'index.html'}  ({time.time() - t0:.0f} s)")
    return code


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
    baseline: Annotated[Path | None, typer.Option(help="compare with this baseline")] = None,
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
    run_a: Annotated[Path, typer.Argument(help="results folder (or one variant's)")],
    run_b: Annotated[Path, typer.Argument(help="results folder to compare with A")],
) -> None:
    """Print the differences between two runs, variant by variant."""
    a, b = checks.find_summaries([run_a]), checks.find_summaries([run_b])
    common = sorted(set(a) & set(b))
    if not common:
        console.print(f"no common variants: A has {sorted(a)}, B has {sorted(b)}")
        raise typer.Exit(1)
    t = Table(title=f"A = {run_a}   B = {run_b}")
    for col in ("variant", "metric", "A", "B", "change"):
        t.add_column(col, justify="right" if col in ("A", "B", "change") else "left")
    for v in common:
        ma = checks.baseline_metrics(a[v][-1])
        mb = checks.baseline_metrics(b[v][-1])
        ma["unexpected errors"] = a[v][-1]["errors"]["unexpected"]
        mb["unexpected errors"] = b[v][-1]["errors"]["unexpected"]
        for metric in sorted(set(ma) | set(mb)):
            x, y = ma.get(metric), mb.get(metric)
            change = ""
            if x and y is not None:
                pct = (y - x) / x
                worse = pct > 0 if not metric.startswith("requests_per_s") else pct < 0
                color = "red" if worse and abs(pct) > 0.1 else ("green" if abs(pct) > 0.1 else "")
                change = f"[{color}]{pct:+.1%}[/{color}]" if color else f"{pct:+.1%}"
            t.add_row(v, metric, _n(x), _n(y), change)
        la = a[v][-1]["ledger"].get("status")
        lb = b[v][-1]["ledger"].get("status")
        if la != lb:
            t.add_row(v, "ledger", str(la), str(lb), "")
    console.print(t)


def _n(x: Any) -> str:
    return "-" if x is None else (f"{x:,.3f}" if isinstance(x, float) else f"{x:,}")


@app.command()
def analyze(run_dir: Annotated[Path, typer.Argument(help="one variant's directory")]) -> None:
    """(Re)write summary.json and report.html of a variant directory."""
    from load_tests.report import write_run_report
    from load_tests.scripts.analyze_results import analyze as analyze_dir

    meta = json.loads((run_dir / "run.json").read_text()) if (run_dir / "run.json").exists() else {}
    v = catalog.VARIANTS.get(meta.get("variant", run_dir.name))
    summary = analyze_dir(run_dir, v.expected_errors if v else ())
    base, overrides = checks.load_thresholds(None)
    verdict = checks.evaluate(summary, checks.thresholds_for(summary["variant"], base, overrides))
    write_run_report(run_dir, summary, verdict.to_dict())
    console.print(verdict.line)
    console.print(f"report: {run_dir / 'report.html'}")


@app.command()
def check(
    runs: Annotated[list[Path], typer.Argument(help="variant or results directories")],
    thresholds: Annotated[Path | None, typer.Option(help="JSON thresholds")] = None,
    baseline: Annotated[Path | None, typer.Option(help="baseline.json")] = None,
    margin: Annotated[float, typer.Option(help="allowed relative regression")] = 0.15,
) -> None:
    """Verdicts and exit code (0 pass, 1 errors, 3 threshold/regression, 4 ledger)."""
    raise typer.Exit(checks.check(runs, thresholds, baseline, margin, echo=console.print))


@app.command("baseline")
def save_baseline(
    runs: Annotated[list[Path], typer.Argument(help="results directories (repeats welcome)")],
    out: Annotated[Path, typer.Option(help="where to write it")] = Path("baseline.json"),
) -> None:
    """Save the per-variant medians of RUNS as a baseline for --baseline."""
    data = checks.save_baseline(checks.find_summaries(runs), out)
    n = {v: d["runs"] for v, d in data["variants"].items()}
    console.print(f"baseline of {n} written to {out}")


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
    t = Table(title="pushpop-bench scenarios")
    for col in ("variant", "what", "user class", "schedule (full length)", "fault"):
        t.add_column(col)
    for v in catalog.VARIANTS.values():
        if v.hidden:
            continue
        sched = v.build_schedule(None, 1.0).describe()
        t.add_row(v.id + (" (extra)" if v.extra else ""), v.title, v.user, sched, v.fault or "")
    console.print(t)


@app.command()
def warmup(host: Annotated[str, typer.Option(help="base URL")] = "http://127.0.0.1:8000") -> None:
    """Wait until HOST is ready, then push/pop a few hundred items."""
    from load_tests.scripts.warmup import warmup as do_warmup

    console.print(do_warmup(host))


def _add_tool_apps() -> None:
    from load_tests.utils.queue_prepopulator import app as prepopulate_app
    from load_tests.utils.resource_monitor import app as monitor_app

    app.add_typer(prepopulate_app, name="prepopulate", help="bulk-load queues, verify depths")
    app.add_typer(monitor_app, name="monitor", help="sample CPU/RSS and PostgreSQL statistics")


_add_tool_apps()

if __name__ == "__main__":
    app()
