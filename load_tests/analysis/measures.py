"""The pure measures: the knee of a step ramp, recovery after a burst, Little's law.

Separate from the file reading so they can be tested on synthetic numbers.
"""

from __future__ import annotations

from typing import Any

from load_tests.summary import Knee, StepResult

RECOVERY_FACTOR = 2.0  # "recovered" = p99 back under max(2 x baseline, baseline + 5 ms)
RECOVERY_SLACK_MS = 5.0
RECOVERY_HOLD = 2  # ... for this many consecutive buckets


def recovery_line(baseline_ms: float) -> float:
    """The p99 a run must come back under to count as recovered."""
    return max(baseline_ms * RECOVERY_FACTOR, baseline_ms + RECOVERY_SLACK_MS)


def find_knee(
    steps: list[StepResult],
    *,
    min_ratio: float = 0.95,
    max_error_rate: float = 0.01,
    p99_limit_ms: float | None = 100.0,
) -> Knee:
    """The highest step rate the service sustained, before the first one it did not.

    Sustained = completions kept up with arrivals (``achieved >= min_ratio * rate``),
    errors under ``max_error_rate``, nothing dropped by the generator and p99 under
    ``p99_limit_ms``. Steps after the first failure do not count even if they pass
    (a lucky plateau after saturation is not capacity).
    """
    knee: float | None = None
    reason = "every step was sustained: the limit is above the top of the ramp"
    for s in steps:
        problems = []
        if s.achieved < min_ratio * s.rate:
            problems.append(f"throughput {s.achieved:.1f}/s < {min_ratio:.0%} of {s.rate:g}/s")
        if s.error_rate > max_error_rate:
            problems.append(f"errors {s.error_rate:.1%}")
        if s.dropped > 0:
            problems.append(f"{s.dropped:g} sends dropped")
        if p99_limit_ms is not None and s.p99_ms is not None and s.p99_ms > p99_limit_ms:
            problems.append(f"p99 {s.p99_ms:.1f} ms > {p99_limit_ms:g} ms")
        if problems:
            reason = f"at {s.rate:g} req/s: " + "; ".join(problems)
            break
        knee = s.rate
    limited = knee is None or knee != (steps[-1].rate if steps else None)
    return Knee(knee, limited, reason, list(steps))


def recovery_time(
    starts: list[float],
    p99_ms: list[float | None],
    burst_end: float,
    baseline_ms: float,
    *,
    width: float,
    until: float | None = None,
    factor: float = RECOVERY_FACTOR,
    slack_ms: float = RECOVERY_SLACK_MS,
    hold: int = RECOVERY_HOLD,
) -> float | None:
    """Seconds from ``burst_end`` until p99 stays under the recovery line for ``hold`` buckets.

    0.0 when latency never left the line; ``None`` when it had not come back by ``until``.
    Empty buckets count as recovered (nothing was waiting).
    """
    line = max(baseline_ms * factor, baseline_ms + slack_ms)
    run = 0
    first_ok: float | None = None
    for s, v in zip(starts, p99_ms, strict=True):
        if s + width <= burst_end:
            continue
        if until is not None and s >= until:
            break
        if v is None or v <= line:
            if run == 0:
                first_ok = s
            run += 1
            if run >= hold and first_ok is not None:
                return round(max(0.0, first_ok - burst_end), 3)
        else:
            run = 0
            first_ok = None
    return None


def littles_law(mean_depth: float, arrival_per_s: float, mean_wait_s: float) -> dict[str, Any]:
    """L = lambda W: the sampled depth against what arrivals and queue time imply."""
    implied = arrival_per_s * mean_wait_s
    ratio = mean_depth / implied if implied > 0 else None
    return {
        "L_mean_depth": round(mean_depth, 3),
        "lambda_items_per_s": round(arrival_per_s, 3),
        "W_mean_time_in_queue_s": round(mean_wait_s, 6),
        "lambda_W": round(implied, 3),
        "ratio": round(ratio, 3) if ratio is not None else None,
    }
