"""What one run measured: its files in, a typed :class:`~load_tests.summary.RunSummary` out.

``loading`` reads the folder, ``measures`` holds the pure calculations (knee, recovery,
Little's law), ``sections`` computes each part of the summary, ``summarize`` puts them
together and writes ``summary.json``.
"""

from load_tests.analysis.loading import RunData, load_run
from load_tests.analysis.measures import find_knee, littles_law, recovery_time
from load_tests.analysis.sections import all_latency_p99, depth_series
from load_tests.analysis.summarize import analyze, read_summary, summarize, write_summary
from load_tests.summary import StepResult

__all__ = [
    "RunData", "StepResult", "all_latency_p99", "analyze", "depth_series", "find_knee",
    "littles_law", "load_run", "read_summary", "recovery_time", "summarize", "write_summary",
]  # fmt: skip
