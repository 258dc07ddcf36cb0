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

This is ``pushpop-bench check`` under the load plan's name; the judging itself is
:func:`load_tests.evaluation.verdict.evaluate`.
"""

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file, as the load plan does
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from load_tests.cli import check, single_command_app

app = single_command_app(check, __doc__)

if __name__ == "__main__":
    app()
