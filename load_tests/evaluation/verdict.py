"""Verdicts: per variant over its repeats, then the one exit code they add up to.

Why one evaluation: the exit code, the console lines, ``verdict.txt`` and the HTML reports
are all rendered from the same :class:`Evaluation`, so they cannot disagree. (They used to
be computed in three places, and a run could print ``REGRESSION`` and then
``VERDICT: PASS``.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from load_tests.evaluation.baseline import Baseline
from load_tests.evaluation.check import CHECK_HEADERS, Check
from load_tests.evaluation.checks import merge_checks, raw_checks
from load_tests.evaluation.codes import EXIT_ERRORS, EXIT_OK, EXIT_THRESHOLD, worst
from load_tests.evaluation.results import Problem, RunResult
from load_tests.evaluation.thresholds import ThresholdSet


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
        backlog = by.get("backlog growth")
        if backlog is not None and backlog.value is not None:  # worker fleets (S8)
            state = "GROWING" if backlog.failed else "steady"
            parts.insert(0, f"backlog {state} {backlog.value:+.2f} items/s")
        drain = by.get("burst drain time")
        if drain is not None and drain.value is not None:  # S8d
            drained = "never" if drain.value == float("inf") else f"in {drain.value:.1f} s"
            parts.insert(1 if backlog is not None else 0, f"burst drained {drained}")
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
        checks = merge_checks([raw_checks(r, t) for r in ran], base, margin, min_abs_ms)
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


def evaluate_files(
    runs: dict[str, list[RunResult]],
    thresholds: Path | None = None,
    baseline: Path | None = None,
    margin: float = 0.15,
    overrides: dict[str, Any] | None = None,
) -> Evaluation:
    """:func:`evaluate` with the limits and the baseline read from their files.

    ``overrides`` (command-line limits) win over the thresholds file's defaults.
    """
    return evaluate(
        runs,
        ThresholdSet.load(thresholds, overrides),
        Baseline.load(baseline) if baseline else None,
        margin,
    )
