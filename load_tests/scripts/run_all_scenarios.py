"""Run several variants against one server and write an index with every verdict.

Used by ``pushpop-bench run S4`` (a group), ``run S3a --repeat 3`` (medians for a
baseline) and ``run-all``. One server and one PostgreSQL serve every variant; each
variant uses its own queue ids (run label + variant id), so they never collide.

The results folder::

    results/<stamp>-<what>/
        index.html  results.json  verdict.txt
        S1a/  report.html summary.json verdict.txt locust_*.csv histograms.hlog ...
        S4a/ ...
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from load_tests.catalog import GROUPS, Variant
from load_tests.harness import Harness
from load_tests.scripts.check_thresholds import EXIT_OK, worst
from load_tests.scripts.run_scenario import Outcome, RunSettings, machine, run_variant


def run_many(
    variants: list[Variant],
    harness: Harness,
    root: Path,
    settings: RunSettings,
    *,
    title: str,
    repeat: int = 1,
    console: Console | None = None,
) -> tuple[int, list[Outcome]]:
    """Run ``variants`` (each ``repeat`` times); returns the worst exit code and outcomes."""
    console = console or Console()
    root.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    outcomes: list[Outcome] = []
    for v in variants:
        for i in range(repeat):
            out = root / v.id if repeat == 1 else root / v.id / f"rep{i + 1}"
            outcomes.append(run_variant(v, harness, out, settings, console))
    code = worst([o.verdict.code for o in outcomes])
    elapsed = time.time() - t0
    write_results(root, title, outcomes, harness, settings, code, elapsed)
    return code, outcomes


def verdict_summary(outcomes: list[Outcome], code: int) -> dict[str, Any]:
    counts: dict[str, int] = {}
    for o in outcomes:
        counts[o.verdict.status] = counts.get(o.verdict.status, 0) + 1
    status = "PASS" if code == EXIT_OK else "FAIL"
    failed = [o.verdict.variant for o in outcomes if o.verdict.status == "FAIL"]
    tally = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
    line = f"VERDICT: {status} ({tally}; exit code {code})"
    if failed:
        line += f" - failed: {', '.join(failed)}"
    reasons = [f"{o.verdict.variant}: {r}" for o in outcomes for r in o.verdict.reasons[:2]]
    return {"status": status, "code": code, "line": line, "reasons": reasons}


def write_results(
    root: Path,
    title: str,
    outcomes: list[Outcome],
    harness: Harness,
    settings: RunSettings,
    code: int,
    elapsed: float,
) -> None:
    from load_tests.report import write_index

    verdict = verdict_summary(outcomes, code)
    rows = [o.row(root) for o in outcomes]
    (root / "results.json").write_text(
        json.dumps(
            {
                "title": title,
                "verdict": verdict,
                "elapsed_s": round(elapsed, 1),
                "harness": harness.describe(),
                "settings": settings.to_dict(),
                "machine": machine(),
                "variants": [
                    {k: v for k, v in r.items() if k != "summary"}
                    | {"dir": r["rel"], "headline": r["verdict"]["headline"]}
                    for r in rows
                ],
            },
            indent=1,
        )
    )
    lines = [o.verdict.line for o in outcomes] + ["", verdict["line"]]
    (root / "verdict.txt").write_text("\n".join(lines) + "\n")
    facts = [
        ["target", f"{harness.base_url} ({harness.store}, {harness.runtime} runtime)"],
        ["machine", machine()],
        ["variants", len(outcomes)],
        ["wall time", f"{elapsed:.0f} s"],
        [
            "settings",
            f"duration {settings.duration or 'default'} s, time scale {settings.time_scale:g}, "
            f"{settings.model} model, bucket {settings.bucket:g} s, workers {settings.workers}",
        ],
    ]
    write_index(root, title, rows, GROUPS, verdict, facts)


def main() -> None:
    """``python -m load_tests.scripts.run_all_scenarios ...`` is ``pushpop-bench run-all ...``."""
    import sys

    from load_tests.cli import app

    app(["run-all", *sys.argv[1:]])


if __name__ == "__main__":
    main()
