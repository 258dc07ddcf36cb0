"""Turn one run's files into ``summary.json``: percentiles, rates, errors, knee, recovery.

Inputs (all in the run directory; only ``histograms.hlog`` is strictly needed):
Locust's ``locust_stats.csv`` / ``locust_failures.csv`` / ``locust_stats.json``, our
``histograms.hlog`` + ``counters.csv`` (exact, microseconds, merged across workers),
``depth.csv``, ``resources.csv`` / ``postgres.csv`` (resource monitor), ``ledger.json``,
``faults.json``, ``started.json`` (schedule, start time) and ``run.json`` (what ran).
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from load_tests.analysis.loading import RunData, load_run, read_json
from load_tests.analysis.sections import (
    bursts_summary,
    depth_series,
    endpoint_summary,
    errors_summary,
    fault_summary,
    knee_summary,
    littles_law_summary,
    queue_time_summary,
    resources_summary,
    throughput_summary,
)
from load_tests.analysis.workers import workers_summary
from load_tests.summary import MISSING_LEDGER, Depth, RunSummary


def summarize(
    data: RunData,
    *,
    expected_errors: tuple[str, ...] = (),
    p99_limit_ms: float | None = 100.0,
    grace_s: float = 10.0,
) -> RunSummary:
    thr = throughput_summary(data)
    qt = queue_time_summary(data)
    _, totals = depth_series(data)
    locust_json = read_json(data.dir / "locust_stats.json") or []
    summary = RunSummary(
        variant=data.meta.get("variant") or data.dir.name,
        title=data.meta.get("title", ""),
        run_id=data.started.get("run_id"),
        schedule=data.schedule.describe() if data.schedule else "closed loop",
        model=data.started.get("model"),
        started_at=data.started_at,
        window=list(data.window),
        bucket_s=data.series.width,
        queues=len(data.started.get("queues", [])),
        prepopulated=data.started.get("prepopulated", {}),
        endpoints=endpoint_summary(data),
        throughput=thr,
        errors=errors_summary(data, expected_errors, grace_s),
        time_in_queue_ms=qt,
        littles_law=littles_law_summary(data, thr, qt),
        knee=knee_summary(data, p99_limit_ms),
        bursts=bursts_summary(data),
        fault=fault_summary(data),
        ledger=data.ledger or dict(MISSING_LEDGER),
        resources=resources_summary(data),
        depth=Depth(
            samples=len(totals),
            start=totals[0] if totals else None,
            end=totals[-1] if totals else None,
            mean=round(statistics.fmean(totals), 1) if totals else None,
            max=max(totals) if totals else None,
        ),
        locust_total_requests=sum(int(e.get("num_requests", 0)) for e in locust_json),
        workers=workers_summary(data),
    )
    summary.warnings = warnings(summary)
    return summary


def warnings(summary: RunSummary) -> list[str]:
    """Things a reader must know before trusting the numbers."""
    out = []
    thr = summary.throughput
    ours = summary.endpoint_requests
    theirs = summary.locust_total_requests
    if theirs and theirs != ours:
        out.append(f"Locust counted {theirs} requests, the histograms {ours}")
    if thr.dry_pops:
        out.append(f"{thr.dry_pops} pops found their prepopulated queue empty (it ran dry)")
    if thr.late_ratio > 0.05:
        out.append(
            f"{thr.late_ratio:.0%} of sends left >10 ms late: the load generator was "
            "saturated, so part of the latency is the generator's"
        )
    if thr.dropped:
        out.append(f"{thr.dropped} arrivals dropped (too many requests outstanding)")
    other = summary.resources.get("other", {})
    if other.get("cpu_mean") and other["cpu_mean"] > 50:
        out.append(
            f"other processes on this machine used {other['cpu_mean']:.0f}% CPU on average "
            "(100 = one core): they competed with the service"
        )
    gen = summary.resources.get("loadgen", {})
    if gen.get("cpu_mean") and gen["cpu_mean"] > 80:
        out.append(f"the load generator used {gen['cpu_mean']:.0f}% of a core on average")
    ll = summary.littles_law
    if ll.get("applicable") and ll.get("ratio") and not 0.5 <= ll["ratio"] <= 2.0:
        out.append(f"Little's law is off by a factor {ll['ratio']:g} (depth sampling too coarse?)")
    return out


def analyze(
    run_dir: Path,
    expected_errors: tuple[str, ...] = (),
    p99_limit_ms: float | None = 100.0,
) -> RunSummary:
    """Load, summarize and write ``summary.json``; returns the summary."""
    data = load_run(run_dir)
    summary = summarize(data, expected_errors=expected_errors, p99_limit_ms=p99_limit_ms)
    write_summary(Path(run_dir), summary)
    return summary


def write_summary(run_dir: Path, summary: RunSummary) -> None:
    (run_dir / "summary.json").write_text(json.dumps(summary.to_json(), indent=1, default=str))


def read_summary(run_dir: Path) -> RunSummary:
    return RunSummary.from_json(json.loads((run_dir / "summary.json").read_text()))
