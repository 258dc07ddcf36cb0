"""The limits a run is held to: defaults from the load plan, per-variant overrides."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any


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
    # worker fleets (S8): the backlog may grow by at most this fraction of the arrival
    # rate, and only within the slope's noise band; a burst's backlog drained within
    # drain_s; push -> acknowledge p99
    backlog_growth: float | None = 0.05
    drain_s: float | None = None
    e2e_p99_ms: float | None = None
    # endpoints whose latency is waiting by design (long polls): reported, not limited
    latency_exempt: tuple[str, ...] | list[str] = ("pop+ack/long-poll",)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Thresholds:
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown threshold(s) {sorted(unknown)}; known: {sorted(names)}")
        return cls(**d)

    def merged(self, overrides: dict[str, Any]) -> Thresholds:
        return Thresholds.from_dict({**asdict(self), **overrides})


@dataclass
class ThresholdSet:
    """Defaults, the catalogue's per-variant overrides, then a file's per-variant ones."""

    default: Thresholds = field(default_factory=Thresholds)
    variants: dict[str, dict[str, Any]] = field(default_factory=dict)
    # thresholds that stop a run early once failing (load_tests/abort.py), and after
    # how many seconds of load they start to count
    abort: list[str] = field(default_factory=list)
    abort_grace_s: float | None = None

    @classmethod
    def load(cls, path: Path | None, overrides: dict[str, Any] | None = None) -> ThresholdSet:
        """``{"default": {...}, "variants": {"S3a": {...}}}``, or a flat ``{"p99_ms": 80}``.

        ``overrides`` (command-line flags) win over the file's defaults.
        """
        raw: dict[str, Any] = json.loads(path.read_text()) if path else {}
        abort = list(raw.pop("abort", []))
        grace = raw.pop("abort_grace_s", None)
        if raw and not {"default", "variants"} & set(raw):
            raw = {"default": raw}
        default = Thresholds().merged(raw.get("default", {})).merged(overrides or {})
        return cls(default, raw.get("variants", {}), abort, grace)

    def for_variant(self, variant_id: str) -> Thresholds:
        from load_tests.catalog import VARIANTS

        t = self.default
        v = VARIANTS.get(variant_id)
        if v is not None and v.thresholds:
            t = t.merged(v.thresholds)
        return t.merged(self.variants.get(variant_id, {}))
