"""Self-contained HTML reports: one per variant, one per group, an index for ``run-all``.

Why self-contained: a report is mailed, attached to a pull request or opened from CI
artifacts; every plot is a base64 PNG inside the page (matplotlib, Agg backend), and
the same PNGs are also written to ``plots/`` next to it.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from load_tests.evaluation import CHECK_HEADERS, Check, Evaluation, VariantEvaluation
from load_tests.scripts.analyze_results import (
    RunData,
    all_latency_p99,
    depth_series,
    load_run,
)
from load_tests.utils.metrics import LATENCY, QUEUE_TIME, SERVICE, tag

CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;
max-width:1200px;color:#1d2329;padding:0 1em}
h1{font-size:1.6em;margin-bottom:.2em}h2{margin-top:1.6em;border-bottom:1px solid #dde;
padding-bottom:.2em}table{border-collapse:collapse;margin:.6em 0;font-size:13px}
th,td{border:1px solid #d5d9de;padding:3px 8px;text-align:right}th{background:#f3f5f7}
td.l,th.l{text-align:left}.verdict{font-size:1.15em;padding:.6em 1em;border-radius:6px;
margin:.8em 0}.PASS{background:#e3f5e5;border:1px solid #7bc47f}.FAIL{background:#fde8e8;
border:1px solid #e08080}.SKIP{background:#f3f3f3;border:1px solid #bbb}
.warn{background:#fff6e0;border-left:4px solid #f0b400;padding:.4em .8em;margin:.3em 0}
img{max-width:100%;border:1px solid #eee;margin:.5em 0}.muted{color:#667}
code{background:#f3f5f7;padding:0 3px;border-radius:3px}
"""
COLORS = plt.rcParams["axes.prop_cycle"].by_key()["color"]


# --------------------------------------------------------------------------- html helpers


def esc(x: Any) -> str:
    return html.escape(str(x))


def fmt(x: Any, digits: int = 3) -> str:
    """Numbers for people: thousands separators, no exponents, ~3 significant digits."""
    if x is None:
        return "-"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return f"{x:,}"
    if isinstance(x, float):
        a = abs(x)
        if a >= 100 or x == int(x):
            return f"{x:,.0f}"
        if a >= 10:
            return f"{x:.1f}"
        if a >= 0.01:
            return f"{x:.{digits}g}"
        return f"{x:.2e}" if x else "0"
    return esc(x)


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], left: int = 1) -> str:
    head = "".join(
        f"<th class='{'l' if i < left else ''}'>{esc(h)}</th>" for i, h in enumerate(headers)
    )
    body = []
    for row in rows:
        cells = "".join(
            f"<td class='{'l' if i < left else ''}'>{c if isinstance(c, Raw) else fmt(c)}</td>"
            for i, c in enumerate(row)
        )
        body.append(f"<tr>{cells}</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


class Raw(str):
    """Already-escaped HTML for a table cell."""


def png(fig: Figure, plots_dir: Path | None, name: str) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    data = buf.getvalue()
    if plots_dir is not None:
        plots_dir.mkdir(parents=True, exist_ok=True)
        (plots_dir / f"{name}.png").write_bytes(data)
    return f"<img alt='{esc(name)}' src='data:image/png;base64,{base64.b64encode(data).decode()}'>"


def page(title: str, body: str) -> str:
    now = dt.datetime.now().strftime("%Y-%m-%d %H:%M:%S")
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{esc(title)}</title>"
        f"<style>{CSS}</style></head><body>{body}"
        f"<p class='muted'>generated {now} by pushpop-bench</p></body></html>"
    )


def verdict_html(verdict: VariantEvaluation | Evaluation | None) -> str:
    """The verdict box and, under it, every metric next to its limit and its baseline."""
    if verdict is None:
        return ""
    reasons = "".join(f"<li>{esc(r)}</li>" for r in verdict.reasons)
    box = (
        f"<div class='verdict {esc(verdict.status)}'><b>{esc(verdict.line)}</b>"
        f"{f'<ul>{reasons}</ul>' if reasons else ''}</div>"
    )
    if isinstance(verdict, Evaluation):
        rows = [[v.variant, *_status_cells(c)] for v in verdict.variants for c in v.checks]
        headers = ["variant", *CHECK_HEADERS]
        summary = f"checks of every variant ({len(rows)})"
        if verdict.baseline:
            summary += f" against the baseline {verdict.baseline}"
        details = f"<summary>{esc(summary)}</summary>{table(headers, rows, 2)}"
        return box + f"<details>{details}</details>"
    rows = [_status_cells(c) for c in verdict.checks]
    return box + (table(CHECK_HEADERS, rows) if rows else "")


