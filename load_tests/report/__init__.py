"""Self-contained HTML reports: one per variant run (``run_page``), one index per group or
``run-all`` (``index_page``); ``charts`` draws the plots and ``html`` holds the shared
pieces."""

from load_tests.report.index_page import write_index
from load_tests.report.run_page import write_run_report

__all__ = ["write_index", "write_run_report"]
