"""One evaluation of load-test results: thresholds, baseline and noise, as typed data.

Inputs are ``RunResult`` values (``results``), from a pushpop-bench ``summary.json`` or
Locust's own ``--csv`` output; each metric becomes a ``Check`` next to its limit
(``thresholds``) and its baseline (``baseline``); ``verdict.evaluate`` turns them into the
one ``Evaluation`` every output renders; ``codes`` holds the exit codes.

Import from the submodules: the package re-exports nothing, so no submodule's import
runs back through it (tests/unit/test_layout.py counts that as a cycle).
"""
