"""Turn one run's files into ``summary.json``: percentiles, rates, errors, knee, recovery.

Inputs (all in the run directory; only ``histograms.hlog`` is strictly needed):
Locust's ``locust_stats.csv`` / ``locust_failures.csv`` / ``locust_stats.json``, our
``histograms.hlog`` + ``counters.csv`` (exact, microseconds, merged across workers),
``depth.csv``, ``resources.csv`` / ``postgres.csv`` (resource monitor), ``ledger.json``,
``faults.json``, ``started.json`` (schedule, start time) and ``run.json`` (what ran).

Why percentiles come from our histograms and not Locust's: Locust stores response times
rounded to whole milliseconds below 100 ms, and this service answers in a few. Locust's
numbers are still read, for request/failure counts and the errors-by-kind table.

The pure helpers (:func:`find_knee`, :func:`recovery_time`, :func:`littles_law`) are
separate so they can be tested on synthetic numbers.

    python load_tests/scripts/analyze_results.py r/run_stats.csv    # a plain Locust run
    python -m load_tests.scripts.analyze_results RUN_DIR [--report]  # pushpop-bench
"""

from __future__ import annotations

import csv
import json
import statistics
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer

if __package__ in (None, ""):  # run as a file, as the load plan does
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from load_tests.schedules import Schedule, schedule_from_spec
from load_tests.scripts import check_thresholds as checks
from load_tests.utils.metrics import (
    LATENCY,
    QUEUE_TIME,
    SEND_LAG,
    SERVICE,
    BucketSeries,
    load_bucket_series,
    new_histogram,
    percentiles_ms,
    split_tag,
    tag,
)

SETTLE_FRACTION = 0.25  # of a step: skipped before measuring the plateau
RECOVERY_FACTOR = 2.0  # "recovered" = p99 back under max(2 x baseline, baseline + 5 ms)
RECOVERY_SLACK_MS = 5.0
RECOVERY_HOLD = 2  # ... for this many consecutive buckets


# --------------------------------------------------------------------------- loading


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text()) if path.exists() else None


