"""One evaluation of load-test results: thresholds, baseline and noise, as typed data.

Why one: the exit code, the console lines, ``verdict.txt`` and the HTML reports are all
rendered from the same :class:`Evaluation`, so they cannot disagree. (They used to be
computed in three places, and a run could print ``REGRESSION`` and then ``VERDICT: PASS``.)

Inputs are :class:`RunResult` values, built either from a pushpop-bench ``summary.json``
or from Locust's own ``--csv`` output (``*_stats.csv``), so the same thresholds apply to
``pushpop-bench run`` and to a plain ``locust --headless --csv r/run``.

Each metric becomes a :class:`Check`: its median over the repeats of a variant, the
limit it is held to, the baseline median, the relative change and the noise band (the
spread of the repeats, of this run and of the baseline's). A change is a *regression*
only when it is worse than ``margin`` and than the noise band, and (for latencies) more
than ``min_abs_ms``: with ``--repeat 5`` an 8 % slowdown against a +-2 % spread shows
up as outside the noise, while a single run can only be judged against the margin.

Exit codes (the worst wins): 0 pass or skip, 1 errors, 3 threshold or regression,
4 ledger (an acknowledged item lost or delivered twice).
"""

from __future__ import annotations

import csv
import json
import statistics
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

EXIT_OK = 0
EXIT_ERRORS = 1
EXIT_THRESHOLD = 3
EXIT_LEDGER = 4
_SEVERITY = {EXIT_OK: 0, EXIT_THRESHOLD: 1, EXIT_ERRORS: 2, EXIT_LEDGER: 3}
HEADLINE_MIN_REQUESTS = 20  # endpoints with fewer requests are noise in a one-line summary


def worst(codes: Iterable[int]) -> int:
    return max(codes, key=lambda c: _SEVERITY.get(c, 0), default=EXIT_OK)


# --------------------------------------------------------------------------- thresholds


@dataclass
class Thresholds:
    """Limits for one variant; ``None`` disables a check. Defaults from the load plan."""

    p50_ms: float | None = 30.0
    p95_ms: float | None = 50.0
    p99_ms: float | None = 100.0
    max_ms: float | None = None
    error_rate: float = 0.01  # unexpected failed requests / requests
    dropped_ratio: float | None = 0.01  # arrivals the generator could not send
    min_throughput_ratio: float | None = 0.9  # completions in the window / arrivals sent
    recovery_s: float | None = None  # bursts and faults

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Thresholds:
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown threshold(s) {sorted(unknown)}; known: {sorted(names)}")
        return cls(**d)

    def merged(self, overrides: dict[str, Any]) -> Thresholds:
        return Thresholds.from_dict({**asdict(self), **overrides})


@dataclass
class ThresholdSet:
    """Defaults, the catalogue's per-variant overrides, then a file's per-variant ones."""

    default: Thresholds = field(default_factory=Thresholds)
    variants: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path | None, overrides: dict[str, Any] | None = None) -> ThresholdSet:
        """``{"default": {...}, "variants": {"S3a": {...}}}``, or a flat ``{"p99_ms": 80}``.

        ``overrides`` (command-line flags) win over the file's defaults.
        """
        raw: dict[str, Any] = json.loads(path.read_text()) if path else {}
        if raw and not {"default", "variants"} & set(raw):
            raw = {"default": raw}
        default = Thresholds().merged(raw.get("default", {})).merged(overrides or {})
        return cls(default, raw.get("variants", {}))

    def for_variant(self, variant_id: str) -> Thresholds:
        from load_tests.catalog import VARIANTS

        t = self.default
        v = VARIANTS.get(variant_id)
        if v is not None and v.thresholds:
            t = t.merged(v.thresholds)
        return t.merged(self.variants.get(variant_id, {}))


# --------------------------------------------------------------------------- inputs


def _num(v: Any) -> float | None:
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class EndpointStats:
    name: str
    requests: int
    failures: int
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    max_ms: float | None


@dataclass(frozen=True)
class Problem:
    """Something that fails a run without being a number against a limit."""

    code: int
    why: str


