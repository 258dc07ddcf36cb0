"""``report.html`` of one variant run: verdict, what ran, every measured table, the plots.

One function per section, in page order, each taking the typed summary; the page is
their concatenation.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from load_tests.analysis.loading import RunData, load_run
from load_tests.evaluation.verdict import VariantEvaluation
from load_tests.report.charts import (
    plot_depth,
    plot_knee,
    plot_latency_over_time,
    plot_percentiles,
    plot_queue_time,
    plot_rate,
    plot_recovery,
    plot_resources,
)
from load_tests.report.html import Raw, esc, fmt, page, png, table, verdict_html
from load_tests.summary import Bursts, Knee, RunSummary

ENDPOINT_HEADERS = [
    "endpoint", "requests", "failures", "req/s", "p50", "p95", "p99", "p99.9", "max",
    "service p50", "service p99", "Locust p50", "Locust p99",
]  # fmt: skip


def _what_ran(summary: RunSummary, meta: dict[str, Any]) -> list[str]:
    h = meta.get("harness", {})
    started = dt.datetime.fromtimestamp(summary.started_at).isoformat(" ", "seconds")
    rows = [
        ["schedule", summary.schedule],
        ["arrival model", summary.model],
        ["load window", f"{summary.throughput.duration_s:g} s"],
        ["target", h.get("base_url")],
        ["store / runtime", f"{h.get('store')} / {h.get('runtime')}"],
        ["queues", summary.queues],
        ["prepopulated", json.dumps(summary.prepopulated) or "-"],
        ["machine", meta.get("machine")],
        ["run id", summary.run_id],
        ["started", started],
    ]
    return ["<h2>What ran</h2>", table(["", ""], rows)]


def _latency(summary: RunSummary) -> list[str]:
    rows = [
        [name, ep.requests, ep.failures, ep.rps,
         *(ep.latency_ms.get(k) for k in ("p50", "p95", "p99", "p99.9", "max")),
         ep.service_ms.get("p50"), ep.service_ms.get("p99"),
         ep.locust_median_ms, ep.locust_p99_ms]
        for name, ep in summary.endpoints.items()
    ]  # fmt: skip
    return [
        "<h2>Latency per endpoint (ms)</h2>",
        "<p class='muted'>Latency is measured from the scheduled send time (open model), so "
        "queueing in front of a slow server counts; <i>service</i> is from the actual send. "
        "Locust's own median/p99 (rounded to whole ms) are shown for comparison.</p>",
        table(ENDPOINT_HEADERS, rows),
    ]


def _throughput(summary: RunSummary) -> list[str]:
    thr = summary.throughput
    lag = thr.send_lag_ms
    rows = [
        ["target arrivals/s (mean)", thr.target_rps],
        ["completed requests/s", thr.requests_per_s],
        ["completion ratio (in window)", thr.completion_ratio],
        ["items pushed/s | popped/s", f"{thr.items_pushed_per_s} | {thr.items_popped_per_s}"],
        ["arrivals scheduled | sent", f"{thr.scheduled:,} | {thr.sent:,}"],
        ["late sends (>10 ms) | dropped", f"{thr.late:,} | {thr.dropped:,}"],
        ["send lag p50 / p99 (ms)", f"{fmt(lag.get('p50'))} / {fmt(lag.get('p99'))}"],
        ["most requests in flight", thr.in_flight_max],
        ["empty pops | dry pops", f"{thr.empty_pops:,} | {thr.dry_pops:,}"],
    ]
    return ["<h2>Throughput and the load generator</h2>", table(["", ""], rows)]


def _errors(summary: RunSummary) -> list[str]:
    err = summary.errors
    b = ["<h2>Errors by kind</h2>"]
    if not err.by_kind:
        return [*b, "<p>No failed requests.</p>"]
    b.append(
        table(
            ["kind", "total", "expected (in fault window)", "unexpected"],
            [[k, v["total"], v["expected"], v["unexpected"]] for k, v in err.by_kind.items()],
        )
    )
    if err.per_endpoint:
        rows = [[r["method"], r["name"], r["error"], r["occurrences"]] for r in err.per_endpoint]
        b.append(table(["method", "endpoint", "error (Locust)", "occurrences"], rows, left=3))
    return b


def _queue(summary: RunSummary) -> list[str]:
    qt, ll, d = summary.time_in_queue_ms, summary.littles_law, summary.depth
    if "ratio" in ll:
        little = (
            f"{fmt(ll.get('L_mean_depth'))} vs {fmt(ll.get('lambda_W'))} "
            f"(ratio {fmt(ll.get('ratio'))})"
            + ("" if ll.get("applicable") else f"; approximate: {ll.get('why', '')}")
        )
    else:
        little = f"n/a: {ll.get('why', '')}"
    rows = [
        [
            "time in queue p50 / p99 / max (ms)",
            f"{fmt(qt.get('p50'))} / {fmt(qt.get('p99'))} / {fmt(qt.get('max'))}",
        ],
        [
            "sampled depth: start | mean | max | end",
            f"{fmt(d.start)} | {fmt(d.mean)} | {fmt(d.max)} | {fmt(d.end)}",
        ],
        ["Little's law L vs lambda*W", little],
    ]
    return ["<h2>Time in queue, depth and Little's law</h2>", table(["", ""], rows)]


def _knee(k: Knee, plots: Path) -> list[str]:
    rows = [[s.rate, s.achieved, s.p99_ms, s.error_rate, s.dropped, s.late_ratio] for s in k.steps]
    return [
        "<h2>Knee of the step ramp</h2>",
        f"<p>Highest sustained rate: <b>{fmt(k.knee_rps)} req/s</b>. {esc(k.reason)}</p>",
        table(["target/s", "achieved/s", "p99 ms", "error rate", "dropped", "late"], rows),
        png(plot_knee(k), plots, "knee"),
    ]


def _bursts(bs: Bursts, data: RunData, plots: Path) -> list[str]:
    rows = [
        [
            f"{x.start_s:g}-{x.end_s:g}",
            x.peak_p99_ms,
            x.recovery_s if x.recovered else Raw("<b>not recovered</b>"),
            x.observed_for_s,
        ]
        for x in bs.bursts
    ]
    return [
        "<h2>Bursts and recovery</h2>",
        f"<p>Calm p99 before the first burst: {fmt(bs.baseline_p99_ms)} ms; recovered = "
        f"p99 under {fmt(bs.recovery_line_ms)} ms for two buckets in a row.</p>",
        table(["burst (s)", "peak p99 ms", "recovery s", "observed for s"], rows),
        png(plot_recovery(data, bs), plots, "recovery"),
    ]


def _fault(f: dict[str, Any], started_at: float) -> list[str]:
    b = [f"<h2>Fault: {esc(f.get('name'))}</h2>"]
    if f.get("skipped"):
        return [*b, f"<p><b>Skipped:</b> {esc(f['skipped'])}</p>"]
    ev = f.get("events", {})
    rows = [[k, round(v - started_at, 3)] for k, v in sorted(ev.items(), key=lambda kv: kv[1])]
    b.append(table(["event", "s since load start"], rows))
    notes = "; ".join(f.get("notes", [])) + (f" ERROR: {f['error']}" if f.get("error") else "")
    facts = [
        ["recovery (component back -> service answers)", f"{fmt(f.get('recovery_s'))} s"],
        ["outage seen by clients (fault -> service answers)", f"{fmt(f.get('outage_s'))} s"],
        [
            "load errors stop after component back",
            f"{fmt(f.get('load_errors_end_after_back_s'))} s",
        ],
        ["notes", notes],
    ]
    b.append(table(["", ""], facts))
    return b


def _ledger(led: dict[str, Any]) -> list[str]:
    tot = led.get("totals", {})
    b = [
        "<h2>Ledger: pushed = delivered + remaining</h2>",
        f"<p>Status <b>{esc(led.get('status'))}</b>: "
        f"{fmt(tot.get('pushed'))} acknowledged pushes, "
        f"{fmt(tot.get('delivered'))} delivered, {fmt(tot.get('remaining'))} left (drained or "
        f"purged at the end), {fmt(tot.get('lost'))} lost, "
        f"{fmt(tot.get('duplicates'))} duplicated, "
        f"{fmt(tot.get('abandoned'))} abandoned under lock of which "
        f"{fmt(tot.get('abandoned_not_returned'))} never came back.</p>",
    ]
    return b + [f"<div class='warn'>{esc(p)}</div>" for p in led.get("problems", [])[:10]]


def _resources(res: dict[str, dict[str, Any]]) -> list[str]:
    if not res:
        return []
    rows = [
        [role, v.get("cpu_mean"), v.get("cpu_max"), v.get("rss_max_mb")]
        for role, v in res.items()
        if role != "pg_stats"
    ]
    b = ["<h2>Resources</h2>", table(["process", "CPU % mean", "CPU % max", "RSS max MB"], rows)]
    if "pg_stats" in res:
        b.append(table(["PostgreSQL statistics", ""], list(res["pg_stats"].items())))
    return b


def _plots(data: RunData, plots: Path) -> list[str]:
    b = [
        "<h2>Plots</h2>",
        png(plot_latency_over_time(data), plots, "latency_over_time"),
        png(plot_rate(data), plots, "rate"),
        png(plot_percentiles(data), plots, "percentiles"),
    ]
    for name, fig in (
        ("time_in_queue", plot_queue_time(data)),
        ("depth", plot_depth(data)),
        ("resources", plot_resources(data)),
    ):
        if fig is not None:
            b.append(png(fig, plots, name))
    return b


def run_report_html(run_dir: Path, summary: RunSummary, verdict: VariantEvaluation | None) -> str:
    data = load_run(run_dir)
    plots = run_dir / "plots"
    b = [f"<h1>{esc(summary.variant)} - {esc(summary.title)}</h1>", verdict_html(verdict)]
    b += [f"<div class='warn'>{esc(w)}</div>" for w in summary.warnings]
    b += _what_ran(summary, data.meta)
    b += _latency(summary) + _throughput(summary) + _errors(summary) + _queue(summary)
    if summary.knee:
        b += _knee(summary.knee, plots)
    if summary.bursts:
        b += _bursts(summary.bursts, data, plots)
    if summary.fault:
        b += _fault(summary.fault, summary.started_at)
    b += _ledger(summary.ledger) + _resources(summary.resources) + _plots(data, plots)
    files = sorted(p.name for p in run_dir.iterdir() if p.is_file() and p.name != "report.html")
    b.append(
        "<h2>Files</h2><p>" + " | ".join(f"<a href='{esc(f)}'>{esc(f)}</a>" for f in files) + "</p>"
    )
    return page(f"pushpop {summary.variant}", "".join(b))


def write_run_report(
    run_dir: Path, summary: RunSummary, verdict: VariantEvaluation | None = None
) -> Path:
    out = run_dir / "report.html"
    out.write_text(run_report_html(run_dir, summary, verdict), encoding="utf-8")
    return out
