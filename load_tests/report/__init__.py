"""Self-contained HTML reports: one per variant run (``run_page``), one index per group or
``run-all`` (``index_page``); ``charts`` draws the plots and ``html`` holds the shared
pieces.

Import from the submodules: the package re-exports nothing, so no submodule's import
runs back through it (tests/unit/test_layout.py counts that as a cycle).
"""