def _read_csv(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _float(v: Any, default: float = 0.0) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return default


@dataclass
class RunData:
    dir: Path
    meta: dict[str, Any]
    started: dict[str, Any]
    series: BucketSeries
    locust_stats: list[dict[str, str]]
    failures: list[dict[str, str]]
    depth: list[dict[str, str]]
    resources: list[dict[str, str]]
    postgres: list[dict[str, str]]
    ledger: dict[str, Any] | None
    faults: dict[str, Any] | None
    schedule: Schedule | None
    started_at: float
    window: tuple[float, float] = field(default=(0.0, 0.0))

    @property
    def duration(self) -> float:
        return max(1e-9, self.window[1] - self.window[0])


def load_run(run_dir: Path) -> RunData:
    """Read everything a run left; missing optional files become empty."""
    run_dir = Path(run_dir)
    meta = _read_json(run_dir / "run.json") or {}
    started = _read_json(run_dir / "started.json") or {}
    series = load_bucket_series(run_dir)
    schedule = schedule_from_spec(started["schedule"]) if started.get("schedule") else None
    started_at = _float(started.get("started_at"), series.starts[0] if series.starts else 0.0)
    if schedule is not None:
        end = started_at + schedule.duration
    elif series.starts:
        end = series.starts[-1] + series.width
    else:
        end = started_at + 1.0
    data = RunData(
        dir=run_dir,
        meta=meta,
        started=started,
        series=series,
        locust_stats=_read_csv(run_dir / "locust_stats.csv"),
        failures=_read_csv(run_dir / "locust_failures.csv"),
        depth=_read_csv(run_dir / "depth.csv"),
        resources=_read_csv(run_dir / "resources.csv"),
        postgres=_read_csv(run_dir / "postgres.csv"),
        ledger=_read_json(run_dir / "ledger.json"),
        faults=_read_json(run_dir / "faults.json"),
        schedule=schedule,
        started_at=started_at,
    )
    data.window = (started_at, end)
    return data


# --------------------------------------------------------------------------- pure helpers


@dataclass
class StepResult:
    rate: float  # target arrivals/s
    achieved: float  # completed requests/s during the plateau, per arrival
    p99_ms: float | None
    error_rate: float
    dropped: float
    late_ratio: float


def find_knee(
    steps: list[StepResult],
    *,
    min_ratio: float = 0.95,
    max_error_rate: float = 0.01,
    p99_limit_ms: float | None = 100.0,
) -> dict[str, Any]:
    """The highest step rate the service sustained, before the first one it did not.

    Sustained = completions kept up with arrivals (``achieved >= min_ratio * rate``),
    errors under ``max_error_rate``, nothing dropped by the generator and p99 under
    ``p99_limit_ms``. Steps after the first failure do not count even if they pass
    (a lucky plateau after saturation is not capacity).
    """
    knee: float | None = None
    reason = "every step was sustained: the limit is above the top of the ramp"
    for s in steps:
        problems = []
        if s.achieved < min_ratio * s.rate:
            problems.append(f"throughput {s.achieved:.1f}/s < {min_ratio:.0%} of {s.rate:g}/s")
        if s.error_rate > max_error_rate:
            problems.append(f"errors {s.error_rate:.1%}")
        if s.dropped > 0:
            problems.append(f"{s.dropped:g} sends dropped")
        if p99_limit_ms is not None and s.p99_ms is not None and s.p99_ms > p99_limit_ms:
            problems.append(f"p99 {s.p99_ms:.1f} ms > {p99_limit_ms:g} ms")
        if problems:
            reason = f"at {s.rate:g} req/s: " + "; ".join(problems)
            break
        knee = s.rate
    return {
        "knee_rps": knee,
        "limited": knee is None or knee != (steps[-1].rate if steps else None),
        "reason": reason,
        "steps": [s.__dict__ for s in steps],
    }


def recovery_time(
    starts: list[float],
    p99_ms: list[float | None],
    burst_end: float,
    baseline_ms: float,
    *,
    width: float,
    until: float | None = None,
    factor: float = RECOVERY_FACTOR,
    slack_ms: float = RECOVERY_SLACK_MS,
    hold: int = RECOVERY_HOLD,
) -> float | None:
    """Seconds from ``burst_end`` until p99 stays under the recovery line for ``hold`` buckets.

    0.0 when latency never left the line; ``None`` when it had not come back by ``until``.
    Empty buckets count as recovered (nothing was waiting).
    """
    line = max(baseline_ms * factor, baseline_ms + slack_ms)
    run = 0
    first_ok: float | None = None
    for s, v in zip(starts, p99_ms, strict=True):
        if s + width <= burst_end:
            continue
        if until is not None and s >= until:
            break
        if v is None or v <= line:
            if run == 0:
                first_ok = s
            run += 1
            if run >= hold and first_ok is not None:
                return round(max(0.0, first_ok - burst_end), 3)
        else:
            run = 0
            first_ok = None
    return None


def littles_law(mean_depth: float, arrival_per_s: float, mean_wait_s: float) -> dict[str, Any]:
    """L = lambda W: the sampled depth against what arrivals and queue time imply."""
    implied = arrival_per_s * mean_wait_s
    ratio = mean_depth / implied if implied > 0 else None
    return {
        "L_mean_depth": round(mean_depth, 3),
        "lambda_items_per_s": round(arrival_per_s, 3),
        "W_mean_time_in_queue_s": round(mean_wait_s, 6),
        "lambda_W": round(implied, 3),
        "ratio": round(ratio, 3) if ratio is not None else None,
    }


# --------------------------------------------------------------------------- summary


def _counter_in(series: BucketSeries, name: str, start: float, end: float) -> float:
    values = series.counters.get(name, {})
    return sum(v for s, v in values.items() if start <= s < end)


def _endpoint_names(series: BucketSeries) -> list[str]:
    return sorted({split_tag(t)[1] for t in series.tags(LATENCY)})


def _locust_rows(data: RunData) -> dict[str, dict[str, str]]:
    return {r["Name"]: r for r in data.locust_stats if r.get("Name") and r["Name"] != "Aggregated"}


def endpoint_summary(data: RunData) -> dict[str, Any]:
    out: dict[str, Any] = {}
    rows = _locust_rows(data)
    for name in _endpoint_names(data.series):
        lat = data.series.totals.get(tag(LATENCY, name), new_histogram())
        svc = data.series.totals.get(tag(SERVICE, name), new_histogram())
        row = rows.get(name, {})
        count = int(lat.get_total_count())
        failures = int(_float(row.get("Failure Count"), 0))
        out[name] = {
            "requests": count,
            "failures": failures,
            "rps": round(count / data.duration, 2),
            "latency_ms": {k: round(v, 3) for k, v in percentiles_ms(lat).items()},
            "service_ms": {k: round(v, 3) for k, v in percentiles_ms(svc).items()},
            "locust_median_ms": _float(row.get("Median Response Time"), None),  # type: ignore[arg-type]
            "locust_p99_ms": _float(row.get("99%"), None),  # type: ignore[arg-type]
        }
    return out


def errors_summary(data: RunData, expected: tuple[str, ...], grace_s: float) -> dict[str, Any]:
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
            "occurrences": int(_float(r.get("Occurrences"))),
        }
        for r in data.failures
    ]
    requests = data.series.total_counter("requests")
    return {
        "by_kind": {k: {kk: int(vv) for kk, vv in v.items()} for k, v in sorted(by_kind.items())},
        "per_endpoint": per_endpoint,
        "expected": int(expected_n),
        "unexpected": int(unexpected),
        "unexpected_rate": round(unexpected / requests, 6) if requests else 0.0,
        "fault_window": window,
    }


