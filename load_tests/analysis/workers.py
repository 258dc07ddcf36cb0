"""The ``workers`` section of ``summary.json`` (S8): end to end, backlog, utilisation.

Why the backlog's *slope* and not its size: a fleet that keeps up has a backlog that
wobbles around a level; one that does not has a backlog that grows for as long as the
load lasts, however fast each request is answered. The slope of the sampled depth over
the steady part of the run (least squares), with its noise band (two standard errors),
says which; ``load_tests/evaluation/worker_checks.py`` fails the verdict on it.

After a burst (S8d) the question is how long the fleet takes to drain what the burst
left: the time from the burst's end until the backlog is back near its level before.
"""

from __future__ import annotations

import math
from typing import Any

from load_tests.analysis.loading import RunData, read_float
from load_tests.analysis.sections import _counter_in, _ms
from load_tests.measure.histograms import new_histogram
from load_tests.utils.metrics import END_TO_END

DEADLETTER_SUFFIX = "-deadletter"
STEADY_SKIP = 0.25  # of a constant schedule: the fleet's start-up, left out of the slope
MIN_SKIP_S = 1.0
DRAIN_SLACK = 0.05  # drained = back within 5 % of the burst's peak (at least 2 items)


def backlog_series(data: RunData) -> tuple[list[float], list[float]]:
    """Total waiting items over the work queues (not the dead-letter queues), one point
    per sample once every work queue has been sampled."""
    work = [q for q in data.started.get("queues", []) if not q.endswith(DEADLETTER_SUFFIX)]
    latest: dict[str, float] = {}
    times: list[float] = []
    totals: list[float] = []
    for row in data.depth:
        q = row["queue"]
        if q.endswith(DEADLETTER_SUFFIX):
            continue
        latest[q] = read_float(row["depth"])
        if len(latest) >= len(work):
            times.append(read_float(row["timestamp"]))
            totals.append(sum(latest.values()))
    return times, totals


def trend(times: list[float], values: list[float]) -> dict[str, Any]:
    """Least-squares slope (per second) and its noise band (two standard errors)."""
    n = len(times)
    if n < 3:
        return {"slope": None, "band": None, "samples": n}
    mt, mv = sum(times) / n, sum(values) / n
    sxx = sum((t - mt) ** 2 for t in times)
    if sxx <= 0:
        return {"slope": None, "band": None, "samples": n}
    slope = sum((t - mt) * (v - mv) for t, v in zip(times, values, strict=True)) / sxx
    resid = [v - (mv + slope * (t - mt)) for t, v in zip(times, values, strict=True)]
    se = math.sqrt(sum(r * r for r in resid) / (n - 2) / sxx)
    return {"slope": round(slope, 4), "band": round(2 * se, 4), "samples": n}


def steady_window(data: RunData) -> tuple[float, float]:
    """Unix times of the steady part: after the start-up of a constant schedule, or the
    tail after the last burst of a shaped one."""
    start, length = data.started_at, data.window[1] - data.started_at
    bursts = data.schedule.bursts() if data.schedule else []
    if bursts:
        return start + bursts[-1][1], start + length
    return start + max(MIN_SKIP_S, length * STEADY_SKIP), start + length


def drain_time(
    times: list[float], totals: list[float], burst: tuple[float, float]
) -> dict[str, Any]:
    """Seconds from a burst's end until the backlog is back near its level before it."""
    b0, b1 = burst
    before = [v for t, v in zip(times, totals, strict=True) if t < b0]
    level = max(before[len(before) // 2 :], default=0.0)  # the lead-in's later half
    after = [(t, v) for t, v in zip(times, totals, strict=True) if t >= b0]
    peak = max((v for _, v in after), default=level)
    line = level + max(2.0, DRAIN_SLACK * (peak - level))
    drained = next((t for t, v in after if t >= b1 and v <= line), None)
    return {
        "level_before": level,
        "peak": peak,
        "line": round(line, 1),
        "drain_s": None if drained is None else round(max(0.0, drained - b1), 2),
    }


def dead_letter_counts(data: RunData) -> dict[str, Any]:
    """Items pushed as poison against the items the dead-letter queues held at the end
    (drained into the ledger)."""
    injected = int(data.series.total_counter("poison_pushed"))
    queues = (data.ledger or {}).get("queues", {})
    held = [r for q, r in queues.items() if q.endswith(DEADLETTER_SUFFIX)]
    return {
        "injected": injected,
        "dead_lettered": sum(int(r.get("remaining", 0)) for r in held) if data.ledger else None,
        "seen_by_workers": int(data.series.total_counter("poison_dead_lettered")),
    }


def workers_summary(data: RunData) -> dict[str, Any] | None:
    """The section, or ``None`` for a run without workers."""
    s = data.series
    if not s.tags(END_TO_END) and not s.counters.get("worker_s"):
        return None
    e2e = new_histogram()
    for t in s.tags(END_TO_END):
        e2e.add(s.totals[t])
    times, totals = backlog_series(data)
    a, b = steady_window(data)
    inside = [(t, v) for t, v in zip(times, totals, strict=True) if a <= t <= b]
    backlog = trend([t for t, _ in inside], [v for _, v in inside])
    backlog.update(
        window_s=[round(a - data.started_at, 2), round(b - data.started_at, 2)],
        start=inside[0][1] if inside else None,
        end=inside[-1][1] if inside else None,
        max=max(totals, default=None),
    )
    w0, w1 = data.window
    worker_s = _counter_in(s, "worker_s", w0 - s.width, w1)
    work_s = _counter_in(s, "work_s", w0 - s.width, w1)
    out: dict[str, Any] = {
        "end_to_end_ms": _ms(e2e).to_json(),
        "acked": int(s.total_counter("acked")),
        "released": int(s.total_counter("released")),
        "arrival_items_per_s": round(_counter_in(s, "items_pushed", w0, w1) / data.duration, 2),
        "utilisation": round(work_s / worker_s, 4) if worker_s > 0 else None,
        "backlog": backlog,
        "dead_letter": dead_letter_counts(data),
        "drain": None,
    }
    bursts = data.schedule.bursts() if data.schedule else []
    if bursts:
        b0, b1 = bursts[-1]
        out["drain"] = drain_time(times, totals, (data.started_at + b0, data.started_at + b1))
    return out