@dataclass
class RunResult:
    """What one run measured, whatever produced it."""

    variant: str
    source: str
    endpoints: dict[str, EndpointStats] = field(default_factory=dict)
    requests_per_s: float | None = None
    unexpected_errors: int = 0
    error_rate: float = 0.0
    error_kinds: tuple[str, ...] = ()
    dropped: int = 0
    dropped_ratio: float | None = None
    completion_ratio: float | None = None
    recoveries: tuple[tuple[str, float | None], ...] = ()  # (what, seconds; None = never)
    problems: list[Problem] = field(default_factory=list)
    ledger: str | None = None  # None: not checked (plain Locust runs)
    skipped: str | None = None
    notes: list[str] = field(default_factory=list)

    @classmethod
    def from_summary(cls, s: dict[str, Any], source: str = "") -> RunResult:
        """A pushpop-bench ``summary.json`` (exact microsecond percentiles, ledger)."""
        fault = s.get("fault") or {}
        endpoints = {
            name: EndpointStats(
                name,
                int(ep.get("requests", 0)),
                int(ep.get("failures", 0)),
                *(ep.get("latency_ms", {}).get(k) for k in ("p50", "p95", "p99", "max")),
            )
            for name, ep in s.get("endpoints", {}).items()
        }
        thr, err = s.get("throughput", {}), s.get("errors", {})
        recoveries: list[tuple[str, float | None]] = [
            (f"recovery after the burst ending at {b['end_s']:g} s", b["recovery_s"])
            for b in (s.get("bursts") or {}).get("bursts", [])
        ]
        if fault and not fault.get("error") and fault.get("recovery_s") is not None:
            recoveries.append(("service recovery after the fault", fault["recovery_s"]))
        r = cls(
            variant=s.get("variant", "?"),
            source=source or s.get("_dir", ""),
            endpoints=endpoints,
            requests_per_s=thr.get("requests_per_s"),
            unexpected_errors=int(err.get("unexpected", 0)),
            error_rate=float(err.get("unexpected_rate", 0.0)),
            error_kinds=tuple(k for k, v in err.get("by_kind", {}).items() if v.get("unexpected")),
            dropped=int(thr.get("dropped", 0)),
            dropped_ratio=thr.get("dropped_ratio"),
            completion_ratio=thr.get("completion_ratio"),
            recoveries=tuple(recoveries),
            skipped=fault.get("skipped"),
            notes=list(s.get("warnings", [])),
        )
        led = s.get("ledger") or {}
        r.ledger = led.get("status", "missing")
        why = "; ".join(led.get("problems", [])[:3])
        if r.ledger == "FAIL":
            r.problems.append(Problem(EXIT_LEDGER, f"ledger: {why}"))
        elif r.ledger != "ok":
            r.problems.append(Problem(EXIT_ERRORS, f"ledger {r.ledger}: {why}"))
        if fault.get("error"):
            r.problems.append(Problem(EXIT_ERRORS, f"fault injection failed: {fault['error']}"))
        return r

    @classmethod
    def from_locust_csv(cls, path: Path) -> RunResult:
        """Locust's ``PREFIX_stats.csv`` (whole-millisecond percentiles, no ledger).

        The sibling ``PREFIX_stats_history.csv``, when present, adds how long the run
        lasted and how many users it peaked at, which says whether the plan's
        ``--users``/``--run-time`` were honoured.
        """
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        if rows and "Request Count" not in rows[0]:
            raise ValueError(f"{path}: not a Locust *_stats.csv (no 'Request Count' column)")
        endpoints: dict[str, EndpointStats] = {}
        total = failures = 0
        rps = None
        for row in rows:
            n, fails = int(_num(row["Request Count"]) or 0), int(_num(row["Failure Count"]) or 0)
            if row.get("Name") == "Aggregated":
                total, failures, rps = n, fails, _num(row.get("Requests/s"))
                continue
            name = row["Name"]
            if name in endpoints:  # the same name under two methods
                name = f"{row.get('Type', '')} {name}".strip()
            endpoints[name] = EndpointStats(
                name, n, fails, _num(row.get("50%")), _num(row.get("95%")),
                _num(row.get("99%")), _num(row.get("Max Response Time")),
            )  # fmt: skip
        prefix = path.name.removesuffix("_stats.csv")
        r = cls(
            variant=prefix if prefix != "locust" else path.parent.name,
            source=str(path),
            endpoints=endpoints,
            requests_per_s=rps,
            unexpected_errors=failures,
            error_rate=failures / total if total else 0.0,
        )
        if total == 0:
            r.problems.append(Problem(EXIT_ERRORS, f"{path.name}: no requests were made"))
        history = path.with_name(f"{prefix}_stats_history.csv")
        if history.exists():
            r.notes.append(_history_note(history))
        return r


def _history_note(path: Path) -> str:
    with open(path, newline="", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r.get("Name") == "Aggregated"]
    if not rows:
        return f"{path.name}: empty"
    stamps = [int(_num(r["Timestamp"]) or 0) for r in rows]
    users = max(int(_num(r.get("User Count")) or 0) for r in rows)
    return f"{path.name}: {stamps[-1] - stamps[0]} s of history, at most {users} users"


