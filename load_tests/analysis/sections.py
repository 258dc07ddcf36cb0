"""The sections of ``summary.json``, one function each, from a run's :class:`RunData`.

Why percentiles come from our histograms and not Locust's: Locust stores response times
rounded to whole milliseconds below 100 ms, and this service answers in a few. Locust's
numbers are still read, for request/failure counts and the errors-by-kind table.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from typing import Any

from load_tests.analysis.loading import RunData, read_float
from load_tests.analysis.measures import find_knee, littles_law, recovery_line, recovery_time
from load_tests.measure.histograms import new_histogram, percentiles_ms
from load_tests.summary import (
    Burst,
    Bursts,
    EndpointSummary,
    Errors,
    Knee,
    Percentiles,
    StepResult,
    Throughput,
)
from load_tests.utils.metrics import (
    LATENCY,
    QUEUE_TIME,
    SEND_LAG,
    SERVICE,
    BucketSeries,
    split_tag,
    tag,
)

SETTLE_FRACTION = 0.25  # of a step: skipped before measuring the plateau


def _counter_in(series: BucketSeries, name: str, start: float, end: float) -> float:
    values = series.counters.get(name, {})
    return sum(v for s, v in values.items() if start <= s < end)


def _endpoint_names(series: BucketSeries) -> list[str]:
    return sorted({split_tag(t)[1] for t in series.tags(LATENCY)})


def _locust_rows(data: RunData) -> dict[str, dict[str, str]]:
    return {r["Name"]: r for r in data.locust_stats if r.get("Name") and r["Name"] != "Aggregated"}


def _ms(hist: Any) -> Percentiles:
    return Percentiles({k: round(v, 3) for k, v in percentiles_ms(hist).items()})


def endpoint_summary(data: RunData) -> dict[str, EndpointSummary]:
    out: dict[str, EndpointSummary] = {}
    rows = _locust_rows(data)
    for name in _endpoint_names(data.series):
        lat = data.series.totals.get(tag(LATENCY, name), new_histogram())
        svc = data.series.totals.get(tag(SERVICE, name), new_histogram())
        row = rows.get(name, {})
        count = int(lat.get_total_count())
        failures = int(read_float(row.get("Failure Count"), 0))
        out[name] = EndpointSummary(
            requests=count,
            failures=failures,
            rps=round(count / data.duration, 2),
            latency_ms=_ms(lat),
            service_ms=_ms(svc),
            locust_median_ms=read_float(row.get("Median Response Time"), None),  # type: ignore[arg-type]
            locust_p99_ms=read_float(row.get("99%"), None),  # type: ignore[arg-type]
        )
    return out


def errors_summary(data: RunData, expected: tuple[str, ...], grace_s: float) -> Errors:
    """Errors by kind, split into expected (inside the fault window) and unexpected."""
    window = None
    if data.faults and data.faults.get("window"):
        w0, w1 = data.faults["window"]
        window = (w0 - data.series.width, w1 + grace_s)
    by_kind: dict[str, dict[str, float]] = {}
    unexpected = 0.0
    expected_n = 0.0
    for name, per in data.series.counters.items():
        if not name.startswith("fail:"):
            continue
        kind = name[5:]
        row = by_kind.setdefault(kind, {"total": 0.0, "expected": 0.0, "unexpected": 0.0})
        for s, v in per.items():
            ok = (
                any(kind.startswith(e) for e in expected)
                and window is not None
                and window[0] <= s <= window[1]
            )
            row["total"] += v
            row["expected" if ok else "unexpected"] += v
            if ok:
                expected_n += v
            else:
                unexpected += v
    per_endpoint = [
        {
            "method": r.get("Method"),
            "name": r.get("Name"),
            "error": r.get("Error"),
            "occurrences": int(read_float(r.get("Occurrences"))),
        }
        for r in data.failures
    ]
    requests = data.series.total_counter("requests")
    return Errors(
        by_kind={k: {kk: int(vv) for kk, vv in v.items()} for k, v in sorted(by_kind.items())},
        per_endpoint=per_endpoint,
        expected=int(expected_n),
        unexpected=int(unexpected),
        unexpected_rate=round(unexpected / requests, 6) if requests else 0.0,
        fault_window=window,
    )


def throughput_summary(data: RunData) -> Throughput:
    s = data.series
    w0, w1 = data.window
    requests = s.total_counter("requests")
    scheduled = s.total_counter("scheduled")
    dropped = s.total_counter("dropped")
    sent = scheduled - dropped
    in_window = _counter_in(s, "requests", w0 - s.width, w1)
    sched_window = _counter_in(s, "scheduled", w0 - s.width, w1) - _counter_in(
        s, "dropped", w0 - s.width, w1
    )
    per_arrival = requests / sent if sent > 0 else None
    expected = data.schedule.mean_rate() * data.schedule.duration if data.schedule else None
    ratio = None
    if per_arrival and sched_window > 0:
        ratio = in_window / (per_arrival * sched_window)
    return Throughput(
        duration_s=round(data.duration, 3),
        requests=int(requests),
        requests_per_s=round(in_window / data.duration, 2),
        target_rps=round(data.schedule.mean_rate(), 2) if data.schedule else None,
        expected_arrivals=round(expected) if expected is not None else None,
        scheduled=int(scheduled),
        sent=int(sent),
        requests_per_arrival=round(per_arrival, 3) if per_arrival else None,
        completion_ratio=round(ratio, 4) if ratio is not None else None,
        late=int(s.total_counter("late")),
        late_ratio=round(s.total_counter("late") / scheduled, 4) if scheduled else 0.0,
        dropped=int(dropped),
        dropped_ratio=round(dropped / scheduled, 4) if scheduled else 0.0,
        in_flight_max=int(s.total_counter("in_flight_max")),
        items_pushed=int(s.total_counter("items_pushed")),
        items_popped=int(s.total_counter("items_popped")),
        items_pushed_per_s=round(_counter_in(s, "items_pushed", w0, w1) / data.duration, 2),
        items_popped_per_s=round(_counter_in(s, "items_popped", w0, w1) / data.duration, 2),
        empty_pops=int(s.total_counter("empty_pops")),
        dry_pops=int(s.total_counter("dry_pops")),
        send_lag_ms=_ms(s.totals.get(tag(SEND_LAG, "send"), new_histogram())),
    )


def depth_series(data: RunData) -> tuple[list[float], list[float]]:
    """Total depth over all of the run's queues: the latest sample of each, summed."""
    latest: dict[str, float] = {}
    times: list[float] = []
    totals: list[float] = []
    for row in data.depth:
        latest[row["queue"]] = read_float(row["depth"])
        times.append(read_float(row["timestamp"]))
        totals.append(sum(latest.values()))
    return times, totals


