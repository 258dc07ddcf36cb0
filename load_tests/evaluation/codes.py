"""Exit codes for CI, and which one wins when several runs fail differently.

Why "errors" and "thresholds" differ: a CI job that finds 503s has found a bug or an
outage; one that finds a p99 of 120 ms where 100 was promised has found a performance
regression. They go to different people.
"""

from __future__ import annotations

from collections.abc import Iterable

EXIT_OK = 0
EXIT_ERRORS = 1
EXIT_THRESHOLD = 3
EXIT_LEDGER = 4
EXIT_ABORT = 5  # a threshold marked abort failed during the run, which was stopped early
EXIT_WORSE = 6  # `pushpop-bench ab`: head is worse than base beyond the noise band
_SEVERITY = {
    EXIT_OK: 0, EXIT_WORSE: 1, EXIT_THRESHOLD: 1, EXIT_ERRORS: 2, EXIT_LEDGER: 3, EXIT_ABORT: 4
}  # fmt: skip


def worst(codes: Iterable[int]) -> int:
    return max(codes, key=lambda c: _SEVERITY.get(c, 0), default=EXIT_OK)