def _status_cells(check: Check) -> list[Any]:
    cells: list[Any] = list(check.cells())
    css = "FAIL" if check.failed else "PASS"
    cells[-1] = Raw(f"<b class='{css}'>{esc(cells[-1])}</b>")
    return cells


# --------------------------------------------------------------------------- plots


def _percentile_axes(ax: Any, ticks: list[float]) -> None:
    """x on 1/(1-p) log scale, labelled in percentiles, so the tail gets as much room as the
    median; y logarithmic."""
    ax.set_xscale("log")
    ax.set_xticks([1 / (1 - p / 100) for p in ticks], [f"p{p:g}" for p in ticks])
    ax.minorticks_off()
    _log_y(ax)


def _log_y(ax: Any) -> None:
    """Log scale with plain numbers (1, 2, 5, 10 ...) instead of 10^x labels."""
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())


def _time_axis(ax: Any, ylabel: str, title: str, *, log: bool = False, **legend: Any) -> None:
    """What every plot against run time shares: the x label, a grid, a legend; with
    ``log``, a log y axis and minor grid lines too."""
    if log:
        _log_y(ax)
    ax.set_xlabel("seconds since load start")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, which="both" if log else "major", alpha=0.3)
    ax.legend(fontsize=8, **legend)


def _rel(data: RunData, ts: Iterable[float]) -> list[float]:
    return [t - data.started_at for t in ts]


def _shade(ax: Any, data: RunData) -> None:
    """Burst windows (orange) and the fault window (red) on a time axis."""
    if data.schedule:
        for i, (b0, b1) in enumerate(data.schedule.bursts()):
            ax.axvspan(b0, b1, color="orange", alpha=0.12, label="burst" if i == 0 else None)
    if data.faults and data.faults.get("window"):
        w0, w1 = data.faults["window"]
        ax.axvspan(
            w0 - data.started_at, w1 - data.started_at, color="red", alpha=0.1, label="outage"
        )


def plot_latency_over_time(data: RunData) -> Figure:
    s = data.series
    fig, ax = plt.subplots(figsize=(11, 4))
    x = [t + s.width / 2 for t in _rel(data, s.starts)]
    for i, t in enumerate(s.tags(LATENCY)):
        name = t.split(":", 1)[1]
        c = COLORS[i % len(COLORS)]
        ax.plot(x, s.percentile_series(t, 50), color=c, lw=1, ls="--", label=f"{name} p50")
        ax.plot(x, s.percentile_series(t, 99), color=c, lw=1.6, label=f"{name} p99")
    _shade(ax, data)
    _time_axis(
        ax,
        "latency (ms, log)",
        f"Latency over time ({s.width:g} s buckets, measured from the scheduled send)",
        log=True,
        ncol=4,
        loc="upper left",
    )
    return fig


def plot_rate(data: RunData) -> Figure:
    s = data.series
    fig, ax = plt.subplots(figsize=(11, 3.6))
    x = [t + s.width / 2 for t in _rel(data, s.starts)]
    per_s = 1.0 / s.width
    series = (
        ("requests", "completed req/s", "tab:blue", "-", 2.2),
        ("scheduled", "scheduled arrivals/s", "tab:orange", "--", 1.2),
        ("failures", "failures/s", "tab:red", "-", 1.2),
        ("items_pushed", "items pushed/s", "tab:green", ":", 1.0),
        ("items_popped", "items popped/s", "tab:purple", ":", 1.0),
    )
    for counter, label, color, ls, lw in series:
        ax.plot(x, [v * per_s for v in s.counter(counter)], label=label, color=color, ls=ls, lw=lw)
    if data.schedule:
        n = 400
        ts = [data.schedule.duration * i / n for i in range(n)]
        rates = [data.schedule.rate_at(t) or 0 for t in ts]
        ax.plot(ts, rates, color="black", lw=1, alpha=0.6, label="target arrivals/s")
    _shade(ax, data)
    _time_axis(ax, "per second", "Rates", ncol=3, loc="upper left")
    return fig


