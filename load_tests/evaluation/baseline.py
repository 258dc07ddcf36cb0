"""Saved per-variant metric values of earlier runs, to judge a new run against."""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from load_tests.evaluation.checks import raw_checks
from load_tests.evaluation.results import RunResult
from load_tests.evaluation.thresholds import Thresholds


@dataclass
class Baseline:
    """Per variant and metric, the values of the runs a baseline was made of."""

    variants: dict[str, dict[str, list[float]]]
    created: str = ""
    source: str = ""

    @classmethod
    def from_runs(cls, runs: dict[str, list[RunResult]]) -> Baseline:
        variants: dict[str, dict[str, list[float]]] = {}
        for vid, results in runs.items():
            per: dict[str, list[float]] = {}
            for r in results:
                for c in raw_checks(r, Thresholds()):
                    if c.compared and c.value is not None:
                        per.setdefault(c.metric, []).append(c.value)
            variants[vid] = per
        return cls(variants, time.strftime("%Y-%m-%d %H:%M:%S"))

    def save(self, path: Path) -> dict[str, Any]:
        data = {
            "created": self.created,
            "variants": {
                v: {
                    "runs": max((len(x) for x in m.values()), default=0),
                    "metrics": {
                        k: {"median": statistics.median(x), "values": x} for k, x in m.items()
                    },
                }
                for v, m in self.variants.items()
            },
        }
        path.write_text(json.dumps(data, indent=1))
        return data

    @classmethod
    def load(cls, path: Path) -> Baseline:
        data = json.loads(path.read_text())
        variants = {
            v: {k: list(m.get("values") or [m["median"]]) for k, m in d["metrics"].items()}
            for v, d in data.get("variants", {}).items()
        }
        return cls(variants, data.get("created", ""), str(path))
