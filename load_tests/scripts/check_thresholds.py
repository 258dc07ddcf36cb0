"""Judge runs against thresholds (and a baseline), with distinct exit codes for CI.

    python load_tests/scripts/check_thresholds.py r/run_stats.csv           # plain Locust
    python load_tests/scripts/check_thresholds.py results/20260101-S3a      # pushpop-bench
        [--p50 30 --p95 50 --p99 100 --max-error-rate 0.01] [--thresholds t.json]
        [--baseline baseline.json --margin 0.15]

Inputs: Locust's own ``--csv`` output (``PREFIX_stats.csv``, or its ``_stats_history``
sibling, or a folder of them) and pushpop-bench results or variant folders. The
defaults are the load plan's: p50 < 30 ms, p95 < 50 ms, p99 < 100 ms, errors < 1 %.
A thresholds file is ``{"default": {...}, "variants": {"S3a": {...}}}`` or a flat
``{"p99_ms": 80}``; flags win over the file.

Exit codes (the worst over all runs checked):

* 0 -- passed (or skipped: a scenario that cannot run here, e.g. S7e without Dapr)
* 1 -- errors happened: failed requests above the allowed rate, a setup or
  fault-injection error, a ledger that could not be verified, or nothing to check
* 2 -- usage error (bad arguments; typer's own code)
* 3 -- a threshold failed (latency, throughput, drops, recovery) or a metric regressed
  against the baseline beyond the margin and the noise band
* 4 -- the ledger failed: an acknowledged item was lost or delivered twice

Why "errors" and "thresholds" differ: a CI job that finds 503s has found a bug or an
outage; one that finds a p99 of 120 ms where 100 was promised has found a performance
regression. They go to different people.

The judging itself is :func:`load_tests.evaluation.evaluate`; this is its command line.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

if __package__ in (None, ""):  # run as a file, as the load plan does
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from load_tests.evaluation import (
    EXIT_ERRORS,
    EXIT_LEDGER,
    EXIT_OK,
    EXIT_THRESHOLD,
    Baseline,
    Evaluation,
    RunResult,
    Thresholds,
    ThresholdSet,
    evaluate,
    load_results,
    worst,
)

__all__ = [
    "EXIT_ERRORS", "EXIT_LEDGER", "EXIT_OK", "EXIT_THRESHOLD", "Thresholds", "check",
    "endpoint_lines", "judge", "threshold_flags", "worst",
]  # fmt: skip

Echo = Callable[[str], Any]


def threshold_flags(
    p50: float | None, p95: float | None, p99: float | None, max_error_rate: float | None
) -> dict[str, Any]:
    """Command-line limits as threshold overrides (only those given)."""
    given = {"p50_ms": p50, "p95_ms": p95, "p99_ms": p99, "error_rate": max_error_rate}
    return {k: v for k, v in given.items() if v is not None}


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


def judge(
    runs: dict[str, list[RunResult]],
    thresholds: ThresholdSet,
    baseline: Path | None = None,
    margin: float = 0.15,
) -> Evaluation:
    return evaluate(runs, thresholds, Baseline.load(baseline) if baseline else None, margin)


def check(
    paths: list[Path],
    thresholds: Path | None = None,
    baseline: Path | None = None,
    margin: float = 0.15,
    echo: Echo = typer.echo,
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
    evaluation = judge(runs, ThresholdSet.load(thresholds, overrides), baseline, margin)
    for line in endpoint_lines(runs):
        echo(line)
    echo("")
    echo(evaluation.text().rstrip("\n"))
    return evaluation.code


app = typer.Typer(add_completion=False, help=__doc__)

P50 = Annotated[float | None, typer.Option("--p50", help="p50 limit in ms (plan: 30)")]
P95 = Annotated[float | None, typer.Option("--p95", help="p95 limit in ms (plan: 50)")]
P99 = Annotated[float | None, typer.Option("--p99", help="p99 limit in ms (plan: 100)")]
MaxErrors = Annotated[
    float | None, typer.Option("--max-error-rate", help="failed/requests (plan: 0.01)")
]


@app.command()
def main(
    runs: Annotated[list[Path], typer.Argument(help="*_stats.csv files or results folders")],
    thresholds: Annotated[Path | None, typer.Option(help="JSON thresholds file")] = None,
    baseline: Annotated[
        Path | None, typer.Option(help="baseline.json to compare with", exists=True, dir_okay=False)
    ] = None,
    margin: Annotated[float, typer.Option(help="allowed relative regression")] = 0.15,
    p50: P50 = None,
    p95: P95 = None,
    p99: P99 = None,
    max_error_rate: MaxErrors = None,
) -> None:
    """Print p50/p95/p99/errors per endpoint and one verdict per run; exit with the worst."""
    flags = threshold_flags(p50, p95, p99, max_error_rate)
    raise typer.Exit(check(runs, thresholds, baseline, margin, overrides=flags))


if __name__ == "__main__":
    app()