def _percentile_curve(ax: Any, hist: Any, label: str, **kw: Any) -> None:
    pcts = [50, 75, 90, 95, 99, 99.5, 99.9, 99.95, 99.99]
    total = hist.get_total_count()
    if not total:
        return
    pcts = [p for p in pcts if p <= 100 - 100 / total] or [50]
    xs = [1 / (1 - p / 100) for p in pcts]
    ax.plot(
        xs, [hist.get_value_at_percentile(p) / 1000 for p in pcts], marker=".", label=label, **kw
    )


def plot_percentiles(data: RunData) -> Figure:
    s = data.series
    fig, ax = plt.subplots(figsize=(11, 4))
    for i, t in enumerate(s.tags(LATENCY)):
        name = t.split(":", 1)[1]
        c = COLORS[i % len(COLORS)]
        _percentile_curve(ax, s.totals[t], f"{name} (from schedule)", color=c, lw=1.6)
        svc = s.totals.get(tag(SERVICE, name))
        if svc is not None:
            _percentile_curve(ax, svc, f"{name} (service only)", color=c, lw=1, ls="--")
    _percentile_axes(ax, [50, 90, 99, 99.9, 99.99])
    ax.set_ylabel("latency (ms, log)")
    ax.set_title("Latency by percentile (HdrHistogram, microsecond resolution)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    return fig


def plot_queue_time(data: RunData) -> Figure | None:
    s = data.series
    tags = s.tags(QUEUE_TIME)
    if not tags:
        return None
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 3.6))
    x = [t + s.width / 2 for t in _rel(data, s.starts)]
    for i, t in enumerate(tags):
        c = COLORS[i % len(COLORS)]
        name = t.split(":", 1)[1]
        a1.plot(
            x,
            [v / 1000 if v else None for v in s.percentile_series(t, 50)],
            color=c,
            ls="--",
            label=f"{name} p50",
        )
        a1.plot(
            x,
            [v / 1000 if v else None for v in s.percentile_series(t, 99)],
            color=c,
            label=f"{name} p99",
        )
        _percentile_curve(a2, s.totals[t], name, color=c)
    _time_axis(a1, "time in queue (s, log)", "Time in queue over time", log=True)
    _percentile_axes(a2, [50, 90, 99, 99.9])
    a2.set_ylabel("ms (log)")
    a2.set_title("Time in queue by percentile")
    a2.grid(True, which="both", alpha=0.3)
    return fig


def plot_depth(data: RunData) -> Figure | None:
    times, totals = depth_series(data)
    if not times:
        return None
    fig, ax = plt.subplots(figsize=(11, 3.2))
    ax.plot(_rel(data, times), totals, lw=1.4, label="total depth (latest sample per queue)")
    in_flight: dict[str, float] = {}
    inf = []
    for row in data.depth:
        in_flight[row["queue"]] = float(row.get("in_flight") or 0)
        inf.append(sum(in_flight.values()))
    if any(inf):
        ax.plot(_rel(data, times), inf, lw=1, label="items under lock")
    _shade(ax, data)
    _time_axis(ax, "items", "Sampled queue depth (GET /queue/{id})")
    return fig