def load_results(paths: Iterable[Path]) -> dict[str, list[RunResult]]:
    """Runs under ``paths``, grouped by variant id.

    A path may be a pushpop-bench results folder, a variant folder, a ``summary.json``,
    a Locust ``*_stats.csv`` / ``*_stats_history.csv``, or a folder holding Locust CSVs.
    """
    found: dict[str, list[RunResult]] = {}
    for p in map(Path, paths):
        for r in _results_at(p):
            found.setdefault(r.variant, []).append(r)
    return found


def _results_at(p: Path) -> list[RunResult]:
    if p.is_file():
        if p.name.endswith("_stats_history.csv"):
            p = p.with_name(p.name.replace("_stats_history.csv", "_stats.csv"))
        if p.name.endswith(".json"):
            return [RunResult.from_summary(json.loads(p.read_text()), str(p.parent))]
        return [RunResult.from_locust_csv(p)]
    summaries = [p / "summary.json"] if (p / "summary.json").exists() else []
    summaries += sorted(p.glob("*/summary.json")) + sorted(p.glob("*/*/summary.json"))
    if summaries:
        return [
            RunResult.from_summary(json.loads(s.read_text()), str(s.parent))
            for s in dict.fromkeys(summaries)
        ]
    return [RunResult.from_locust_csv(c) for c in sorted(p.glob("*_stats.csv"))]


# --------------------------------------------------------------------------- baselines


@dataclass
class Baseline:
    """Per variant and metric, the values of the runs a baseline was made of."""

    variants: dict[str, dict[str, list[float]]]
    created: str = ""
    source: str = ""

    @classmethod
    def from_runs(cls, runs: dict[str, list[RunResult]]) -> Baseline:
        variants: dict[str, dict[str, list[float]]] = {}
        for vid, results in runs.items():
            per: dict[str, list[float]] = {}
            for r in results:
                for c in _raw_checks(r, Thresholds()):
                    if c.compared and c.value is not None:
                        per.setdefault(c.metric, []).append(c.value)
            variants[vid] = per
        return cls(variants, time.strftime("%Y-%m-%d %H:%M:%S"))

    def save(self, path: Path) -> dict[str, Any]:
        data = {
            "created": self.created,
            "variants": {
                v: {
                    "runs": max((len(x) for x in m.values()), default=0),
                    "metrics": {
                        k: {"median": statistics.median(x), "values": x} for k, x in m.items()
                    },
                }
                for v, m in self.variants.items()
            },
        }
        path.write_text(json.dumps(data, indent=1))
        return data

    @classmethod
    def load(cls, path: Path) -> Baseline:
        data = json.loads(path.read_text())
        variants = {
            v: {k: list(m.get("values") or [m["median"]]) for k, m in d["metrics"].items()}
            for v, d in data.get("variants", {}).items()
        }
        return cls(variants, data.get("created", ""), str(path))


# --------------------------------------------------------------------------- checks


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


def _raw_checks(r: RunResult, t: Thresholds) -> list[Check]:
    """The checks of one run, before medians and baselines."""
    out: list[Check] = []
    for name, ep in r.endpoints.items():
        for key, limit in (("p50", t.p50_ms), ("p95", t.p95_ms), ("p99", t.p99_ms)):
            value = getattr(ep, f"{key}_ms")
            out.append(Check(f"{name} {key}", "ms", value, limit, compared=True))
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
    return out