def throughput_summary(data: RunData) -> dict[str, Any]:
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
    return {
        "duration_s": round(data.duration, 3),
        "requests": int(requests),
        "requests_per_s": round(in_window / data.duration, 2),
        "target_rps": round(data.schedule.mean_rate(), 2) if data.schedule else None,
        "expected_arrivals": round(expected) if expected is not None else None,
        "scheduled": int(scheduled),
        "sent": int(sent),
        "requests_per_arrival": round(per_arrival, 3) if per_arrival else None,
        "completion_ratio": round(ratio, 4) if ratio is not None else None,
        "late": int(s.total_counter("late")),
        "late_ratio": round(s.total_counter("late") / scheduled, 4) if scheduled else 0.0,
        "dropped": int(dropped),
        "dropped_ratio": round(dropped / scheduled, 4) if scheduled else 0.0,
        "in_flight_max": int(s.total_counter("in_flight_max")),
        "items_pushed": int(s.total_counter("items_pushed")),
        "items_popped": int(s.total_counter("items_popped")),
        "items_pushed_per_s": round(_counter_in(s, "items_pushed", w0, w1) / data.duration, 2),
        "items_popped_per_s": round(_counter_in(s, "items_popped", w0, w1) / data.duration, 2),
        "empty_pops": int(s.total_counter("empty_pops")),
        "dry_pops": int(s.total_counter("dry_pops")),
        "send_lag_ms": {
            k: round(v, 3)
            for k, v in percentiles_ms(s.totals.get(tag(SEND_LAG, "send"), new_histogram())).items()
        },
    }


def depth_series(data: RunData) -> tuple[list[float], list[float]]:
    """Total depth over all of the run's queues: the latest sample of each, summed."""
    latest: dict[str, float] = {}
    times: list[float] = []
    totals: list[float] = []
    for row in data.depth:
        latest[row["queue"]] = _float(row["depth"])
        times.append(_float(row["timestamp"]))
        totals.append(sum(latest.values()))
    return times, totals


def queue_time_summary(data: RunData) -> dict[str, Any]:
    hist = new_histogram()
    for t in data.series.tags(QUEUE_TIME):
        hist.add(data.series.totals[t])
    out = {k: round(v, 3) for k, v in percentiles_ms(hist).items()}
    return out


def littles_law_summary(data: RunData, thr: dict[str, Any], qt: dict[str, Any]) -> dict[str, Any]:
    times, totals = depth_series(data)
    w0, w1 = data.window
    inside = [d for t, d in zip(times, totals, strict=True) if w0 <= t <= w1]
    pushed = thr["items_pushed"]
    if not inside or not pushed or not thr["items_popped"] or "mean" not in qt:
        return {"applicable": False, "why": "needs pushes, pops and depth samples"}
    if data.started.get("prepopulated"):
        return {"applicable": False, "why": "prepopulated items were not in the arrival stream"}
    drift = abs(inside[-1] - inside[0])
    mean_depth = statistics.fmean(inside)
    result = littles_law(mean_depth, thr["items_pushed_per_s"], qt["mean"] / 1000.0)
    # L = lambda W needs a steady state: the queue must end about where it started
    result["applicable"] = drift <= max(10.0, 0.2 * pushed, mean_depth)
    if not result["applicable"]:
        result["why"] = f"not a steady state: depth moved by {drift:g} items"
    return result