def plot_resources(data: RunData) -> Figure | None:
    if not data.resources:
        return None
    per: dict[str, tuple[list[float], list[float], list[float]]] = {}
    for r in data.resources:
        t, c, m = float(r["timestamp"]), float(r["cpu_percent"]), float(r["rss_bytes"])
        per.setdefault(r["role"], ([], [], []))
        per[r["role"]][0].append(t - data.started_at)
        per[r["role"]][1].append(c)
        per[r["role"]][2].append(m / 2**20)
    pg = [r for r in data.postgres if r.get("ok") == "1"]
    rows = 3 if len(pg) > 2 else 2
    fig, axes = plt.subplots(rows, 1, figsize=(11, 2.8 * rows), sharex=True)
    for role, (t, c, m) in sorted(per.items()):
        ls = ":" if role in ("system", "other") else "-"
        axes[0].plot(t, c, ls=ls, label=role)
        if role not in ("system", "other"):
            axes[1].plot(t, m, label=role)
    axes[0].set_ylabel("CPU % (100 = 1 core)")
    axes[0].set_title("CPU and memory of the processes under test")
    axes[1].set_ylabel("RSS (MB)")
    for a in axes[:2]:
        a.grid(True, alpha=0.3)
        a.legend(fontsize=8, ncol=5, loc="upper left")
    if rows == 3:
        ts = [float(r["timestamp"]) - data.started_at for r in pg]
        commits = [float(r["xact_commit"]) for r in pg]
        rate = [0.0] + [
            (b - a) / max(1e-9, t2 - t1)
            for a, b, t1, t2 in zip(commits, commits[1:], ts, ts[1:], strict=False)
        ]
        axes[2].plot(ts, rate, label="commits/s")
        ax2 = axes[2].twinx()
        ax2.plot(
            ts, [float(r["conn_total"]) for r in pg], color="gray", ls="--", label="connections"
        )
        ax2.set_ylabel("connections")
        axes[2].set_ylabel("commits/s")
        axes[2].set_title("PostgreSQL")
        axes[2].grid(True, alpha=0.3)
        axes[2].legend(fontsize=8, loc="upper left")
        ax2.legend(fontsize=8, loc="upper right")
    for a in axes:
        _shade(a, data)
    axes[-1].set_xlabel("seconds since load start")
    return fig


def plot_knee(knee: dict[str, Any]) -> Figure:
    steps = knee["steps"]
    fig, ax = plt.subplots(figsize=(11, 3.6))
    rates = [s["rate"] for s in steps]
    ax.plot(rates, rates, color="gray", ls=":", label="target")
    ax.plot(rates, [s["achieved"] for s in steps], marker="o", label="achieved (per arrival)")
    ax.set_xlabel("target arrivals/s (step)")
    ax.set_ylabel("achieved/s")
    ax2 = ax.twinx()
    ax2.plot(rates, [s["p99_ms"] for s in steps], color="red", marker="s", label="p99 ms")
    ax2.set_ylabel("p99 (ms)")
    if knee.get("knee_rps"):
        ax.axvline(knee["knee_rps"], color="green", ls="--", label=f"knee {knee['knee_rps']:g}/s")
    ax.set_title("Step ramp: throughput and p99 per plateau")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    ax2.legend(loc="lower right", fontsize=8)
    return fig


def plot_recovery(data: RunData, bursts: dict[str, Any]) -> Figure:
    s = data.series
    fig, ax = plt.subplots(figsize=(11, 3.6))
    x = [t + s.width / 2 for t in _rel(data, s.starts)]
    ax.plot(x, all_latency_p99(s), label="p99, all requests")
    if bursts.get("recovery_line_ms"):
        ax.axhline(bursts["recovery_line_ms"], color="green", ls="--", label="recovery line")
    for b in bursts["bursts"]:
        if b["recovery_s"] is not None:
            ax.axvline(b["end_s"] + b["recovery_s"], color="purple", ls=":", lw=1)
    _shade(ax, data)
    _time_axis(ax, "p99 (ms, log)", "Recovery after bursts (dotted: recovered)", log=True)
    return fig


# --------------------------------------------------------------------------- run report


def _endpoint_rows(summary: dict[str, Any]) -> list[list[Any]]:
    rows = []
    for name, ep in summary["endpoints"].items():
        lat, svc = ep["latency_ms"], ep["service_ms"]
        rows.append(
            [
                name,
                ep["requests"],
                ep["failures"],
                ep["rps"],
                lat.get("p50"),
                lat.get("p95"),
                lat.get("p99"),
                lat.get("p99.9"),
                lat.get("max"),
                svc.get("p50"),
                svc.get("p99"),
                ep.get("locust_median_ms"),
                ep.get("locust_p99_ms"),
            ]
        )
    return rows


