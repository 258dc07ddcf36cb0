"""Run variants end to end: monitor, fault, Locust child, analysis, verdict, reports.

The orchestrating process never imports Locust (``headless.py`` says why): it starts the
headless child, samples resources and injects the variant's fault in threads, then
analyses what the child left in the variant's folder. Several variants share one server
and one PostgreSQL, each on its own queue ids (run label + variant id).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from rich.console import Console

from load_tests.abort import Abort, AbortWatch, stop_tree
from load_tests.analysis.loading import read_json
from load_tests.analysis.summarize import analyze
from load_tests.catalog import FULL_DURATION, GROUPS, VARIANTS, Variant
from load_tests.evaluation.codes import EXIT_ABORT, EXIT_ERRORS
from load_tests.evaluation.results import Problem, RunResult
from load_tests.evaluation.thresholds import ThresholdSet
from load_tests.evaluation.verdict import Evaluation, VariantEvaluation, evaluate, evaluate_files
from load_tests.faults import FAULTS, FaultThread
from load_tests.harness import SIDECAR_NAMES, Harness
from load_tests.live import LiveExporter
from load_tests.report.index_page import write_index
from load_tests.report.run_page import write_run_report
from load_tests.settings import RunSettings
from load_tests.summary import RunSummary
from load_tests.utils.resource_monitor import ResourceMonitor, tree_of

REPO_ROOT = Path(__file__).resolve().parents[1]
CHILD_GRACE = 300.0  # seconds beyond the schedule for setup, drain and writing files


@dataclass
class Outcome:
    """What one run of a variant left; judged later, together with its repeats."""

    variant: Variant
    dir: Path
    summary: RunSummary | None
    seconds: float
    problems: list[Problem] = field(default_factory=list)
    skipped: str | None = None
    verdict: VariantEvaluation | None = None  # set by judge(), the one evaluation
    aborted: Abort | None = None  # a threshold marked abort stopped it early

    def result(self) -> RunResult:
        r = (
            RunResult.from_summary(self.summary, str(self.dir))
            if self.summary is not None
            else RunResult(self.variant.id, str(self.dir))
        )
        r.variant = self.variant.id
        r.skipped = r.skipped or self.skipped
        r.problems = [*self.problems, *r.problems]
        return r

    def row(self, root: Path) -> dict[str, Any]:
        """What the index page and ``results.json`` (less the summary) need."""
        verdict = self.verdict.to_dict() if self.verdict else {}
        return {
            "variant": self.variant.id,
            "group": self.variant.group,
            "title": self.variant.title,
            "rel": os.path.relpath(self.dir, root),
            "summary": self.summary,
            "verdict": verdict,
            "skipped": self.skipped or "",
            "seconds": round(self.seconds, 1),
        }


def machine() -> str:
    mem = psutil.virtual_memory().total / 2**30
    return f"{psutil.cpu_count()} CPUs, {mem:.0f} GB RAM, {platform.platform(terse=True)}"


def monitor_roles(harness: Harness) -> dict[str, Any]:
    roles: dict[str, Any] = {"server": tree_of(harness.server_pid, exclude=SIDECAR_NAMES)}
    if harness.runtime == "dapr":
        for name in SIDECAR_NAMES:
            roles[name] = lambda n=name: harness.sidecar_pids(n)
    if harness.database_url or harness.pg is not None:
        roles["postgres"] = tree_of(harness.postgres_pid)
    return roles


def judge(
    outcomes: list[Outcome],
    settings: RunSettings,
    *,
    baseline: Path | None = None,
    margin: float = 0.15,
    console: Console | None = None,
) -> Evaluation:
    """Evaluate every variant over its repeats ONCE, then render that everywhere.

    Each run's ``verdict.json``/``verdict.txt``/``report.html`` and the console get the
    verdict of its variant (with the baseline, when given), so no output can say PASS
    while the exit code says otherwise.
    """
    console = console or Console()
    runs: dict[str, list[RunResult]] = {}
    for o in outcomes:
        runs.setdefault(o.variant.id, []).append(o.result())
    evaluation = evaluate_files(runs, settings.thresholds, baseline, margin)
    for o in outcomes:
        o.verdict = evaluation.of(o.variant.id)
        (o.dir / "verdict.json").write_text(json.dumps(o.verdict.to_dict(), indent=1))
        (o.dir / "verdict.txt").write_text(o.verdict.text() + "\n")
        if o.summary is not None and settings.report:
            write_run_report(o.dir, o.summary, o.verdict)
    for v in evaluation.variants:
        style = {"PASS": "green", "FAIL": "red", "SKIP": "yellow"}.get(v.status, "")
        console.print(f"[{style}]{v.line}[/{style}]", highlight=False, soft_wrap=True)
        for line in v.text().splitlines()[1:]:
            console.print(line, highlight=False, markup=False, soft_wrap=True)
    return evaluation


def run_variant(
    variant: Variant,
    harness: Harness,
    out_dir: Path,
    settings: RunSettings,
    console: Console | None = None,
    live: LiveExporter | None = None,
) -> Outcome:
    console = console or Console()
    out_dir = out_dir.resolve()  # the load generator runs from the repository root
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    fault = FAULTS[variant.fault]() if variant.fault else None
    reason = fault.skip_reason(harness) if fault else None
    if reason:
        (out_dir / "faults.json").write_text(json.dumps({"name": fault.name, "skipped": reason}))
        return Outcome(variant, out_dir, None, time.time() - t0, skipped=reason)

    schedule = (
        variant.build_schedule(settings.duration, settings.time_scale)
        if settings.model == "open"
        else None
    )
    duration = schedule.duration if schedule else (settings.duration or FULL_DURATION)
    run_id = f"{settings.label or time.strftime('b%m%d%H%M%S')}-{variant.id}"
    (out_dir / "run.json").write_text(
        json.dumps(
            {
                "variant": variant.id,
                "title": variant.title,
                "group": variant.group,
                "user_class": variant.user,
                "schedule": schedule.to_spec() if schedule else None,
                "fault": variant.fault,
                "settings": settings.to_dict(),
                "harness": harness.describe(),
                "machine": machine(),
                "python": sys.version.split()[0],
                "run_id": run_id,
                "started": time.strftime("%Y-%m-%d %H:%M:%S"),
            },
            indent=1,
        )
    )
    cmd = [
        sys.executable, "-m", "load_tests.headless",
        *settings.headless_argv(
            variant=variant.id, host=harness.base_url, out=out_dir, run_id=run_id
        ),
    ]  # fmt: skip
    monitor = ResourceMonitor(
        out_dir,
        monitor_roles(harness),
        database_url=harness.database_url,
        interval=settings.monitor_interval,
    ).start()
    fault_thread = (
        FaultThread(fault, harness, out_dir, duration, settings.fault_outage) if fault else None
    )
    if fault_thread:
        fault_thread.start()
    rc: int | None = None
    watch: AbortWatch | None = None
    try:
        with open(out_dir / "locust.log", "wb") as log:
            proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, cwd=REPO_ROOT, env=_child_env()
            )
            monitor.add_role("loadgen", tree_of(lambda: proc.pid))
            watch = abort_watch(variant, settings, out_dir, lambda: stop_tree(proc.pid))
            if live:
                limits = ThresholdSet.load(settings.thresholds).for_variant(variant.id)
                live.watch(variant.id, out_dir, limits, settings.bucket)
            with console.status(f"{variant.id}: {variant.title} ({duration:g} s of load)"):
                try:
                    rc = proc.wait(timeout=duration + CHILD_GRACE)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    rc = proc.wait()
            if watch:
                watch.close()
    finally:
        if fault_thread:
            fault_thread.cancelled.set()
            fault_thread.join(timeout=duration + 180)
        monitor.stop()
    summary = None
    if (out_dir / "started.json").exists():
        summary = analyze(out_dir, variant.expected_errors)
    problems = []
    if summary is None or rc != 0:
        why = f"load generator exited with {rc}; see {out_dir / 'locust.log'}"
        err = out_dir / "setup_error.txt"
        if err.exists():
            why += f" ({err.read_text()[:300]})"
        problems.append(Problem(EXIT_ERRORS, why))
    aborted = watch.abort if watch else None
    if aborted:
        problems.insert(0, Problem(EXIT_ABORT, aborted.why))
        console.print(f"[red]{variant.id}: {aborted.why}[/red]", highlight=False)
    ran = f"stopped after {aborted.at_s:g} s" if aborted else f"ran {duration:g} s"
    console.print(f"{variant.id}: {ran} of load (exit {rc})", highlight=False)
    return Outcome(variant, out_dir, summary, time.time() - t0, problems, aborted=aborted)


def abort_watch(
    variant: Variant, settings: RunSettings, out_dir: Path, stop: Any
) -> AbortWatch | None:
    """The watcher of the thresholds marked abort (``--abort`` or the thresholds file)."""
    limits = ThresholdSet.load(settings.thresholds)
    metrics = settings.abort or limits.abort
    if not metrics:
        return None
    grace = settings.abort_grace if settings.abort_grace is not None else limits.abort_grace_s
    watch = AbortWatch(
        out_dir, limits.for_variant(variant.id), metrics, 10.0 if grace is None else grace,
        stop, bucket_s=settings.bucket,
    )  # fmt: skip
    watch.start()
    return watch


def _child_env() -> dict[str, str]:
    """The child must import this checkout's ``load_tests`` even when installed elsewhere."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
    return env


