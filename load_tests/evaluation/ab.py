"""The verdict of an A/B run: is head better, the same or worse than base, per metric?

``pushpop-bench ab`` loads the two builds in interleaved slices (one base and one head
slice per round, the order flipping every round), so each round gives one ratio head /
base taken over the same minutes of the host. The answer is the median of those ratios;
its noise band is their spread (min-max). A verdict other than "same" needs every round
to agree beyond the metric's margin: the whole band lies past 1 - margin (or 1 + margin).
So one slice hit by a neighbour's burst cannot make a verdict, and an A/A run, whose
ratios scatter around 1, reads "same".
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

BETTER, SAME, WORSE = "better", "same", "worse"


@dataclass(frozen=True)
class Metric:
    name: str
    unit: str
    higher_is_better: bool
    margin: float  # relative change that counts, on top of the noise band


# Tails move more from slice to slice than rates do: their margins are wider.
METRICS = (
    Metric("requests/s", "/s", True, 0.05),
    Metric("p50", "ms", False, 0.10),
    Metric("p99", "ms", False, 0.20),
    Metric("server CPU/op", "µs", False, 0.05),
)


@dataclass(frozen=True)
class Comparison:
    metric: Metric
    base: float  # median over base's slices
    head: float
    ratio: float  # median of the per-round ratios head / base
    low: float  # noise band: the smallest and largest per-round ratio
    high: float
    verdict: str


def compare(metric: Metric, base: Sequence[float], head: Sequence[float]) -> Comparison:
    """Round ``i``'s base slice ``base[i]`` against its head slice ``head[i]``."""
    if len(base) != len(head) or not base:
        raise ValueError(f"need paired slices, got {len(base)} base and {len(head)} head")
    ratios = [h / b if b else float("inf") if h else 1.0 for b, h in zip(base, head, strict=True)]
    low, high = min(ratios), max(ratios)
    up, down = low > 1 + metric.margin, high < 1 - metric.margin  # every round agrees
    if metric.higher_is_better:
        verdict = BETTER if up else WORSE if down else SAME
    else:
        verdict = WORSE if up else BETTER if down else SAME
    return Comparison(
        metric, statistics.median(base), statistics.median(head), statistics.median(ratios),
        low, high, verdict,
    )  # fmt: skip


def overall(comparisons: Sequence[Comparison]) -> str:
    """Worse if any metric is worse; better if some are better and none worse."""
    verdicts = {c.verdict for c in comparisons}
    return WORSE if WORSE in verdicts else BETTER if BETTER in verdicts else SAME