def run_report_html(
    run_dir: Path, summary: dict[str, Any], verdict: VariantEvaluation | None
) -> str:
    data = load_run(run_dir)
    plots = run_dir / "plots"
    meta = data.meta
    b: list[str] = []
    b.append(f"<h1>{esc(summary['variant'])} - {esc(summary.get('title', ''))}</h1>")
    b.append(verdict_html(verdict))
    for w in summary.get("warnings", []):
        b.append(f"<div class='warn'>{esc(w)}</div>")
    h = meta.get("harness", {})
    b.append("<h2>What ran</h2>")
    b.append(
        table(
            ["", ""],
            [
                ["schedule", summary["schedule"]],
                ["arrival model", summary.get("model")],
                ["load window", f"{summary['throughput']['duration_s']:g} s"],
                ["target", h.get("base_url")],
                ["store / runtime", f"{h.get('store')} / {h.get('runtime')}"],
                ["queues", summary["queues"]],
                ["prepopulated", json.dumps(summary["prepopulated"]) or "-"],
                ["machine", meta.get("machine")],
                ["run id", summary.get("run_id")],
                [
                    "started",
                    dt.datetime.fromtimestamp(summary["started_at"]).isoformat(" ", "seconds"),
                ],
            ],
        )
    )
    b.append("<h2>Latency per endpoint (ms)</h2>")
    b.append(
        "<p class='muted'>Latency is measured from the scheduled send time (open model), so "
        "queueing in front of a slow server counts; <i>service</i> is from the actual send. "
        "Locust's own median/p99 (rounded to whole ms) are shown for comparison.</p>"
    )
    b.append(
        table(
            [
                "endpoint",
                "requests",
                "failures",
                "req/s",
                "p50",
                "p95",
                "p99",
                "p99.9",
                "max",
                "service p50",
                "service p99",
                "Locust p50",
                "Locust p99",
            ],
            _endpoint_rows(summary),
        )
    )
    thr = summary["throughput"]
    b.append("<h2>Throughput and the load generator</h2>")
    b.append(
        table(
            ["", ""],
            [
                ["target arrivals/s (mean)", thr["target_rps"]],
                ["completed requests/s", thr["requests_per_s"]],
                ["completion ratio (in window)", thr["completion_ratio"]],
                [
                    "items pushed/s | popped/s",
                    f"{thr['items_pushed_per_s']} | {thr['items_popped_per_s']}",
                ],
                ["arrivals scheduled | sent", f"{thr['scheduled']:,} | {thr['sent']:,}"],
                ["late sends (>10 ms) | dropped", f"{thr['late']:,} | {thr['dropped']:,}"],
                [
                    "send lag p50 / p99 (ms)",
                    f"{fmt(thr['send_lag_ms'].get('p50'))} / {fmt(thr['send_lag_ms'].get('p99'))}",
                ],
                ["most requests in flight", thr["in_flight_max"]],
                ["empty pops | dry pops", f"{thr['empty_pops']:,} | {thr['dry_pops']:,}"],
            ],
        )
    )
    err = summary["errors"]
    b.append("<h2>Errors by kind</h2>")
    if err["by_kind"]:
        b.append(
            table(
                ["kind", "total", "expected (in fault window)", "unexpected"],
                [
                    [k, v["total"], v["expected"], v["unexpected"]]
                    for k, v in err["by_kind"].items()
                ],
            )
        )
        if err["per_endpoint"]:
            b.append(
                table(
                    ["method", "endpoint", "error (Locust)", "occurrences"],
                    [
                        [r["method"], r["name"], r["error"], r["occurrences"]]
                        for r in err["per_endpoint"]
                    ],
                    left=3,
                )
            )
    else:
        b.append("<p>No failed requests.</p>")
    qt = summary["time_in_queue_ms"]
    ll = summary["littles_law"]
    d = summary["depth"]
    b.append("<h2>Time in queue, depth and Little's law</h2>")
    b.append(
        table(
            ["", ""],
            [
                [
                    "time in queue p50 / p99 / max (ms)",
                    f"{fmt(qt.get('p50'))} / {fmt(qt.get('p99'))} / {fmt(qt.get('max'))}",
                ],
                [
                    "sampled depth: start | mean | max | end",
                    f"{fmt(d['start'])} | {fmt(d['mean'])} | {fmt(d['max'])} | {fmt(d['end'])}",
                ],
                [
                    "Little's law L vs lambda*W",
                    (
                        f"{fmt(ll.get('L_mean_depth'))} vs {fmt(ll.get('lambda_W'))} "
                        f"(ratio {fmt(ll.get('ratio'))})"
                        + ("" if ll.get("applicable") else f"; approximate: {ll.get('why', '')}")
                    )
                    if "ratio" in ll
                    else f"n/a: {ll.get('why', '')}",
                ],
            ],
        )
    )
    if summary.get("knee"):
        k = summary["knee"]
        b.append("<h2>Knee of the step ramp</h2>")
        b.append(
            f"<p>Highest sustained rate: <b>{fmt(k['knee_rps'])} req/s</b>. {esc(k['reason'])}</p>"
        )
        b.append(
            table(
                ["target/s", "achieved/s", "p99 ms", "error rate", "dropped", "late"],
                [
                    [
                        s["rate"],
                        s["achieved"],
                        s["p99_ms"],
                        s["error_rate"],
                        s["dropped"],
                        s["late_ratio"],
                    ]
                    for s in k["steps"]
                ],
            )
        )
        b.append(png(plot_knee(k), plots, "knee"))
    if summary.get("bursts"):
        bs = summary["bursts"]
        b.append("<h2>Bursts and recovery</h2>")
        b.append(
            f"<p>Calm p99 before the first burst: {fmt(bs['baseline_p99_ms'])} ms; recovered = "
            f"p99 under {fmt(bs['recovery_line_ms'])} ms for two buckets in a row.</p>"
        )
        b.append(
            table(
                ["burst (s)", "peak p99 ms", "recovery s", "observed for s"],
                [
                    [
                        f"{x['start_s']:g}-{x['end_s']:g}",
                        x["peak_p99_ms"],
                        x["recovery_s"] if x["recovered"] else Raw("<b>not recovered</b>"),
                        x["observed_for_s"],
                    ]
                    for x in bs["bursts"]
                ],
            )
        )
        b.append(png(plot_recovery(data, bs), plots, "recovery"))
    if summary.get("fault"):
        f = summary["fault"]
        b.append(f"<h2>Fault: {esc(f.get('name'))}</h2>")
        if f.get("skipped"):
            b.append(f"<p><b>Skipped:</b> {esc(f['skipped'])}</p>")
        else:
            ev = f.get("events", {})
            rows = [
                [k, round(v - summary["started_at"], 3)]
                for k, v in sorted(ev.items(), key=lambda kv: kv[1])
            ]
            b.append(table(["event", "s since load start"], rows))
            b.append(
                table(
                    ["", ""],
                    [
                        [
                            "recovery (component back -> service answers)",
                            f"{fmt(f.get('recovery_s'))} s",
                        ],
                        [
                            "outage seen by clients (fault -> service answers)",
                            f"{fmt(f.get('outage_s'))} s",
                        ],
                        [
                            "load errors stop after component back",
                            f"{fmt(f.get('load_errors_end_after_back_s'))} s",
                        ],
                        [
                            "notes",
                            "; ".join(f.get("notes", []))
                            + (f" ERROR: {f['error']}" if f.get("error") else ""),
                        ],
                    ],
                )
            )
    led = summary["ledger"]
    b.append("<h2>Ledger: pushed = delivered + remaining</h2>")
    tot = led.get("totals", {})
    b.append(
        f"<p>Status <b>{esc(led.get('status'))}</b>: "
        f"{fmt(tot.get('pushed'))} acknowledged pushes, "
        f"{fmt(tot.get('delivered'))} delivered, {fmt(tot.get('remaining'))} left (drained or "
        f"purged at the end), {fmt(tot.get('lost'))} lost, "
        f"{fmt(tot.get('duplicates'))} duplicated, "
        f"{fmt(tot.get('abandoned'))} abandoned under lock of which "
        f"{fmt(tot.get('abandoned_not_returned'))} never came back.</p>"
    )
    for p in led.get("problems", [])[:10]:
        b.append(f"<div class='warn'>{esc(p)}</div>")
    res = summary["resources"]
    if res:
        b.append("<h2>Resources</h2>")
        rows = [
            [role, v.get("cpu_mean"), v.get("cpu_max"), v.get("rss_max_mb")]
            for role, v in res.items()
            if role != "pg_stats"
        ]
        b.append(table(["process", "CPU % mean", "CPU % max", "RSS max MB"], rows))
        if "pg_stats" in res:
            b.append(table(["PostgreSQL statistics", ""], list(res["pg_stats"].items())))
    b.append("<h2>Plots</h2>")
    b.append(png(plot_latency_over_time(data), plots, "latency_over_time"))
    b.append(png(plot_rate(data), plots, "rate"))
    b.append(png(plot_percentiles(data), plots, "percentiles"))
    for name, fig in (
        ("time_in_queue", plot_queue_time(data)),
        ("depth", plot_depth(data)),
        ("resources", plot_resources(data)),
    ):
        if fig is not None:
            b.append(png(fig, plots, name))
    files = sorted(p.name for p in run_dir.iterdir() if p.is_file() and p.name != "report.html")
    b.append(
        "<h2>Files</h2><p>" + " | ".join(f"<a href='{esc(f)}'>{esc(f)}</a>" for f in files) + "</p>"
    )
    return page(f"pushpop {summary['variant']}", "".join(b))


