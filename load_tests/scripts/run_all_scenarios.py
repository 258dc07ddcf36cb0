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

from rich.console import Console

from load_tests.catalog import GROUPS, Variant
from load_tests.evaluation import Evaluation
from load_tests.harness import Harness
from load_tests.scripts.run_scenario import Outcome, RunSettings, judge, machine, run_variant


def run_many(
    variants: list[Variant],
    harness: Harness,
    root: Path,
    settings: RunSettings,
    *,
    title: str,
    repeat: int = 1,
    baseline: Path | None = None,
    margin: float = 0.15,
    console: Console | None = None,
) -> tuple[Evaluation, list[Outcome]]:
    """Run ``variants`` (each ``repeat`` times), then judge them all in one evaluation."""
    console = console or Console()
    root.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    outcomes: list[Outcome] = []
    for v in variants:
        for i in range(repeat):
            out = root / v.id if repeat == 1 else root / v.id / f"rep{i + 1}"
            outcomes.append(run_variant(v, harness, out, settings, console))
    evaluation = judge(outcomes, settings, baseline=baseline, margin=margin, console=console)
    write_results(root, title, outcomes, harness, settings, evaluation, time.time() - t0)
    return evaluation, outcomes


def write_results(
    root: Path,
    title: str,
    outcomes: list[Outcome],
    harness: Harness,
    settings: RunSettings,
    evaluation: Evaluation,
    elapsed: float,
) -> None:
    from load_tests.report import write_index

    rows = [o.row(root) for o in outcomes]
    (root / "results.json").write_text(
        json.dumps(
            {
                "title": title,
                "verdict": evaluation.to_dict(),
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
    (root / "verdict.txt").write_text(evaluation.text())
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
    if evaluation.baseline:
        facts.append(["baseline", f"{evaluation.baseline} (margin {evaluation.margin:.0%})"])
    write_index(root, title, rows, GROUPS, evaluation, facts)


def main() -> None:
    """``python -m load_tests.scripts.run_all_scenarios ...`` is ``pushpop-bench run-all ...``."""
    import sys

    from load_tests.cli import app

    app(["run-all", *sys.argv[1:]])


if __name__ == "__main__":
    main()