def queue_time_summary(data: RunData) -> Percentiles:
    hist = new_histogram()
    for t in data.series.tags(QUEUE_TIME):
        hist.add(data.series.totals[t])
    return _ms(hist)


def littles_law_summary(data: RunData, thr: Throughput, qt: Percentiles) -> dict[str, Any]:
    times, totals = depth_series(data)
    w0, w1 = data.window
    inside = [d for t, d in zip(times, totals, strict=True) if w0 <= t <= w1]
    pushed = thr.items_pushed
    if not inside or not pushed or not thr.items_popped or qt.mean is None:
        return {"applicable": False, "why": "needs pushes, pops and depth samples"}
    if data.started.get("prepopulated"):
        return {"applicable": False, "why": "prepopulated items were not in the arrival stream"}
    drift = abs(inside[-1] - inside[0])
    mean_depth = statistics.fmean(inside)
    result = littles_law(mean_depth, thr.items_pushed_per_s, qt.mean / 1000.0)
    # L = lambda W needs a steady state: the queue must end about where it started
    result["applicable"] = drift <= max(10.0, 0.2 * pushed, mean_depth)
    if not result["applicable"]:
        result["why"] = f"not a steady state: depth moved by {drift:g} items"
    return result


def knee_summary(data: RunData, p99_limit_ms: float | None) -> Knee | None:
    if data.schedule is None or len(data.schedule.steps()) < 2:
        return None
    s = data.series
    per_arrival = throughput_summary(data).requests_per_arrival or 1.0
    results = []
    for start, end, rate in data.schedule.steps():
        # whole buckets inside the plateau, after it had time to settle
        a = data.started_at + start + (end - start) * SETTLE_FRACTION
        b = data.started_at + end
        inside = [st for st in s.starts if st >= a - 1e-6 and st + s.width <= b + 1e-6]
        if not inside:
            continue
        a, b = inside[0], inside[-1] + s.width
        span = b - a
        lat = new_histogram()
        for t in s.tags(LATENCY):
            lat.add(s.merged(t, a, b))
        requests = _counter_in(s, "requests", a, b)
        fails = _counter_in(s, "failures", a, b)
        scheduled = _counter_in(s, "scheduled", a, b)
        results.append(
            StepResult(
                rate=rate,
                achieved=round(requests / span / per_arrival, 2),
                p99_ms=round(lat.get_value_at_percentile(99) / 1000.0, 3)
                if lat.get_total_count()
                else None,
                error_rate=round(fails / requests, 4) if requests else 0.0,
                dropped=_counter_in(s, "dropped", a, b),
                late_ratio=round(_counter_in(s, "late", a, b) / scheduled, 4) if scheduled else 0.0,
            )
        )
    return find_knee(results, p99_limit_ms=p99_limit_ms)


