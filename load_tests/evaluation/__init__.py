"""One evaluation of load-test results: thresholds, baseline and noise, as typed data.

Inputs are :class:`RunResult` values (``results``), from a pushpop-bench ``summary.json``
or Locust's own ``--csv`` output. Each metric becomes a :class:`Check` (``checks``) next
to its limit (``thresholds``) and its :class:`Baseline` (``baseline``); :func:`evaluate`
(``verdict``) turns them into one :class:`Evaluation` that every output renders.

Exit codes (``codes``; the worst wins): 0 pass or skip, 1 errors, 3 threshold or
regression, 4 ledger (an acknowledged item lost or delivered twice), 5 aborted (a
threshold marked abort failed during the run: ``load_tests/abort.py``).
"""

from load_tests.evaluation.baseline import Baseline
from load_tests.evaluation.check import CHECK_HEADERS, Check
from load_tests.evaluation.codes import (
    EXIT_ABORT,
    EXIT_ERRORS,
    EXIT_LEDGER,
    EXIT_OK,
    EXIT_THRESHOLD,
    worst,
)
from load_tests.evaluation.results import EndpointStats, Problem, RunResult, load_results
from load_tests.evaluation.thresholds import Thresholds, ThresholdSet
from load_tests.evaluation.verdict import (
    Evaluation,
    VariantEvaluation,
    evaluate,
    evaluate_files,
)

__all__ = [
    "CHECK_HEADERS", "EXIT_ABORT", "EXIT_ERRORS", "EXIT_LEDGER", "EXIT_OK", "EXIT_THRESHOLD",
    "Baseline", "Check", "EndpointStats", "Evaluation", "Problem", "RunResult", "ThresholdSet",
    "Thresholds", "VariantEvaluation", "evaluate", "evaluate_files", "load_results", "worst",
]  # fmt: skip
