"""The checks of a run: each metric of each variant as a :class:`Check`, and their merge
over repeats (the check itself, its noise band and regression rule: :mod:`.check`).
"""

from __future__ import annotations

import statistics
from dataclasses import fields

from load_tests.evaluation.check import Check
from load_tests.evaluation.codes import EXIT_ERRORS
from load_tests.evaluation.results import RunResult
from load_tests.evaluation.thresholds import Thresholds
from load_tests.evaluation.worker_checks import worker_checks


def raw_checks(r: RunResult, t: Thresholds) -> list[Check]:
    """The checks of one run, before medians and baselines."""
    out: list[Check] = []
    for name, ep in r.endpoints.items():
        exempt = name in t.latency_exempt
        for key, limit in (("p50", t.p50_ms), ("p95", t.p95_ms), ("p99", t.p99_ms)):
            value = getattr(ep, f"{key}_ms")
            out.append(Check(f"{name} {key}", "ms", value, None if exempt else limit,
                             compared=True))  # fmt: skip
        if t.max_ms is not None:
            out.append(Check(f"{name} max", "ms", ep.max_ms, t.max_ms))
    out.append(Check("error rate", "%", r.error_rate, t.error_rate, code=EXIT_ERRORS))
    if r.requests_per_s is not None:
        out.append(Check("req/s", "req/s", r.requests_per_s, None, True, compared=True))
    if r.dropped_ratio is not None:
        out.append(Check("dropped arrivals", "%", r.dropped_ratio, t.dropped_ratio))
    if r.completion_ratio is not None:
        out.append(
            Check("completed arrivals", "%", r.completion_ratio, t.min_throughput_ratio, True)
        )
    if t.recovery_s is not None:
        for what, seconds in r.recoveries:
            # never recovered: an infinite recovery time fails any limit
            out.append(Check(what, "s", float("inf") if seconds is None else seconds, t.recovery_s))
    return out + worker_checks(r, t)


def merge_checks(
    per_run: list[list[Check]], base: dict[str, list[float]], margin: float, min_abs_ms: float
) -> list[Check]:
    """One check per metric: the median over runs, with the baseline and the regression."""
    order: dict[str, Check] = {}
    values: dict[str, list[float]] = {}
    for checks in per_run:
        for c in checks:
            order.setdefault(c.metric, c)
            if c.value is not None:
                values.setdefault(c.metric, []).append(c.value)
    out = []
    for metric, first in order.items():
        vals = values.get(metric, [])
        old = base.get(metric, []) if first.compared else []
        c = Check(
            metric, first.unit, statistics.median(vals) if vals else None, first.limit,
            first.higher_is_better, first.code, first.compared, tuple(vals),
            statistics.median(old) if old else None, tuple(old),
        )  # fmt: skip
        worse, noise = c.worse_by, c.noise
        if worse is not None and c.value is not None and c.baseline is not None:
            big_enough = abs(c.value - c.baseline) > min_abs_ms if c.unit == "ms" else True
            regression = worse > margin and (noise is None or worse > noise) and big_enough
            if regression:
                c = Check(**{**{f.name: getattr(c, f.name) for f in fields(c)}, "regression": True})
        out.append(c)
    return out
