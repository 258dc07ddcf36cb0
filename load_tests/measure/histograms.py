"""Microsecond HDR histograms: one range and precision for every latency measured here.

Locust and most clients round to whole milliseconds; the service answers in about one.
"""

from __future__ import annotations

from collections.abc import Iterable

from hdrh.histogram import HdrHistogram

LOWEST_US = 1
HIGHEST_US = 3_600_000_000  # one hour: longer latencies or queue times are clamped
SIGNIFICANT_FIGURES = 3
PERCENTILES = (50.0, 90.0, 95.0, 99.0, 99.9)


def new_histogram() -> HdrHistogram:
    return HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_FIGURES)


def record_us(hist: HdrHistogram, value_us: float) -> None:
    """Record, clamping into the trackable range instead of silently dropping."""
    hist.record_value(int(min(HIGHEST_US, max(LOWEST_US, round(value_us)))))


def merged(hists: Iterable[HdrHistogram]) -> HdrHistogram:
    """One histogram holding every value of ``hists``."""
    out = new_histogram()
    for h in hists:
        out.add(h)
    return out


def percentiles_ms(hist: HdrHistogram, pcts: Iterable[float] = PERCENTILES) -> dict[str, float]:
    """``{"p50": ms, ..., "max": ms, "mean": ms, "count": n}`` from a microsecond histogram."""
    out: dict[str, float] = {"count": float(hist.get_total_count())}
    if not hist.get_total_count():
        return out
    for p in pcts:
        out[f"p{p:g}"] = hist.get_value_at_percentile(p) / 1000.0
    out["max"] = hist.get_max_value() / 1000.0
    out["min"] = hist.get_min_value() / 1000.0
    out["mean"] = hist.get_mean_value() / 1000.0
    return out
