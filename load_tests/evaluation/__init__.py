"""One evaluation of load-test results: thresholds, baseline and noise, as typed data.

Inputs are :class:`RunResult` values (``results``), from a pushpop-bench ``summary.json``
or Locust's own ``--csv`` output. Each metric becomes a :class:`Check` (``checks``) next
to its limit (``thresholds``) and its :class:`Baseline` (``baseline``); :func:`evaluate`
(``verdict``) turns them into one :class:`Evaluation` that every output renders.

Exit codes (``codes``; the worst wins): 0 pass or skip, 1 errors, 3 threshold or
regression, 4 ledger (an acknowledged item lost or delivered twice), 5 aborted (a
threshold marked abort failed during the run: ``load_tests/abort.py``).

Import from the submodules: the package re-exports nothing, so no submodule's import
runs back through it (tests/unit/test_layout.py counts that as a cycle).
"""
