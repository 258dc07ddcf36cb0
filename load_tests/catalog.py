"""The scenario catalogue: which user class, at which arrival rate, with which fault.

Why here and not on the user classes: a user class says *what one arrival does*
(push, pop, ...); the rate pattern is a shape; a variant pairs them. Keeping the pairing
in one Locust-free table lets the orchestrator, the analysis and ``run-all`` reason
about variants (durations, faults, thresholds) without importing Locust, which would
monkey-patch the orchestrating process with gevent.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from load_tests.schedules import Constant, Schedule, Sine, Spike, Square, Steps

ScheduleFactory = Callable[[float], Schedule]

FULL_DURATION = 60.0  # seconds per steady variant unless --duration says otherwise
QUICK_DURATION = 8.0
QUICK_TIME_SCALE = 0.1  # S6's five-minute shapes become 30 s


def ramp(start: float, end: float) -> ScheduleFactory:
    """A step ramp over the run's duration, with plateaus of at least two seconds."""

    def build(duration: float) -> Schedule:
        count = max(2, min(10, int(duration // 2)))
        return Steps(start=start, end=end, count=count, length_s=duration)

    return build


def steady(rate: float) -> ScheduleFactory:
    def build(duration: float) -> Schedule:
        return Constant(rate=rate, length_s=duration)

    return build


def fixed(schedule: Schedule) -> ScheduleFactory:
    """A shape with its own length (the bursts): ``--duration`` does not apply."""

    def build(duration: float) -> Schedule:
        return schedule

    return build


@dataclass(frozen=True)
class Variant:
    id: str
    title: str
    user: str  # "module:Class" under load_tests.scenarios
    schedule: ScheduleFactory
    intrinsic: bool = False  # the schedule has its own length; only the time scale shrinks it
    fault: str | None = None  # a key of load_tests.faults.FAULTS
    expected_errors: tuple[str, ...] = ()  # error kinds that are the point of the scenario
    thresholds: dict[str, Any] = field(default_factory=dict)  # overrides of the defaults
    extra: bool = False  # not part of run-all unless asked (slow)
    hidden: bool = False  # internal (the physical-limit runs)
    min_duration: float = 0.0  # steady variants that need time around a fault

    @property
    def group(self) -> str:
        return self.id[:2] if self.id[:1] == "S" else self.id.split("-")[0]

    def build_schedule(self, duration: float | None, time_scale: float) -> Schedule:
        length = duration if duration is not None else FULL_DURATION
        base = self.schedule(length if self.intrinsic else max(length, self.min_duration))
        return base.scaled(time_scale) if self.intrinsic else base


GROUPS: dict[str, str] = {
    "S1": "Push-only: the write path",
    "S2": "Pop-only on prepopulated queues: the read path",
    "S3": "Mixed push/pop: steady state",
    "S4": "Queue scaling: the same load over 1..100 actors",
    "S5": "Queue depth: pop latency against queue length",
    "S6": "Bursts: recovery after load spikes",
    "S7": "Failures: validation, outages, lock expiry",
    "S8": "Worker fleets: producers feeding long-polling workers, end to end",
}

# outages and bursts make whole-run latency percentiles meaningless (a spike at 10x the
# rate is most of the requests); they are judged by recovery, errors and the ledger
OUTAGE_THRESHOLDS: dict[str, Any] = {
    "p50_ms": None,
    "p95_ms": None,
    "p99_ms": None,
    "min_throughput_ratio": None,
    "dropped_ratio": None,
    "recovery_s": 30.0,
}
BURST_THRESHOLDS: dict[str, Any] = {
    "p50_ms": None,
    "p95_ms": None,
    "p99_ms": None,
    "min_throughput_ratio": 0.8,
    "recovery_s": 30.0,
}
DRY_OK: dict[str, Any] = {}  # popping a dry queue is still a valid request
# worker fleets are judged end to end: the backlog's slope (and, after a burst, the time
# to drain it) replaces "completed arrivals", which counts the workers' requests too
WORKER_THRESHOLDS: dict[str, Any] = {"min_throughput_ratio": None}


def burst(base: float, peak: float) -> ScheduleFactory:
    """``base`` for 30 % of the run, ``peak`` for 15 %, then ``base`` for the rest: the
    fleet has the tail to drain what the burst left."""

    def build(duration: float) -> Schedule:
        return Spike(base=base, spike=peak, base_s=duration * 0.3, spike_s=duration * 0.15,
                     tail_s=duration * 0.55)  # fmt: skip

    return build


VARIANTS: dict[str, Variant] = {
    v.id: v
    for v in [
        Variant(
            "S1a",
            "push, 1 queue, 1 priority, ramp 10->100 req/s",
            "s1_push_only:S1aSingleQueuePush",
            ramp(10, 100),
        ),
        Variant(
            "S1b", "push, 10 queues, 50 req/s total", "s1_push_only:S1bTenQueuePush", steady(50)
        ),
        Variant(
            "S1c",
            "push, 1 queue, 5 random priorities, 50 req/s",
            "s1_push_only:S1cFivePriorityPush",
            steady(50),
        ),
        Variant(
            "S2a",
            "pop depth 1 from 10K items (1 priority), ramp 10->100 req/s",
            "s2_pop_only:S2aPopDepth1",
            ramp(10, 100),
        ),
        Variant(
            "S2b",
            "pop depth 10 from 10K items over 3 priorities, 50 req/s",
            "s2_pop_only:S2bPopDepth10",
            steady(50),
        ),
        Variant(
            "S2c",
            "pop depth 100 from 10K items over 3 priorities, 20 req/s",
            "s2_pop_only:S2cPopDepth100",
            steady(20),
        ),
        Variant(
            "S3a",
            "mixed 50/50 (MixedWorkloadUser), 50 req/s",
            "s3_mixed:MixedWorkloadUser",
            steady(50),
        ),
        Variant(
            "S3b",
            "producer-heavy 80/20 (ProducerHeavyUser), 100 req/s",
            "s3_mixed:ProducerHeavyUser",
            steady(100),
        ),
        Variant(
            "S3c",
            "consumer-heavy 20/80 (ConsumerHeavyUser), 100 req/s",
            "s3_mixed:ConsumerHeavyUser",
            steady(100),
        ),
        Variant(
            "S3d",
            "mixed, priorities 0-4 (MultiPriorityMixedUser), 50 req/s",
            "s3_mixed:MultiPriorityMixedUser",
            steady(50),
        ),
        Variant(
            "S3e",
            "mixed, 1-10 KB items (BalancedLargeItemsUser), 50 req/s",
            "s3_mixed:BalancedLargeItemsUser",
            steady(50),
        ),
        Variant(
            "S4a",
            "balanced push/pop over 1 queue id, 200 req/s",
            "s4_concurrent:S4aOneQueue",
            steady(200),
        ),
        Variant(
            "S4b",
            "balanced push/pop over 10 queue ids, 200 req/s",
            "s4_concurrent:S4bTenQueues",
            steady(200),
        ),
        Variant(
            "S4c",
            "balanced push/pop over 50 queue ids, 200 req/s",
            "s4_concurrent:S4cFiftyQueues",
            steady(200),
        ),
        Variant(
            "S4d",
            "balanced push/pop over 100 queue ids, 200 req/s",
            "s4_concurrent:S4dHundredQueues",
            steady(200),
        ),
        Variant(
            "S4e",
            "balanced push/pop over 1,000 queue ids, 200 req/s (actor activation churn)",
            "s4_concurrent:S4eThousandQueues",
            steady(200),
            extra=True,
        ),
        Variant(
            "S4f",
            "balanced push/pop over 10,000 queue ids, 200 req/s (actor activation churn)",
            "s4_concurrent:S4fTenThousandQueues",
            steady(200),
            extra=True,
        ),
        Variant(
            "S5a",
            "pop depth 10 at 50 req/s, queue held at 0 items",
            "s5_queue_depth:S5aEmptyQueue",
            steady(50),
        ),
        Variant(
            "S5b",
            "pop depth 10 at 50 req/s, queue held at 1K items",
            "s5_queue_depth:S5bThousandItems",
            steady(50),
        ),
        Variant(
            "S5c",
            "pop depth 10 at 50 req/s, queue held at 10K items",
            "s5_queue_depth:S5cTenThousandItems",
            steady(50),
        ),
        Variant(
            "S5d",
            "pop depth 10 at 50 req/s, queue held at 100K items",
            "s5_queue_depth:S5dHundredThousandItems",
            steady(50),
        ),
        Variant(
            "S5e",
            "pop depth 10 at 50 req/s, queue held at 1M items (extra point)",
            "s5_queue_depth:S5eMillionItems",
            steady(50),
            extra=True,
        ),
        Variant(
            "S6a",
            "sine 10->200->10 req/s over 5 min",
            "s6_burst:BurstUser",
            fixed(Sine(low=10, high=200, period_s=300)),
            intrinsic=True,
            thresholds=BURST_THRESHOLDS,
        ),
        Variant(
            "S6b",
            "square: 30 s at 200 / 30 s at 10 req/s",
            "s6_burst:BurstUser",
            fixed(Square(high=200, low=10, high_s=30, low_s=30, cycles=2)),
            intrinsic=True,
            thresholds=BURST_THRESHOLDS,
        ),
        Variant(
            "S6c",
            "spike: 4 min at 50, 1 min at 500 req/s, 1 min tail",
            "s6_burst:BurstUser",
            fixed(Spike(base=50, spike=500, base_s=240, spike_s=60, tail_s=60)),
            intrinsic=True,
            thresholds=BURST_THRESHOLDS,
        ),
        Variant(
            "S7a",
            "non-object items rejected with 400 INVALID_ITEM, mixed with valid traffic",
            "s7_failure:S7aInvalidItems",
            steady(50),
        ),
        Variant(
            "S7b",
            "negative priorities rejected with 400 INVALID_PRIORITY",
            "s7_failure:S7bNegativePriorities",
            steady(50),
        ),
        Variant(
            "S7c",
            "pop depth > 100 rejected with 400 INVALID_DEPTH",
            "s7_failure:S7cDepthTooLarge",
            steady(50),
        ),
        Variant(
            "S7d",
            "PostgreSQL restart under load: 503s, recovery, nothing lost",
            "s7_failure:S7dPostgresRestart",
            steady(50),
            fault="postgres-restart",
            expected_errors=("503 STORE_UNAVAILABLE",),
            thresholds=OUTAGE_THRESHOLDS,
            min_duration=15.0,
        ),
        Variant(
            "S7e",
            "Dapr sidecar restart under load (needs --runtime dapr)",
            "s7_failure:S7eSidecarRestart",
            steady(50),
            fault="sidecar-restart",
            # 502: calls in flight when daprd died (their outcome is unknown: the ledger
            # counts them as uncertain, neither lost nor duplicated)
            expected_errors=(
                "503 STORE_UNAVAILABLE",
                "503 RUNTIME_UNAVAILABLE",
                "502 OUTCOME_UNKNOWN",
            ),
            thresholds=OUTAGE_THRESHOLDS,
            min_duration=15.0,
        ),
        Variant(
            "S7f",
            "locks left to expire under load give their items back",
            "s7_failure:S7fLockExpiry",
            steady(50),
        ),
        # worker fleets (extra: not in run-all unless asked; `run S8` runs the group)
        Variant(
            "S8a",
            "workers, balanced: 40 items/s into 8 long-polling workers (20 ms jobs)",
            "s8_workers:S8aBalanced",
            steady(40),
            thresholds=WORKER_THRESHOLDS,
            extra=True,
        ),
        Variant(
            "S8b",
            "workers, under-provisioned: 40 items/s into 2 workers (80 ms jobs): backlog",
            "s8_workers:S8bUnderProvisioned",
            steady(40),
            thresholds=WORKER_THRESHOLDS,
            extra=True,
        ),
        Variant(
            "S8c",
            "workers, 5 % poison items, max_deliveries 3: dead-lettered = injected",
            "s8_workers:S8cPoison",
            steady(40),
            thresholds=WORKER_THRESHOLDS,
            extra=True,
        ),
        Variant(
            "S8d",
            "workers, burst 30 -> 200 items/s into 4 workers: time to drain",
            "s8_workers:S8dBurst",
            burst(30, 200),
            thresholds={**WORKER_THRESHOLDS, "backlog_growth": None, "drain_s": 30.0},
            extra=True,
        ),
        Variant(
            "S8e",
            "workers, 1,000 long-polling (1,000 connections; PUSHPOP_MAX_CONNECTIONS>1000)",
            "s8_workers:S8eThousandWorkers",
            steady(40),
            thresholds=WORKER_THRESHOLDS,
            extra=True,
        ),
        # the physical limit: closed-loop, no schedule (see scripts/physical_limit.py)
        Variant(
            "LIMIT-push",
            "closed-loop pushes at fixed concurrency",
            "s1_push_only:S1bTenQueuePush",
            steady(0),
            hidden=True,
        ),
        Variant(
            "LIMIT-pop",
            "closed-loop pops at fixed concurrency",
            "s2_pop_only:LimitPop",
            steady(0),
            hidden=True,
        ),
    ]
}


def load_user_class(ref: str) -> type:
    """``"s3_mixed:MixedWorkloadUser"`` -> the class (imports Locust: call it in Locust only)."""
    import importlib

    module, _, name = ref.partition(":")
    return getattr(importlib.import_module(f"load_tests.scenarios.{module}"), name)


def resolve(selector: str, include_extra: bool = False) -> list[Variant]:
    """``S3a`` -> that variant; ``S3`` -> its group; ``all`` -> every public variant."""
    key = selector.strip()
    if key in VARIANTS:
        return [VARIANTS[key]]
    upper = key.upper()
    if upper in VARIANTS:
        return [VARIANTS[upper]]
    # a group made only of extra variants (S8) is asked for by its name
    extra_group = upper != "ALL" and all(
        v.extra for v in VARIANTS.values() if v.group.upper() == upper
    )
    matches = [
        v
        for v in VARIANTS.values()
        if not v.hidden
        and (upper == "ALL" or v.group.upper() == upper)
        and (include_extra or extra_group or not v.extra or v.id.upper() == upper)
    ]
    if not matches:
        known = ", ".join(sorted(GROUPS) + sorted(k for k, v in VARIANTS.items() if not v.hidden))
        raise KeyError(f"unknown scenario {selector!r}; known: {known}, all")
    return matches
