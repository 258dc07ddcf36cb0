"""What one run measured: its files in, a typed :class:`~load_tests.summary.RunSummary` out.

``loading`` reads the folder, ``measures`` holds the pure calculations (knee, recovery,
Little's law), ``sections`` computes each part of the summary, ``summarize`` puts them
together and writes ``summary.json``.

Import from the submodules: the package re-exports nothing, so no submodule's import
runs back through it (tests/unit/test_layout.py counts that as a cycle).
"""