def write_run_report(
    run_dir: Path, summary: dict[str, Any], verdict: VariantEvaluation | None = None
) -> Path:
    out = run_dir / "report.html"
    out.write_text(run_report_html(run_dir, summary, verdict), encoding="utf-8")
    return out


# --------------------------------------------------------------------------- group / index


def _main_endpoint(summary: dict[str, Any]) -> str | None:
    eps = summary.get("endpoints", {})
    for name in ("pop", "push", "pop+ack"):
        if name in eps:
            return name
    return next(iter(eps), None)


def _p(summary: dict[str, Any], name: str | None, key: str) -> Any:
    if not name:
        return None
    return summary.get("endpoints", {}).get(name, {}).get("latency_ms", {}).get(key)


def overview_rows(results: list[dict[str, Any]], base: Path) -> list[list[Any]]:
    rows = []
    for r in results:
        s, v = r.get("summary") or {}, r.get("verdict") or {}
        link = (
            Raw(f"<a href='{esc(r['rel'])}/report.html'>{esc(r['variant'])}</a>")
            if s
            else r["variant"]
        )
        thr = s.get("throughput", {})
        push, pop = "push", "pop"
        rows.append(
            [
                link,
                r.get("title", ""),
                Raw(f"<b class='{esc(v.get('status', ''))}'>{esc(v.get('status', 'SKIP'))}</b>"),
                thr.get("target_rps"),
                thr.get("requests_per_s"),
                _p(s, push, "p50"),
                _p(s, push, "p99"),
                _p(s, pop, "p50"),
                _p(s, pop, "p99"),
                s.get("errors", {}).get("unexpected"),
                (s.get("ledger") or {}).get("status"),
                "; ".join(v.get("reasons", [])[:2]) or r.get("skipped", ""),
            ]
        )
    return rows


