"""Turn one run's files into ``summary.json``: percentiles, rates, errors, knee, recovery.

Inputs (all in the run directory; only ``histograms.hlog`` is strictly needed):
Locust's ``locust_stats.csv`` / ``locust_failures.csv`` / ``locust_stats.json``, our
``histograms.hlog`` + ``counters.csv`` (exact, microseconds, merged across workers),
``depth.csv``, ``resources.csv`` / ``postgres.csv`` (resource monitor), ``ledger.json``,
``faults.json``, ``started.json`` (schedule, start time) and ``run.json`` (what ran).

Why percentiles come from our histograms and not Locust's: Locust stores response times
rounded to whole milliseconds below 100 ms, and this service answers in a few. Locust's
numbers are still read, for request/failure counts and the errors-by-kind table.

This is ``pushpop-bench analyze`` under the load plan's name; the analysis itself is
:mod:`load_tests.analysis`.

    python load_tests/scripts/analyze_results.py r/run_stats.csv    # a plain Locust run
    python -m load_tests.scripts.analyze_results RUN_DIR [--report]  # pushpop-bench
"""

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file, as the load plan does
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from load_tests.cli import analyze, single_command_app

app = single_command_app(analyze, __doc__)

if __name__ == "__main__":
    app()
