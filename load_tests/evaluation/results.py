"""What one run measured, whatever produced it: pushpop-bench summaries or Locust CSVs.

Why both: the same thresholds apply to ``pushpop-bench run`` and to a plain
``locust --headless --csv r/run``; only the inputs differ (exact microsecond
percentiles and a ledger, or Locust's whole milliseconds and no ledger).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from load_tests.evaluation.codes import EXIT_ERRORS, EXIT_LEDGER
from load_tests.summary import RunSummary


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
    workers: dict[str, Any] | None = None  # S8's section (load_tests.analysis.workers)

    @classmethod
    def from_summary(cls, summary: RunSummary | dict[str, Any], source: str = "") -> RunResult:
        """A pushpop-bench summary (exact microsecond percentiles, ledger), typed or as in
        ``summary.json``."""
        s = summary if isinstance(summary, RunSummary) else RunSummary.from_json(summary)
        fault = s.fault or {}
        endpoints = {
            name: EndpointStats(
                name,
                ep.requests,
                ep.failures,
                *(ep.latency_ms.get(k) for k in ("p50", "p95", "p99", "max")),
            )
            for name, ep in s.endpoints.items()
        }
        thr, err = s.throughput, s.errors
        recoveries: list[tuple[str, float | None]] = [
            (f"recovery after the burst ending at {b.end_s:g} s", b.recovery_s)
            for b in (s.bursts.bursts if s.bursts else [])
        ]
        if fault and not fault.get("error") and fault.get("recovery_s") is not None:
            recoveries.append(("service recovery after the fault", fault["recovery_s"]))
        r = cls(
            variant=s.variant,
            source=source,
            endpoints=endpoints,
            requests_per_s=thr.requests_per_s,
            unexpected_errors=err.unexpected,
            error_rate=float(err.unexpected_rate),
            error_kinds=err.unexpected_kinds,
            dropped=thr.dropped,
            dropped_ratio=thr.dropped_ratio,
            completion_ratio=thr.completion_ratio,
            recoveries=tuple(recoveries),
            skipped=fault.get("skipped"),
            notes=list(s.warnings),
            workers=s.workers,
        )
        r.ledger = s.ledger_status
        why = "; ".join(s.ledger.get("problems", [])[:3])
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