def knee_summary(data: RunData, p99_limit_ms: float | None) -> dict[str, Any] | None:
    if data.schedule is None or len(data.schedule.steps()) < 2:
        return None
    s = data.series
    per_arrival = throughput_summary(data)["requests_per_arrival"] or 1.0
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


def bursts_summary(data: RunData) -> dict[str, Any] | None:
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
    out = []
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
            {
                "start_s": round(b0, 2),
                "end_s": round(b1, 2),
                "peak_p99_ms": round(max(inside), 3) if inside else None,
                "recovery_s": rec,
                "recovered": rec is not None,
                "observed_for_s": round(nxt - end, 2),
            }
        )
    recs = [b["recovery_s"] for b in out]
    return {
        "baseline_p99_ms": round(baseline, 3) if baseline is not None else None,
        "recovery_line_ms": round(max(baseline * RECOVERY_FACTOR, baseline + RECOVERY_SLACK_MS), 3)
        if baseline is not None
        else None,
        "bursts": out,
        "worst_recovery_s": None if None in recs else max(recs, default=0.0),
    }


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
        t = _float(r["timestamp"])
        if w0 <= t <= w1 + 1:
            per[r["role"]].append((_float(r["cpu_percent"]), _float(r["rss_bytes"])))
    out = {}
    for role, vals in per.items():
        cpus = [c for c, _ in vals]
        out[role] = {
            "cpu_mean": round(statistics.fmean(cpus), 1) if cpus else None,
            "cpu_max": round(max(cpus), 1) if cpus else None,
            "rss_max_mb": round(max(m for _, m in vals) / 2**20, 1) if vals else None,
        }
    pg = [r for r in data.postgres if r.get("ok") == "1" and w0 <= _float(r["timestamp"]) <= w1 + 1]
    if len(pg) >= 2:
        a, b = pg[0], pg[-1]
        span = max(1e-9, _float(b["timestamp"]) - _float(a["timestamp"]))

        def rate(col: str) -> float:
            return round((_float(b[col]) - _float(a[col])) / span, 1)

        out["pg_stats"] = {
            "commits_per_s": rate("xact_commit"),
            "rollbacks_per_s": rate("xact_rollback"),
            "tuples_updated_per_s": rate("tup_updated"),
            "tuples_inserted_per_s": rate("tup_inserted"),
            "connections_max": max(int(_float(r["conn_total"])) for r in pg),
            "connections_active_max": max(int(_float(r["conn_active"])) for r in pg),
            "state_table_mb_end": round(_float(b["state_table_bytes"]) / 2**20, 2),
            "dead_tuples_end": int(_float(b["state_dead_tup"])),
        }
    return out


def summarize(
    data: RunData,
    *,
    expected_errors: tuple[str, ...] = (),
    p99_limit_ms: float | None = 100.0,
    grace_s: float = 10.0,
) -> dict[str, Any]:
    thr = throughput_summary(data)
    qt = queue_time_summary(data)
    summary: dict[str, Any] = {
        "variant": data.meta.get("variant") or data.dir.name,
        "title": data.meta.get("title", ""),
        "run_id": data.started.get("run_id"),
        "schedule": data.schedule.describe() if data.schedule else "closed loop",
        "model": data.started.get("model"),
        "started_at": data.started_at,
        "window": list(data.window),
        "bucket_s": data.series.width,
        "queues": len(data.started.get("queues", [])),
        "prepopulated": data.started.get("prepopulated", {}),
        "endpoints": endpoint_summary(data),
        "throughput": thr,
        "errors": errors_summary(data, expected_errors, grace_s),
        "time_in_queue_ms": qt,
        "littles_law": littles_law_summary(data, thr, qt),
        "knee": knee_summary(data, p99_limit_ms),
        "bursts": bursts_summary(data),
        "fault": fault_summary(data),
        "ledger": data.ledger or {"ok": False, "status": "missing", "problems": ["no ledger"]},
        "resources": resources_summary(data),
    }
    _, totals = depth_series(data)
    summary["depth"] = {
        "samples": len(totals),
        "start": totals[0] if totals else None,
        "end": totals[-1] if totals else None,
        "mean": round(statistics.fmean(totals), 1) if totals else None,
        "max": max(totals) if totals else None,
    }
    locust_json = _read_json(data.dir / "locust_stats.json") or []
    summary["locust_total_requests"] = sum(int(e.get("num_requests", 0)) for e in locust_json)
    summary["warnings"] = warnings(summary)
    return summary


