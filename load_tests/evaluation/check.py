"""One metric of one variant next to its limit, its baseline and its noise band.

A change is a *regression* only when it is worse than ``margin`` and than the noise band
(the spread of the repeats, of this run and of the baseline's), and (for latencies) more
than ``min_abs_ms``: with ``--repeat 5`` an 8 % slowdown against a +-2 % spread shows up
as outside the noise, while a single run can only be judged against the margin.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass
from typing import Any

from load_tests.evaluation.codes import EXIT_THRESHOLD


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