OVERVIEW_HEADERS = [
    "variant",
    "what",
    "verdict",
    "arrivals/s",
    "requests/s",
    "push p50",
    "push p99",
    "pop p50",
    "pop p99",
    "errors",
    "ledger",
    "notes",
]


def plot_scaling(results: list[dict[str, Any]]) -> Figure:
    ok = [r for r in results if r.get("summary")]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 3.6))
    labels = [f"{r['variant']}\n{r['summary']['queues']} queues" for r in ok]
    for i, name in enumerate(("push", "pop")):
        a1.bar(
            [x + i * 0.38 for x in range(len(ok))],
            [_p(r["summary"], name, "p99") or 0 for r in ok],
            width=0.38,
            label=f"{name} p99",
        )
    a1.set_xticks([x + 0.19 for x in range(len(ok))], labels)
    a1.set_ylabel("p99 (ms)")
    a1.set_title("p99 latency by number of queues")
    a1.legend(fontsize=8)
    a2.bar(labels, [r["summary"]["throughput"]["requests_per_s"] for r in ok], color=COLORS[2])
    a2.set_ylabel("completed req/s")
    a2.set_title("Throughput by number of queues")
    for a in (a1, a2):
        a.grid(True, axis="y", alpha=0.3)
    return fig


def depth_rows(results: list[dict[str, Any]]) -> list[tuple[float, dict[str, Any], str]]:
    out = []
    for r in results:
        s = r.get("summary")
        if not s:
            continue
        pre = sum(v["items_per_queue"] for v in s.get("prepopulated", {}).values())
        out.append((float(pre), s, r["variant"]))
    return sorted(out, key=lambda x: x[0])