def warnings(summary: dict[str, Any]) -> list[str]:
    """Things a reader must know before trusting the numbers."""
    out = []
    thr = summary["throughput"]
    ours = sum(ep["requests"] for ep in summary["endpoints"].values())
    theirs = summary.get("locust_total_requests")
    if theirs and theirs != ours:
        out.append(f"Locust counted {theirs} requests, the histograms {ours}")
    if thr["dry_pops"]:
        out.append(f"{thr['dry_pops']} pops found their prepopulated queue empty (it ran dry)")
    if thr["late_ratio"] > 0.05:
        out.append(
            f"{thr['late_ratio']:.0%} of sends left >10 ms late: the load generator was "
            "saturated, so part of the latency is the generator's"
        )
    if thr["dropped"]:
        out.append(f"{thr['dropped']} arrivals dropped (too many requests outstanding)")
    other = summary["resources"].get("other", {})
    if other.get("cpu_mean") and other["cpu_mean"] > 50:
        out.append(
            f"other processes on this machine used {other['cpu_mean']:.0f}% CPU on average "
            "(100 = one core): they competed with the service"
        )
    gen = summary["resources"].get("loadgen", {})
    if gen.get("cpu_mean") and gen["cpu_mean"] > 80:
        out.append(f"the load generator used {gen['cpu_mean']:.0f}% of a core on average")
    ll = summary["littles_law"]
    if ll.get("applicable") and ll.get("ratio") and not 0.5 <= ll["ratio"] <= 2.0:
        out.append(f"Little's law is off by a factor {ll['ratio']:g} (depth sampling too coarse?)")
    return out


def analyze(
    run_dir: Path,
    expected_errors: tuple[str, ...] = (),
    p99_limit_ms: float | None = 100.0,
) -> dict[str, Any]:
    """Load, summarize and write ``summary.json``; returns the summary."""
    data = load_run(run_dir)
    summary = summarize(data, expected_errors=expected_errors, p99_limit_ms=p99_limit_ms)
    (Path(run_dir) / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    return summary


app = typer.Typer(add_completion=False, help=__doc__)


@app.command()
def main(
    paths: Annotated[
        list[Path], typer.Argument(help="Locust *_stats.csv files, variant or results folders")
    ],
    report: Annotated[bool, typer.Option(help="also write report.html")] = True,
    thresholds: Annotated[Path | None, typer.Option(help="JSON thresholds file")] = None,
    p50: checks.P50 = None,
    p95: checks.P95 = None,
    p99: checks.P99 = None,
    max_error_rate: checks.MaxErrors = None,
) -> None:
    """Print p50/p95/p99/errors per endpoint and the verdicts; exit non-zero on a failure.

    A pushpop-bench variant folder is (re)analysed first: its ``summary.json`` (and
    ``report.html``) are rewritten from the raw histograms.
    """
    from load_tests.catalog import VARIANTS
    from load_tests.evaluation import RunResult, ThresholdSet

    flags = checks.threshold_flags(p50, p95, p99, max_error_rate)
    for run_dir in (p for p in paths if (p / "histograms.hlog").exists()):
        meta = _read_json(run_dir / "run.json") or {}
        variant = VARIANTS.get(meta.get("variant", run_dir.name))
        summary = analyze(run_dir, variant.expected_errors if variant else ())
        if report:
            from load_tests.report import write_run_report

            result = RunResult.from_summary(summary, str(run_dir))
            evaluation = checks.judge({result.variant: [result]}, ThresholdSet.load(thresholds))
            write_run_report(run_dir, summary, evaluation.variants[0])
    raise typer.Exit(checks.check(paths, thresholds, overrides=flags))


if __name__ == "__main__":
    app()