def run_many(
    variants: list[Variant],
    harness: Harness,
    root: Path,
    settings: RunSettings,
    *,
    title: str,
    repeat: int = 1,
    baseline: Path | None = None,
    margin: float = 0.15,
    console: Console | None = None,
) -> tuple[Evaluation, list[Outcome]]:
    """Run ``variants`` (each ``repeat`` times), then judge them all in one evaluation."""
    console = console or Console()
    root.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    outcomes: list[Outcome] = []
    live = LiveExporter(settings.live_port) if settings.live_port is not None else None
    if live:
        console.print(f"live metrics: http://127.0.0.1:{live.port}/metrics", highlight=False)
    try:
        for v in variants:
            for i in range(repeat):
                out = root / v.id if repeat == 1 else root / v.id / f"rep{i + 1}"
                outcomes.append(run_variant(v, harness, out, settings, console, live))
                if outcomes[-1].aborted:
                    break  # an abort stops the whole run, not just this variant
            if outcomes and outcomes[-1].aborted:
                break
    finally:
        if live:
            live.close()
    evaluation = judge(outcomes, settings, baseline=baseline, margin=margin, console=console)
    write_results(root, title, outcomes, harness, settings, evaluation, time.time() - t0)
    return evaluation, outcomes


def write_results(
    root: Path,
    title: str,
    outcomes: list[Outcome],
    harness: Harness,
    settings: RunSettings,
    evaluation: Evaluation,
    elapsed: float,
) -> None:
    rows = [o.row(root) for o in outcomes]
    (root / "results.json").write_text(
        json.dumps(
            {
                "title": title,
                "verdict": evaluation.to_dict(),
                "elapsed_s": round(elapsed, 1),
                "harness": harness.describe(),
                "settings": settings.to_dict(),
                "machine": machine(),
                "variants": [
                    {k: v for k, v in r.items() if k != "summary"}
                    | {"dir": r["rel"], "headline": r["verdict"]["headline"]}
                    for r in rows
                ],
            },
            indent=1,
        )
    )
    (root / "verdict.txt").write_text(evaluation.text())
    facts = [
        ["target", f"{harness.base_url} ({harness.store}, {harness.runtime} runtime)"],
        ["machine", machine()],
        ["variants", len(outcomes)],
        ["wall time", f"{elapsed:.0f} s"],
        [
            "settings",
            f"duration {settings.duration or 'default'} s, time scale {settings.time_scale:g}, "
            f"{settings.model} model, bucket {settings.bucket:g} s, workers {settings.workers}",
        ],
    ]
    if evaluation.baseline:
        facts.append(["baseline", f"{evaluation.baseline} (margin {evaluation.margin:.0%})"])
    write_index(root, title, rows, GROUPS, evaluation, facts)


def reanalyze(paths: list[Path], thresholds: Path | None, *, report: bool) -> None:
    """Rewrite ``summary.json`` (and ``report.html``) of the pushpop-bench variant folders
    among ``paths`` from their raw histograms; other paths are left to the check."""
    for run_dir in (p for p in paths if (p / "histograms.hlog").exists()):
        meta = read_json(run_dir / "run.json") or {}
        variant = VARIANTS.get(meta.get("variant", run_dir.name))
        summary = analyze(run_dir, variant.expected_errors if variant else ())
        if report:
            result = RunResult.from_summary(summary, str(run_dir))
            evaluation = evaluate({result.variant: [result]}, ThresholdSet.load(thresholds))
            write_run_report(run_dir, summary, evaluation.variants[0])
