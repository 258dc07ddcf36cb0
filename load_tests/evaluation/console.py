"""The text form of a check: per-endpoint numbers, then every verdict, then the exit code.

What ``pushpop-bench check``, ``analyze`` and the load plan's two scripts print, from any
results :func:`load_results` reads.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from load_tests.evaluation.codes import EXIT_ERRORS
from load_tests.evaluation.results import RunResult, load_results
from load_tests.evaluation.verdict import evaluate_files

Echo = Callable[[str], Any]


def endpoint_lines(runs: dict[str, list[RunResult]]) -> list[str]:
    """p50/p95/p99 and error rate per endpoint of every run: what a reader looks at first."""

    def ms(v: float | None) -> str:
        return "-" if v is None else f"{v:.3f}"

    lines = [f"{'run':<28} {'endpoint':<16} {'requests':>9} {'errors':>7} "
             f"{'p50 ms':>9} {'p95 ms':>9} {'p99 ms':>9}"]  # fmt: skip
    for variant, results in sorted(runs.items()):
        for r in results:
            for ep in r.endpoints.values():
                rate = ep.failures / ep.requests if ep.requests else 0.0
                lines.append(
                    f"{variant:<28} {ep.name:<16} {ep.requests:>9} {rate:>7.2%} "
                    f"{ms(ep.p50_ms):>9} {ms(ep.p95_ms):>9} {ms(ep.p99_ms):>9}"
                )
    return lines


def check(
    paths: list[Path],
    echo: Echo,
    thresholds: Path | None = None,
    baseline: Path | None = None,
    margin: float = 0.15,
    overrides: dict[str, Any] | None = None,
) -> int:
    """Print the per-endpoint table and every verdict; return the exit code."""
    try:
        runs = load_results(paths)
    except (OSError, ValueError) as exc:
        echo(f"cannot read the results: {exc}")
        return EXIT_ERRORS
    if not runs:
        echo(f"no results (summary.json or Locust *_stats.csv) under {[str(p) for p in paths]}")
        return EXIT_ERRORS
    evaluation = evaluate_files(runs, thresholds, baseline, margin, overrides)
    for line in endpoint_lines(runs):
        echo(line)
    echo("")
    echo(evaluation.text().rstrip("\n"))
    return evaluation.code
