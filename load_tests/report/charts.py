"""Matplotlib figures: one run over time (latency, rates, depth, resources, recovery),
its step ramp, and the cross-variant comparisons of the S4 and S5 groups.

Every figure is drawn on the Agg backend (no display) and returned for
:func:`load_tests.report.html.png` to embed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from load_tests.analysis.loading import RunData
from load_tests.analysis.sections import all_latency_p99, depth_series
from load_tests.summary import Bursts, Knee, RunSummary
from load_tests.utils.metrics import LATENCY, QUEUE_TIME, SERVICE, tag

COLORS = plt.rcParams["axes.prop_cycle"].by_key()["color"]


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


def plot_knee(knee: Knee) -> Figure:
    steps = knee.steps
    fig, ax = plt.subplots(figsize=(11, 3.6))
    rates = [s.rate for s in steps]
    ax.plot(rates, rates, color="gray", ls=":", label="target")
    ax.plot(rates, [s.achieved for s in steps], marker="o", label="achieved (per arrival)")
    ax.set_xlabel("target arrivals/s (step)")
    ax.set_ylabel("achieved/s")
    ax2 = ax.twinx()
    ax2.plot(rates, [s.p99_ms for s in steps], color="red", marker="s", label="p99 ms")
    ax2.set_ylabel("p99 (ms)")
    if knee.knee_rps:
        ax.axvline(knee.knee_rps, color="green", ls="--", label=f"knee {knee.knee_rps:g}/s")
    ax.set_title("Step ramp: throughput and p99 per plateau")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    ax2.legend(loc="lower right", fontsize=8)
    return fig


def plot_recovery(data: RunData, bursts: Bursts) -> Figure:
    s = data.series
    fig, ax = plt.subplots(figsize=(11, 3.6))
    x = [t + s.width / 2 for t in _rel(data, s.starts)]
    ax.plot(x, all_latency_p99(s), label="p99, all requests")
    if bursts.recovery_line_ms:
        ax.axhline(bursts.recovery_line_ms, color="green", ls="--", label="recovery line")
    for b in bursts.bursts:
        if b.recovery_s is not None:
            ax.axvline(b.end_s + b.recovery_s, color="purple", ls=":", lw=1)
    _shade(ax, data)
    _time_axis(ax, "p99 (ms, log)", "Recovery after bursts (dotted: recovered)", log=True)
    return fig


def plot_scaling(done: list[tuple[str, RunSummary]]) -> Figure:
    """S4: p99 and throughput side by side, one bar group per variant (queue count)."""
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 3.6))
    labels = [f"{variant}\n{s.queues} queues" for variant, s in done]
    for i, name in enumerate(("push", "pop")):
        a1.bar(
            [x + i * 0.38 for x in range(len(done))],
            [s.latency(name, "p99") or 0 for _, s in done],
            width=0.38,
            label=f"{name} p99",
        )
    a1.set_xticks([x + 0.19 for x in range(len(done))], labels)
    a1.set_ylabel("p99 (ms)")
    a1.set_title("p99 latency by number of queues")
    a1.legend(fontsize=8)
    a2.bar(labels, [s.throughput.requests_per_s for _, s in done], color=COLORS[2])
    a2.set_ylabel("completed req/s")
    a2.set_title("Throughput by number of queues")
    for a in (a1, a2):
        a.grid(True, axis="y", alpha=0.3)
    return fig


def depth_rows(done: list[tuple[str, RunSummary]]) -> list[tuple[float, RunSummary, str]]:
    """S5: (prepopulated items, summary, variant), shallowest first."""
    return sorted(((float(s.prepopulated_items), s, v) for v, s in done), key=lambda x: x[0])


def plot_depth_latency(done: list[tuple[str, RunSummary]]) -> Figure:
    rows = depth_rows(done)
    fig, ax = plt.subplots(figsize=(11, 3.8))
    xs = [max(d, 1) for d, _, _ in rows]
    for key, ls in (("p50", "--"), ("p99", "-"), ("p99.9", ":")):
        ax.plot(
            xs, [s.latency("pop", key) for _, s, _ in rows], marker="o", ls=ls, label=f"pop {key}"
        )
    ax.plot(xs, [s.latency("push-refill", "p99") for _, s, _ in rows], marker="x", label="push p99")
    for x, (_, _, v) in zip(xs, rows, strict=True):
        ax.annotate(v, (x, ax.get_ylim()[0]), fontsize=8, ha="center", va="bottom")
    ax.set_xscale("log")
    ax.set_xlabel("items in the queue (prepopulated; 0 plotted at 1)")
    ax.set_ylabel("latency (ms)")
    ax.set_title("Pop latency against queue depth")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return fig
