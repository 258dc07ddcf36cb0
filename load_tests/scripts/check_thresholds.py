"""Judge runs: thresholds and baseline regressions, with distinct exit codes for CI.

Exit codes (the worst over all runs checked):

* 0 -- passed (or skipped: a scenario that cannot run here, e.g. S7e without Dapr)
* 1 -- errors happened: unexpected failed requests above the allowed rate, a setup or
  fault-injection error, or a ledger that could not be verified
* 2 -- usage error (bad arguments; typer's own code)
* 3 -- a threshold failed: latency, throughput, drops, recovery, or a regression
  against the baseline
* 4 -- the ledger failed: an acknowledged item was lost or delivered twice

Why "errors" and "thresholds" differ: a CI job that finds 503s has found a bug or an
outage; one that finds a p99 of 120 ms where 100 was promised has found a performance
regression. They go to different people.

Baselines: ``save_baseline`` stores, per variant and metric, the *median* over several
runs; ``compare_to_baseline`` takes the median of the current runs and flags a metric
that is worse by more than ``margin`` (relative) *and* ``min_abs_ms`` (absolute, so
that 3.0 -> 3.4 ms noise is not a "13% regression").

    python -m load_tests.scripts.check_thresholds RUN_DIR... [--thresholds t.json]
        [--baseline baseline.json --margin 0.15]
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Annotated, Any

import typer

EXIT_OK = 0
EXIT_ERRORS = 1
EXIT_THRESHOLD = 3
EXIT_LEDGER = 4
_SEVERITY = {EXIT_OK: 0, EXIT_THRESHOLD: 1, EXIT_ERRORS: 2, EXIT_LEDGER: 3}

# metrics compared with a baseline: name -> True when lower is better
BASELINE_METRICS = {"p50_ms": True, "p99_ms": True, "requests_per_s": False}


def worst(codes: list[int]) -> int:
    return max(codes, key=lambda c: _SEVERITY.get(c, 0), default=EXIT_OK)


@dataclass
class Thresholds:
    """Limits for one variant; ``None`` disables a check. Defaults from the load plan."""

    p50_ms: float | None = 30.0
    p95_ms: float | None = 50.0
    p99_ms: float | None = 100.0
    max_ms: float | None = None
    error_rate: float = 0.01  # unexpected failed requests / requests
    dropped_ratio: float | None = 0.01  # arrivals the generator could not send
    min_throughput_ratio: float | None = 0.9  # completions in the window / arrivals sent
    recovery_s: float | None = None  # bursts and faults

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Thresholds:
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown threshold(s) {sorted(unknown)}; known: {sorted(names)}")
        return cls(**d)

    def merged(self, overrides: dict[str, Any]) -> Thresholds:
        return Thresholds.from_dict({**asdict(self), **overrides})


def load_thresholds(path: Path | None) -> tuple[Thresholds, dict[str, dict[str, Any]]]:
    """A JSON file: ``{"default": {...}, "variants": {"S3a": {...}}}`` (both optional)."""
    if path is None:
        return Thresholds(), {}
    raw = json.loads(path.read_text())
    return Thresholds().merged(raw.get("default", {})), raw.get("variants", {})


def thresholds_for(
    variant_id: str, base: Thresholds, file_overrides: dict[str, dict[str, Any]]
) -> Thresholds:
    """Defaults, then the catalogue's per-variant overrides, then the file's."""
    from load_tests.catalog import VARIANTS

    t = base
    v = VARIANTS.get(variant_id)
    if v is not None and v.thresholds:
        t = t.merged(v.thresholds)
    return t.merged(file_overrides.get(variant_id, {}))


@dataclass
class Verdict:
    variant: str
    status: str  # PASS | FAIL | SKIP
    code: int
    reasons: list[str] = field(default_factory=list)
    headline: str = ""

    @property
    def line(self) -> str:
        tail = f" - {self.headline}" if self.headline else ""
        return f"VERDICT {self.variant}: {self.status}{tail}"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "line": self.line}


def headline(summary: dict[str, Any]) -> str:
    parts = []
    for name, ep in summary.get("endpoints", {}).items():
        p99 = ep["latency_ms"].get("p99")
        if p99 is not None and ep["requests"] >= 20:
            parts.append(f"{name} p99 {p99:.2f} ms")
    thr = summary.get("throughput", {})
    parts.append(f"{thr.get('requests_per_s', 0):g} req/s")
    parts.append(f"{summary.get('errors', {}).get('unexpected', 0)} unexpected errors")
    parts.append(f"ledger {summary.get('ledger', {}).get('status', '?')}")
    return ", ".join(parts[:6])


def evaluate(summary: dict[str, Any], t: Thresholds) -> Verdict:
    """Apply thresholds to one summary (``summary.json``)."""
    variant = summary.get("variant", "?")
    fault = summary.get("fault") or {}
    if fault.get("skipped"):
        return Verdict(variant, "SKIP", EXIT_OK, [fault["skipped"]], "not run")
    codes: list[int] = []
    reasons: list[str] = []

    def fail(code: int, why: str) -> None:
        codes.append(code)
        reasons.append(why)

    led = summary.get("ledger") or {}
    if led.get("status") == "FAIL":
        fail(EXIT_LEDGER, "ledger: " + "; ".join(led.get("problems", [])[:3]))
    elif led.get("status") != "ok":
        fail(EXIT_ERRORS, f"ledger {led.get('status')}: " + "; ".join(led.get("problems", [])[:3]))
    err = summary.get("errors", {})
    if err.get("unexpected_rate", 0) > t.error_rate:
        kinds = [k for k, v in err.get("by_kind", {}).items() if v.get("unexpected")]
        fail(
            EXIT_ERRORS,
            f"{err['unexpected']} unexpected failed requests "
            f"({err['unexpected_rate']:.2%} > {t.error_rate:.2%}): {', '.join(kinds[:4])}",
        )
    if fault.get("error"):
        fail(EXIT_ERRORS, f"fault injection failed: {fault['error']}")
    for name, ep in summary.get("endpoints", {}).items():
        lat = ep.get("latency_ms", {})
        for key, limit in (
            ("p50", t.p50_ms),
            ("p95", t.p95_ms),
            ("p99", t.p99_ms),
            ("max", t.max_ms),
        ):
            value = lat.get(key)
            if limit is not None and value is not None and value > limit:
                fail(EXIT_THRESHOLD, f"{name} {key} {value:.2f} ms > {limit:g} ms")
    thr = summary.get("throughput", {})
    if t.dropped_ratio is not None and thr.get("dropped_ratio", 0) > t.dropped_ratio:
        fail(EXIT_THRESHOLD, f"{thr['dropped']} arrivals dropped ({thr['dropped_ratio']:.1%})")
    ratio = thr.get("completion_ratio")
    if t.min_throughput_ratio is not None and ratio is not None and ratio < t.min_throughput_ratio:
        fail(
            EXIT_THRESHOLD,
            f"completed {ratio:.0%} of the arrivals within the load window "
            f"(< {t.min_throughput_ratio:.0%}): the service fell behind",
        )
    if t.recovery_s is not None:
        bursts = summary.get("bursts") or {}
        for b in bursts.get("bursts", []):
            if b["recovery_s"] is None:
                fail(EXIT_THRESHOLD, f"no recovery after the burst ending at {b['end_s']:g} s")
            elif b["recovery_s"] > t.recovery_s:
                fail(EXIT_THRESHOLD, f"recovery {b['recovery_s']:g} s > {t.recovery_s:g} s")
        rec = fault.get("recovery_s")
        if fault and not fault.get("error") and rec is not None and rec > t.recovery_s:
            fail(EXIT_THRESHOLD, f"service recovery {rec:g} s > {t.recovery_s:g} s")
    code = worst(codes)
    return Verdict(variant, "PASS" if code == EXIT_OK else "FAIL", code, reasons, headline(summary))


# --------------------------------------------------------------------------- baselines


def baseline_metrics(summary: dict[str, Any]) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, ep in summary.get("endpoints", {}).items():
        for key in ("p50", "p99"):
            v = ep.get("latency_ms", {}).get(key)
            if v is not None:
                out[f"{name}.{key}_ms"] = v
    out["requests_per_s"] = summary.get("throughput", {}).get("requests_per_s", 0.0)
    return out


def find_summaries(paths: list[Path]) -> dict[str, list[dict[str, Any]]]:
    """Summaries under the given variant or run directories, grouped by variant id."""
    found: dict[str, list[dict[str, Any]]] = {}
    for p in paths:
        candidates = [p / "summary.json"] if (p / "summary.json").exists() else []
        candidates += sorted(p.glob("*/summary.json")) + sorted(p.glob("*/*/summary.json"))
        for c in dict.fromkeys(candidates):
            s = json.loads(c.read_text())
            s["_dir"] = str(c.parent)
            found.setdefault(s.get("variant", c.parent.name), []).append(s)
    return found


def save_baseline(runs: dict[str, list[dict[str, Any]]], path: Path) -> dict[str, Any]:
    data: dict[str, Any] = {"created": time.strftime("%Y-%m-%d %H:%M:%S"), "variants": {}}
    for variant, summaries in runs.items():
        per: dict[str, list[float]] = {}
        for s in summaries:
            for k, v in baseline_metrics(s).items():
                per.setdefault(k, []).append(v)
        data["variants"][variant] = {
            "runs": len(summaries),
            "metrics": {k: {"median": statistics.median(v), "values": v} for k, v in per.items()},
        }
    path.write_text(json.dumps(data, indent=1))
    return data


def compare_to_baseline(
    runs: dict[str, list[dict[str, Any]]],
    baseline: dict[str, Any],
    margin: float = 0.15,
    min_abs_ms: float = 0.5,
) -> list[dict[str, Any]]:
    """Regressions: the current median worse than the baseline median beyond both margins."""
    out = []
    for variant, summaries in runs.items():
        base = baseline.get("variants", {}).get(variant)
        if not base:
            continue
        per: dict[str, list[float]] = {}
        for s in summaries:
            for k, v in baseline_metrics(s).items():
                per.setdefault(k, []).append(v)
        for metric, values in per.items():
            ref = base["metrics"].get(metric)
            if not ref:
                continue
            cur, old = statistics.median(values), ref["median"]
            lower_better = BASELINE_METRICS.get(metric.rsplit(".", 1)[-1], True)
            change = (cur - old) / old if old else 0.0
            worse = change if lower_better else -change
            abs_ok = (abs(cur - old) > min_abs_ms) if metric.endswith("_ms") else True
            if worse > margin and abs_ok:
                out.append(
                    {
                        "variant": variant,
                        "metric": metric,
                        "baseline_median": old,
                        "current_median": cur,
                        "change": round(change, 4),
                        "runs": len(values),
                    }
                )
    return out


app = typer.Typer(add_completion=False, help=__doc__)


@app.command()
def main(
    runs: Annotated[list[Path], typer.Argument(help="variant or run directories")],
    thresholds: Annotated[Path | None, typer.Option(help="JSON thresholds file")] = None,
    baseline: Annotated[Path | None, typer.Option(help="baseline.json to compare with")] = None,
    margin: Annotated[float, typer.Option(help="allowed relative regression")] = 0.15,
) -> None:
    """Print one verdict line per variant and exit with the worst code."""
    raise typer.Exit(check(runs, thresholds, baseline, margin))


def check(
    runs: list[Path],
    thresholds: Path | None = None,
    baseline: Path | None = None,
    margin: float = 0.15,
    echo: Any = typer.echo,
) -> int:
    base, overrides = load_thresholds(thresholds)
    found = find_summaries(runs)
    if not found:
        echo("no summary.json found under the given directories")
        return EXIT_ERRORS
    codes = []
    for variant, summaries in sorted(found.items()):
        for s in summaries:
            v = evaluate(s, thresholds_for(variant, base, overrides))
            codes.append(v.code)
            echo(v.line)
            for r in v.reasons:
                echo(f"    - {r}")
    if baseline is not None:
        regressions = compare_to_baseline(found, json.loads(baseline.read_text()), margin)
        for r in regressions:
            echo(
                f"REGRESSION {r['variant']} {r['metric']}: {r['baseline_median']:.3f} -> "
                f"{r['current_median']:.3f} ({r['change']:+.1%}, median of {r['runs']})"
            )
        if regressions:
            codes.append(EXIT_THRESHOLD)
    return worst(codes)


if __name__ == "__main__":
    app()