def _merge(
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


# --------------------------------------------------------------------------- verdicts


@dataclass
class VariantEvaluation:
    """The verdict of one variant over all its runs (repeats)."""

    variant: str
    runs: int
    checks: list[Check] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    skipped: str | None = None
    ledger: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def code(self) -> int:
        if self.skipped:
            return EXIT_OK
        return worst(
            [p.code for p in self.problems]
            + [c.code if c.over_limit else EXIT_THRESHOLD for c in self.checks if c.failed]
        )

    @property
    def status(self) -> str:
        if self.skipped:
            return "SKIP"
        return "PASS" if self.code == EXIT_OK else "FAIL"

    @property
    def reasons(self) -> list[str]:
        if self.skipped:
            return [self.skipped]
        return [p.why for p in self.problems] + [c.reason() for c in self.checks if c.failed]

    @property
    def regressions(self) -> list[Check]:
        return [c for c in self.checks if c.regression]

    @property
    def headline(self) -> str:
        if self.skipped:
            return "not run"
        parts = [
            f"{c.metric} {c.value:.2f} ms"
            for c in self.checks
            if c.metric.endswith(" p99") and c.value is not None
        ][:4]
        by = {c.metric: c for c in self.checks}
        if "req/s" in by and by["req/s"].value is not None:
            parts.append(f"{by['req/s'].value:,.1f} req/s")
        if "error rate" in by:
            parts.append(f"errors {by['error rate'].value:.2%}")
        if self.ledger:
            parts.append(f"ledger {self.ledger}")
        if self.runs > 1:
            parts.append(f"median of {self.runs} runs")
        return ", ".join(parts)

    @property
    def line(self) -> str:
        tail = f" - {self.headline}" if self.headline else ""
        return f"VERDICT {self.variant}: {self.status}{tail}"

    def text(self) -> str:
        """The console and ``verdict.txt`` form: verdict line, reasons, then the checks."""
        lines = [self.line] + [f"    - {r}" for r in self.reasons]
        lines += [f"    note: {n}" for n in self.notes]
        if self.checks and not self.skipped:
            lines += ["    " + row for row in _aligned([CHECK_HEADERS, *self.rows()])]
        return "\n".join(lines)

    def rows(self) -> list[list[str]]:
        return [c.cells() for c in self.checks]

    def to_dict(self) -> dict[str, Any]:
        return {
            "variant": self.variant,
            "runs": self.runs,
            "status": self.status,
            "code": self.code,
            "line": self.line,
            "headline": self.headline,
            "reasons": self.reasons,
            "notes": self.notes,
            "checks": [c.to_dict() for c in self.checks],
        }


def _aligned(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip()
            for r in rows]  # fmt: skip


@dataclass
class Evaluation:
    """Every variant's verdict and the one exit code they add up to."""

    variants: list[VariantEvaluation]
    baseline: str | None = None
    margin: float = 0.15

    @property
    def code(self) -> int:
        return worst(v.code for v in self.variants) if self.variants else EXIT_ERRORS

    @property
    def status(self) -> str:
        return "PASS" if self.code == EXIT_OK else "FAIL"

    @property
    def reasons(self) -> list[str]:
        return [f"{v.variant}: {r}" for v in self.variants for r in v.reasons[:3]]

    @property
    def line(self) -> str:
        counts: dict[str, int] = {}
        for v in self.variants:
            counts[v.status] = counts.get(v.status, 0) + 1
        tally = ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "nothing evaluated"
        line = f"VERDICT: {self.status} ({tally}; exit code {self.code})"
        regressions = sum(len(v.regressions) for v in self.variants)
        if self.baseline:
            line += f" - {regressions} regression(s) against {self.baseline}"
        failed = [v.variant for v in self.variants if v.status == "FAIL"]
        if failed:
            line += f" - failed: {', '.join(failed)}"
        return line

    def of(self, variant: str) -> VariantEvaluation:
        return next(v for v in self.variants if v.variant == variant)

    def text(self) -> str:
        return "\n".join([v.text() for v in self.variants] + ["", self.line]) + "\n"

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "code": self.code,
            "line": self.line,
            "baseline": self.baseline,
            "margin": self.margin,
            "reasons": self.reasons,
            "variants": [v.to_dict() for v in self.variants],
        }


def evaluate(
    runs: dict[str, list[RunResult]],
    thresholds: ThresholdSet | None = None,
    baseline: Baseline | None = None,
    margin: float = 0.15,
    min_abs_ms: float = 0.5,
) -> Evaluation:
    """THE evaluation: everything that reports a verdict renders what this returns."""
    thresholds = thresholds or ThresholdSet()
    out = []
    for vid, results in runs.items():
        t = thresholds.for_variant(vid)
        ran = [r for r in results if not r.skipped]
        if not ran:
            out.append(VariantEvaluation(vid, len(results), skipped=results[0].skipped))
            continue
        base = baseline.variants.get(vid, {}) if baseline else {}
        checks = _merge([_raw_checks(r, t) for r in ran], base, margin, min_abs_ms)
        problems = list(dict.fromkeys(p for r in ran for p in r.problems))
        for r in ran:
            if r.error_rate > t.error_rate and r.error_kinds:
                kinds = ", ".join(r.error_kinds[:4])
                problems.append(Problem(EXIT_ERRORS, f"unexpected errors: {kinds}"))
        ledgers = {r.ledger for r in ran if r.ledger}
        notes = list(dict.fromkeys(n for r in ran for n in r.notes))
        if baseline and not any(c.baseline is not None for c in checks):
            # say so: a silent "no regression" against nothing would read as a pass
            notes.append(f"no comparable metrics for {vid} in the baseline {baseline.source}")
        out.append(
            VariantEvaluation(
                vid,
                len(ran),
                checks,
                list(dict.fromkeys(problems)),
                ledger=" / ".join(sorted(ledgers)) or None,
                notes=notes,
            )
        )
    return Evaluation(out, baseline.source if baseline else None, margin)
