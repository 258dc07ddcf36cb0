"""Read everything a run left in its folder into one :class:`RunData`.

Missing optional files become empty values, so a plain run (no faults, no resource
monitor, no ledger) analyses the same way as a full pushpop-bench one.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from load_tests.schedules import Schedule, schedule_from_spec
from load_tests.utils.metrics import BucketSeries, load_bucket_series


def read_json(path: Path) -> Any:
    return json.loads(path.read_text()) if path.exists() else None


def read_csv(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def read_float(v: Any, default: float = 0.0) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return default


@dataclass
class RunData:
    dir: Path
    meta: dict[str, Any]
    started: dict[str, Any]
    series: BucketSeries
    locust_stats: list[dict[str, str]]
    failures: list[dict[str, str]]
    depth: list[dict[str, str]]
    resources: list[dict[str, str]]
    postgres: list[dict[str, str]]
    ledger: dict[str, Any] | None
    faults: dict[str, Any] | None
    schedule: Schedule | None
    started_at: float
    window: tuple[float, float] = field(default=(0.0, 0.0))

    @property
    def duration(self) -> float:
        return max(1e-9, self.window[1] - self.window[0])


def load_run(run_dir: Path) -> RunData:
    """Read everything a run left; missing optional files become empty."""
    run_dir = Path(run_dir)
    meta = read_json(run_dir / "run.json") or {}
    started = read_json(run_dir / "started.json") or {}
    series = load_bucket_series(run_dir)
    schedule = schedule_from_spec(started["schedule"]) if started.get("schedule") else None
    started_at = read_float(started.get("started_at"), series.starts[0] if series.starts else 0.0)
    if schedule is not None:
        end = started_at + schedule.duration
    elif series.starts:
        end = series.starts[-1] + series.width
    else:
        end = started_at + 1.0
    data = RunData(
        dir=run_dir,
        meta=meta,
        started=started,
        series=series,
        locust_stats=read_csv(run_dir / "locust_stats.csv"),
        failures=read_csv(run_dir / "locust_failures.csv"),
        depth=read_csv(run_dir / "depth.csv"),
        resources=read_csv(run_dir / "resources.csv"),
        postgres=read_csv(run_dir / "postgres.csv"),
        ledger=read_json(run_dir / "ledger.json"),
        faults=read_json(run_dir / "faults.json"),
        schedule=schedule,
        started_at=started_at,
    )
    data.window = (started_at, end)
    return data
