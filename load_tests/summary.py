"""One run's ``summary.json`` as typed values: what the analysis writes and the rest reads.

Why typed: the evaluation, the reports and the command line read the same summary, and
with plain dicts a renamed key failed at run time in whichever reader got there first.
``to_json``/``from_json`` keep the file as it was; every field has a default, so partial
summaries (older runs, tests) read; sections owned elsewhere (ledger, fault, workers,
resources, ...) stay JSON objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, TypeVar

T = TypeVar("T")


def _known(cls: type[Any], data: dict[str, Any]) -> dict[str, Any]:
    """The keys of ``data`` that are fields of the dataclass ``cls``."""
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in data.items() if k in names}


def _plain(value: Any) -> Any:
    to_json = getattr(value, "to_json", None)
    if to_json is not None:
        return to_json()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


class _Json:
    """Field order is key order: ``to_json`` writes the fields as the file always had them."""

    def to_json(self) -> dict[str, Any]:
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}  # type: ignore[arg-type]


@dataclass(frozen=True)
class Percentiles:
    """``{"count": n, "p50": ms, ..., "p99.9": ms, "max": ms, "min": ms, "mean": ms}``.

    A mapping rather than fields: the percentiles listed are the metrics module's
    choice (``PERCENTILES``), and an empty histogram has only ``count``.
    """

    values: dict[str, float] = field(default_factory=dict)

    def get(self, key: str) -> float | None:
        return self.values.get(key)

    @property
    def mean(self) -> float | None:
        return self.values.get("mean")

    def to_json(self) -> dict[str, float]:
        return dict(self.values)

    @classmethod
    def from_json(cls, data: dict[str, float] | None) -> Percentiles:
        return cls(dict(data or {}))


@dataclass(frozen=True)
class EndpointSummary(_Json):
    """One endpoint (``push``, ``pop``, ``push:invalid-item``...)."""

    requests: int = 0
    failures: int = 0
    rps: float = 0.0
    latency_ms: Percentiles = field(default_factory=Percentiles)  # from the scheduled send
    service_ms: Percentiles = field(default_factory=Percentiles)  # from the actual send
    locust_median_ms: float | None = None
    locust_p99_ms: float | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EndpointSummary:
        d = _known(cls, data)
        for key in ("latency_ms", "service_ms"):
            d[key] = Percentiles.from_json(d.get(key))
        return cls(**d)


@dataclass(frozen=True)
class Throughput(_Json):
    """Rates, the open model's bookkeeping (scheduled, sent, late, dropped) and item counts."""

    duration_s: float = 0.0
    requests: int = 0
    requests_per_s: float | None = None
    target_rps: float | None = None
    expected_arrivals: int | None = None
    scheduled: int = 0
    sent: int = 0
    requests_per_arrival: float | None = None
    completion_ratio: float | None = None
    late: int = 0
    late_ratio: float = 0.0
    dropped: int = 0
    dropped_ratio: float | None = None
    in_flight_max: int = 0
    items_pushed: int = 0
    items_popped: int = 0
    items_pushed_per_s: float = 0.0
    items_popped_per_s: float = 0.0
    empty_pops: int = 0
    dry_pops: int = 0
    send_lag_ms: Percentiles = field(default_factory=Percentiles)

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> Throughput:
        d = _known(cls, data or {})
        d["send_lag_ms"] = Percentiles.from_json(d.get("send_lag_ms"))
        return cls(**d)


@dataclass(frozen=True)
class Errors(_Json):
    """Failed requests by kind, split by whether a fault explains them."""

    by_kind: dict[str, dict[str, int]] = field(default_factory=dict)  # total/expected/unexpected
    per_endpoint: list[dict[str, Any]] = field(default_factory=list)  # Locust's failures table
    expected: int = 0
    unexpected: int = 0
    unexpected_rate: float = 0.0
    fault_window: tuple[float, float] | list[float] | None = None

    @property
    def unexpected_kinds(self) -> tuple[str, ...]:
        return tuple(k for k, v in self.by_kind.items() if v.get("unexpected"))

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> Errors:
        return cls(**_known(cls, data or {}))


@dataclass(frozen=True)
class StepResult(_Json):
    """One plateau of a step ramp."""

    rate: float  # target arrivals/s
    achieved: float  # completed requests/s during the plateau, per arrival
    p99_ms: float | None
    error_rate: float
    dropped: float
    late_ratio: float