def plot_depth_latency(results: list[dict[str, Any]]) -> Figure:
    rows = depth_rows(results)
    fig, ax = plt.subplots(figsize=(11, 3.8))
    xs = [max(d, 1) for d, _, _ in rows]
    for key, ls in (("p50", "--"), ("p99", "-"), ("p99.9", ":")):
        ax.plot(xs, [_p(s, "pop", key) for _, s, _ in rows], marker="o", ls=ls, label=f"pop {key}")
    ax.plot(xs, [_p(s, "push-refill", "p99") for _, s, _ in rows], marker="x", label="push p99")
    for x, (_, _, v) in zip(xs, rows, strict=True):
        ax.annotate(v, (x, ax.get_ylim()[0]), fontsize=8, ha="center", va="bottom")
    ax.set_xscale("log")
    ax.set_xlabel("items in the queue (prepopulated; 0 plotted at 1)")
    ax.set_ylabel("latency (ms)")
    ax.set_title("Pop latency against queue depth")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def group_section(
    group: str, title: str, results: list[dict[str, Any]], base: Path, plots: Path
) -> str:
    b = [
        f"<h2>{esc(group)} - {esc(title)}</h2>",
        table(OVERVIEW_HEADERS, overview_rows(results, base), left=2),
    ]
    done = [r for r in results if r.get("summary")]
    if group == "S4" and done:
        b.append(
            table(
                [
                    "variant",
                    "queues",
                    "done/s",
                    "push p50",
                    "push p99",
                    "push p99.9",
                    "pop p50",
                    "pop p99",
                    "pop p99.9",
                    "server CPU %",
                    "PG commits/s",
                ],
                [
                    [
                        r["variant"],
                        r["summary"]["queues"],
                        r["summary"]["throughput"]["requests_per_s"],
                        _p(r["summary"], "push", "p50"),
                        _p(r["summary"], "push", "p99"),
                        _p(r["summary"], "push", "p99.9"),
                        _p(r["summary"], "pop", "p50"),
                        _p(r["summary"], "pop", "p99"),
                        _p(r["summary"], "pop", "p99.9"),
                        r["summary"]["resources"].get("server", {}).get("cpu_mean"),
                        r["summary"]["resources"].get("pg_stats", {}).get("commits_per_s"),
                    ]
                    for r in done
                ],
            )
        )
        b.append(png(plot_scaling(done), plots, "S4_scaling"))
    if group == "S5" and done:
        b.append(
            table(
                [
                    "variant",
                    "items in queue",
                    "mean sampled depth",
                    "pop p50",
                    "pop p99",
                    "pop p99.9",
                    "push(10) p99",
                    "time in queue p50 ms",
                ],
                [
                    [
                        v,
                        int(d),
                        s["depth"]["mean"],
                        _p(s, "pop", "p50"),
                        _p(s, "pop", "p99"),
                        _p(s, "pop", "p99.9"),
                        _p(s, "push-refill", "p99"),
                        s["time_in_queue_ms"].get("p50"),
                    ]
                    for d, s, v in depth_rows(done)
                ],
            )
        )
        b.append(png(plot_depth_latency(done), plots, "S5_latency_vs_depth"))
    if group == "S6" and done:
        rows = []
        for r in done:
            for x in (r["summary"].get("bursts") or {}).get("bursts", []):
                rows.append(
                    [
                        r["variant"],
                        f"{x['start_s']:g}-{x['end_s']:g} s",
                        x["peak_p99_ms"],
                        x["recovery_s"] if x["recovered"] else "not recovered",
                    ]
                )
        b.append(table(["variant", "burst", "peak p99 ms", "recovery s"], rows))
    if group in ("S1", "S2"):
        for r in done:
            k = r["summary"].get("knee")
            if k:
                b.append(
                    f"<p>{esc(r['variant'])}: knee at <b>{fmt(k['knee_rps'])} req/s</b> - "
                    f"{esc(k['reason'])}</p>"
                )
    return "".join(b)


def write_index(
    out_dir: Path,
    title: str,
    results: list[dict[str, Any]],
    groups: dict[str, str],
    verdict: Evaluation,
    facts: list[list[Any]],
) -> Path:
    """The run-all (or group) landing page: every variant's verdict and the group tables."""
    plots = out_dir / "plots"
    b = [f"<h1>{esc(title)}</h1>", verdict_html(verdict), table(["", ""], facts)]
    by_group: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        by_group.setdefault(r["group"], []).append(r)
    for g, rs in by_group.items():
        b.append(group_section(g, groups.get(g, g), rs, out_dir, plots))
    out = out_dir / "index.html"
    out.write_text(page(title, "".join(b)), encoding="utf-8")
    return out
