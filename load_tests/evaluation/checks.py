"""One metric of one variant next to its limit, its baseline and its noise band.

A change is a *regression* only when it is worse than ``margin`` and than the noise band
(the spread of the repeats, of this run and of the baseline's), and (for latencies) more
than ``min_abs_ms``: with ``--repeat 5`` an 8 % slowdown against a +-2 % spread shows up
as outside the noise, while a single run can only be judged against the margin.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, fields
from typing import Any

from load_tests.evaluation.codes import EXIT_ERRORS, EXIT_THRESHOLD
from load_tests.evaluation.results import RunResult
from load_tests.evaluation.thresholds import Thresholds


def _spread(values: list[float]) -> float | None:
    """Half the range of repeated values, relative to their median (None for one run)."""
    if len(values) < 2:
        return None
    mid = statistics.median(values)
    return (max(values) - min(values)) / 2 / mid if mid else None


@dataclass(frozen=True)
class Check:
    """One metric of one variant, next to its limit and its baseline."""

    metric: str  # "push p99", "error rate", "req/s"
    unit: str  # "ms", "%", "req/s", "s"
    value: float | None  # median over the variant's runs
    limit: float | None
    higher_is_better: bool = False
    code: int = EXIT_THRESHOLD  # the exit code when the limit fails
    compared: bool = False  # compared with a baseline
    values: tuple[float, ...] = ()
    baseline: float | None = None
    baseline_values: tuple[float, ...] = ()
    regression: bool = False

    @property
    def over_limit(self) -> bool:
        if self.limit is None or self.value is None:
            return False
        return self.value < self.limit if self.higher_is_better else self.value > self.limit

    @property
    def delta(self) -> float | None:
        """Relative change against the baseline median (+ = bigger)."""
        if self.baseline in (None, 0) or self.value is None:
            return None
        return (self.value - self.baseline) / self.baseline

    @property
    def worse_by(self) -> float | None:
        d = self.delta
        return None if d is None else (-d if self.higher_is_better else d)

    @property
    def noise(self) -> float | None:
        """The run-to-run spread of this run's and the baseline's repeats, the wider."""
        spreads = (_spread(list(self.values)), _spread(list(self.baseline_values)))
        known = [s for s in spreads if s is not None]
        return max(known) if known else None

    @property
    def outside_noise(self) -> bool | None:
        if self.delta is None or self.noise is None:
            return None
        return abs(self.delta) > self.noise

    @property
    def failed(self) -> bool:
        return self.over_limit or self.regression

    @property
    def status(self) -> str:
        if self.over_limit:
            return "OVER LIMIT"
        return "REGRESSION" if self.regression else "ok"

    def _fmt(self, v: float | None) -> str:
        if v is None:
            return "-"
        if self.unit == "%":
            return f"{v:.2%}"
        return f"{v:,.3f} {self.unit}" if self.unit == "ms" else f"{v:,.4g} {self.unit}"

    def cells(self) -> list[str]:
        """metric, value, limit, baseline, change, noise band, status: for every renderer."""
        op = ">=" if self.higher_is_better else "<="
        limit = f"{op} {self._fmt(self.limit)}" if self.limit is not None else "-"
        delta = "-" if self.delta is None else f"{self.delta:+.1%}"
        if self.noise is not None and self.outside_noise is not None:
            noise = f"+-{self.noise:.1%} " + ("(outside)" if self.outside_noise else "(within)")
        elif self.noise is not None:
            noise = f"+-{self.noise:.1%}"
        else:
            noise = "unknown (1 run)" if self.baseline is not None else "-"
        return [self.metric, self._fmt(self.value), limit, self._fmt(self.baseline), delta, noise,
                self.status]  # fmt: skip

    def reason(self) -> str:
        if self.over_limit:
            op = "<" if self.higher_is_better else ">"
            return f"{self.metric} {self._fmt(self.value)} {op} limit {self._fmt(self.limit)}"
        return (
            f"{self.metric} {self._fmt(self.value)} vs baseline {self._fmt(self.baseline)}: "
            f"{self.delta:+.1%} (noise {self.cells()[5]})"
        )

    def to_dict(self) -> dict[str, Any]:
        cols = ("metric", "value", "limit", "baseline", "change", "noise", "status")
        return {
            **asdict(self),
            "delta": self.delta,
            "noise": self.noise,
            "outside_noise": self.outside_noise,
            "status": self.status,
            "cells": dict(zip(cols, self.cells(), strict=True)),
        }


CHECK_HEADERS = ["metric", "value", "limit", "baseline", "change", "noise band", "status"]


def raw_checks(r: RunResult, t: Thresholds) -> list[Check]:
    """The checks of one run, before medians and baselines."""
    from load_tests.evaluation.worker_checks import worker_checks  # it builds on Check

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