def all_latency_p99(series: BucketSeries) -> list[float | None]:
    """Per-bucket p99 over every endpoint (the client's view of the whole service)."""
    out: list[float | None] = []
    for st in series.starts:
        h = new_histogram()
        for t in series.tags(LATENCY):
            b = series.hists[t].get(st)
            if b is not None:
                h.add(b)
        out.append(h.get_value_at_percentile(99) / 1000.0 if h.get_total_count() else None)
    return out


def bursts_summary(data: RunData) -> Bursts | None:
    if data.schedule is None or not data.schedule.bursts():
        return None
    s = data.series
    p99 = all_latency_p99(s)
    bursts = data.schedule.bursts()
    first = data.started_at + bursts[0][0]
    calm = [
        v
        for st, v in zip(s.starts, p99, strict=True)
        if data.started_at + s.width <= st and st + s.width <= first and v is not None
    ]
    if not calm:
        # the lead-in was shorter than a bucket (tiny time scales): use the quietest
        # quarter of all buckets outside the bursts instead
        outside = sorted(
            v
            for st, v in zip(s.starts, p99, strict=True)
            if v is not None
            and not any(
                data.started_at + b0 <= st + s.width and st <= data.started_at + b1
                for b0, b1 in bursts
            )
        )
        calm = outside[: max(1, len(outside) // 4)]
    baseline = statistics.median(calm) if calm else None
    out: list[Burst] = []
    for i, (b0, b1) in enumerate(bursts):
        start, end = data.started_at + b0, data.started_at + b1
        nxt = data.started_at + bursts[i + 1][0] if i + 1 < len(bursts) else data.window[1]
        inside = [v for st, v in zip(s.starts, p99, strict=True) if start <= st < end and v]
        rec = (
            recovery_time(s.starts, p99, end, baseline, width=s.width, until=nxt)
            if baseline is not None
            else None
        )
        out.append(
            Burst(
                start_s=round(b0, 2),
                end_s=round(b1, 2),
                peak_p99_ms=round(max(inside), 3) if inside else None,
                recovery_s=rec,
                recovered=rec is not None,
                observed_for_s=round(nxt - end, 2),
            )
        )
    recs = [b.recovery_s for b in out]
    return Bursts(
        baseline_p99_ms=round(baseline, 3) if baseline is not None else None,
        recovery_line_ms=round(recovery_line(baseline), 3) if baseline is not None else None,
        bursts=out,
        worst_recovery_s=None if None in recs else max(recs, default=0.0),  # type: ignore[type-var]
    )


def fault_summary(data: RunData) -> dict[str, Any] | None:
    if not data.faults:
        return None
    f = dict(data.faults)
    back = (f.get("events") or {}).get("back")
    fails = data.series.counters.get("failures", {})
    if back:
        after = [s for s, v in fails.items() if v > 0 and s + data.series.width >= back]
        last = max(after) + data.series.width if after else None
        f["load_errors_end_after_back_s"] = round(max(0.0, last - back), 3) if last else 0.0
    return f


def resources_summary(data: RunData) -> dict[str, Any]:
    w0, w1 = data.window
    per: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for r in data.resources:
        t = read_float(r["timestamp"])
        if w0 <= t <= w1 + 1:
            per[r["role"]].append((read_float(r["cpu_percent"]), read_float(r["rss_bytes"])))
    out = {}
    for role, vals in per.items():
        cpus = [c for c, _ in vals]
        out[role] = {
            "cpu_mean": round(statistics.fmean(cpus), 1) if cpus else None,
            "cpu_max": round(max(cpus), 1) if cpus else None,
            "rss_max_mb": round(max(m for _, m in vals) / 2**20, 1) if vals else None,
        }
    pg = [
        r
        for r in data.postgres
        if r.get("ok") == "1" and w0 <= read_float(r["timestamp"]) <= w1 + 1
    ]
    if len(pg) >= 2:
        a, b = pg[0], pg[-1]
        span = max(1e-9, read_float(b["timestamp"]) - read_float(a["timestamp"]))

        def rate(col: str) -> float:
            return round((read_float(b[col]) - read_float(a[col])) / span, 1)

        out["pg_stats"] = {
            "commits_per_s": rate("xact_commit"),
            "rollbacks_per_s": rate("xact_rollback"),
            "tuples_updated_per_s": rate("tup_updated"),
            "tuples_inserted_per_s": rate("tup_inserted"),
            "connections_max": max(int(read_float(r["conn_total"])) for r in pg),
            "connections_active_max": max(int(read_float(r["conn_active"])) for r in pg),
            "state_table_mb_end": round(read_float(b["state_table_bytes"]) / 2**20, 2),
            "dead_tuples_end": int(read_float(b["state_dead_tup"])),
        }
    return out