@dataclass(frozen=True)
class Knee(_Json):
    """The highest sustained step of a ramp, and why the next one was not."""

    knee_rps: float | None
    limited: bool
    reason: str
    steps: list[StepResult] = field(default_factory=list)

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> Knee | None:
        if not data:
            return None
        d = _known(cls, data)
        d["steps"] = [StepResult(**_known(StepResult, s)) for s in d.get("steps", [])]
        return cls(**d)


@dataclass(frozen=True)
class Burst(_Json):
    start_s: float
    end_s: float
    peak_p99_ms: float | None
    recovery_s: float | None  # None: not back under the line before the next burst
    recovered: bool
    observed_for_s: float


@dataclass(frozen=True)
class Bursts(_Json):
    """Per burst of a shaped schedule: its peak p99 and how long p99 took to come back."""

    baseline_p99_ms: float | None
    recovery_line_ms: float | None
    bursts: list[Burst] = field(default_factory=list)
    worst_recovery_s: float | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> Bursts | None:
        if not data:
            return None
        d = _known(cls, data)
        d["bursts"] = [Burst(**_known(Burst, b)) for b in d.get("bursts", [])]
        return cls(**d)


@dataclass(frozen=True)
class Depth(_Json):
    """The sampled total depth over the run's queues."""

    samples: int = 0
    start: float | None = None
    end: float | None = None
    mean: float | None = None
    max: float | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> Depth:
        return cls(**_known(cls, data or {}))


MISSING_LEDGER: dict[str, Any] = {"ok": False, "status": "missing", "problems": ["no ledger"]}


@dataclass
class RunSummary(_Json):
    """Everything :mod:`load_tests.analysis` concluded about one run."""

    variant: str = "?"
    title: str = ""
    run_id: str | None = None
    schedule: str = ""
    model: str | None = None
    started_at: float = 0.0
    window: list[float] = field(default_factory=list)
    bucket_s: float = 1.0
    queues: int = 0
    prepopulated: dict[str, dict[str, Any]] = field(default_factory=dict)
    endpoints: dict[str, EndpointSummary] = field(default_factory=dict)
    throughput: Throughput = field(default_factory=Throughput)
    errors: Errors = field(default_factory=Errors)
    time_in_queue_ms: Percentiles = field(default_factory=Percentiles)
    littles_law: dict[str, Any] = field(default_factory=dict)
    knee: Knee | None = None
    bursts: Bursts | None = None
    fault: dict[str, Any] | None = None
    ledger: dict[str, Any] = field(default_factory=dict)
    resources: dict[str, dict[str, Any]] = field(default_factory=dict)
    depth: Depth = field(default_factory=Depth)
    locust_total_requests: int = 0
    warnings: list[str] = field(default_factory=list)
    workers: dict[str, Any] | None = None  # S8 (load_tests.analysis.workers)

    # ------------------------------------------------------------------ readers
    def latency(self, endpoint: str | None, key: str) -> float | None:
        """A latency percentile of an endpoint, ``None`` when it did not run."""
        ep = self.endpoints.get(endpoint) if endpoint else None
        return ep.latency_ms.get(key) if ep else None

    @property
    def ledger_status(self) -> str:
        return str((self.ledger or {}).get("status", "missing"))

    @property
    def prepopulated_items(self) -> int:
        return sum(int(v["items_per_queue"]) for v in self.prepopulated.values())

    @property
    def endpoint_requests(self) -> int:
        return sum(ep.requests for ep in self.endpoints.values())

    # ------------------------------------------------------------------ json
    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunSummary:
        d = _known(cls, data)
        d["endpoints"] = {
            name: EndpointSummary.from_json(ep) for name, ep in d.get("endpoints", {}).items()
        }
        d["throughput"] = Throughput.from_json(d.get("throughput"))
        d["errors"] = Errors.from_json(d.get("errors"))
        d["time_in_queue_ms"] = Percentiles.from_json(d.get("time_in_queue_ms"))
        d["knee"] = Knee.from_json(d.get("knee"))
        d["bursts"] = Bursts.from_json(d.get("bursts"))
        d["depth"] = Depth.from_json(d.get("depth"))
        return cls(**d)
