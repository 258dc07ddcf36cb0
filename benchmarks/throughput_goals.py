"""Issue 11's throughput goals and how :mod:`benchmarks.throughput` judges its points:
each against its same-run references (pgbench around it, the 50-queue point, the
baseline mode), and a missed goal above the floor app's reach printed as out of reach.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import psutil

# (runtime, mode) of the floor app's points, by the runtime whose goals each one bounds:
# the plain floor, and its Dapr form (two more HTTP legs and daprd; --runtimes dapr)
FLOORS = {"embedded": ("floor", "bare"), "dapr": ("floor", "dapr")}
# runtimes that serve from one process by design (a Dapr-mode deployment scales out)
ONE_PROCESS = {"embedded"}
QUEUES = 50
CONNECTIONS = 16


@dataclass
class Point:
    runtime: str
    mode: str
    op: str  # push | pop
    queues: int
    connections: int
    requests: int
    seconds: float
    errors: int
    p50_ms: float
    p99_ms: float
    coalesced_requests: int
    cpu_us_per_op: dict[str, float]
    empty_fraction: float | None = None  # pops only
    # mean ms per stage, from the server's /metrics (benchmarks/hops.py); floor: none
    hops_ms: dict[str, float] = field(default_factory=dict)
    # pgbench tps in slices right before and after the point (16 connections): its ratio's
    # reference; None: the run's (c=1 points, and JSON of runs before this existed)
    pgbench_tps: float | None = None

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    @property
    def name(self) -> str:
        if self.connections == 1:
            return f"{self.op} c=1 (p50)"
        return f"{self.op} {self.queues}q c={self.connections}"


@dataclass
class Target:
    runtime: str
    point: str  # Point.name of the optimised point it judges
    against: str  # pgbench | 50q | baseline
    value: float
    goal: str  # ">= 0.6" | "<= 1.2"
    met: bool = field(init=False)
    # against pgbench: the floor app's ratio to pgbench for the same operation
    floor: float | None = None

    def __post_init__(self) -> None:
        op, bound = self.goal.split()
        self.met = self.value >= float(bound) if op == ">=" else self.value <= float(bound)

    @property
    def name(self) -> str:
        return f"{self.runtime} {self.point} / {self.against}"

    @property
    def out_of_reach(self) -> bool:
        """A missed goal that asks for more than the floor app reached: no Python server
        can reach it here. A met goal is never out of reach, whatever the floor says."""
        op, bound = self.goal.split()
        return not self.met and op == ">=" and self.floor is not None and float(bound) > self.floor

    def verdict(self) -> str:
        line = f"{self.name} = {self.value:.3f}, goal {self.goal}: " + (
            "met" if self.met else "[red]MISSED[/red]"
        )
        if self.out_of_reach:
            line += (
                f" (goal {self.goal.split()[1]} is above the floor {self.floor:.2f} x pgbench: "
                "out of reach for a Python server on this host)"
            )
        elif self.floor is not None:
            line += f" (floor {self.floor:.2f} x pgbench)"
        return line


def floor_point(points: list[Point], op: str, runtime: str) -> Point | None:
    """The point of ``op`` (push or pop) of the floor that bounds ``runtime``, if measured."""
    if runtime not in FLOORS:
        return None
    wanted = (*FLOORS[runtime], op)
    return next((q for q in points if (q.runtime, q.mode, q.op) == wanted), None)


def ratios(p: Point, points: list[Point], ref: float) -> dict[str, float]:
    """A point against its same-run references: pgbench (in the slices around it, else
    the run's ``ref``); the 50-queue point of the same operation (for the hot queue); the
    baseline mode (for the c=1 p50)."""
    if p.connections == 1:
        base = next((q for q in points if (q.runtime, q.mode, q.name)
                     == (p.runtime, "baseline", p.name)), None)  # fmt: skip
        return {"baseline": p.p50_ms / base.p50_ms} if base and p.mode != "baseline" else {}
    out = {"pgbench": p.rate / (p.pgbench_tps or ref)}
    wide = next((q for q in points if (q.runtime, q.mode, q.op, q.queues, q.connections)
                 == (p.runtime, p.mode, p.op, QUEUES, p.connections)), None)  # fmt: skip
    if p.queues == 1 and wide:
        out["50q"] = p.rate / wide.rate
    floor = floor_point(points, p.op, p.runtime)
    if floor and (p.queues, p.connections) == (QUEUES, CONNECTIONS):
        out["floor"] = p.rate / floor.rate
    return out


# the goals of issue 11, for the optimised mode: (runtime or None for both, point, against)
GOALS = {
    ("embedded", "push 50q c=16", "pgbench"): ">= 0.6",
    ("embedded", "pop 50q c=16", "pgbench"): ">= 0.5",
    ("dapr", "push 50q c=16", "pgbench"): ">= 0.13",
    ("dapr", "pop 50q c=16", "pgbench"): ">= 0.13",
    ("dapr", "push 1q c=16", "pgbench"): ">= 0.13",
    ("dapr", "pop 1q c=16", "pgbench"): ">= 0.13",
    (None, "push 1q c=16", "50q"): ">= 1.0",
    (None, "pop 1q c=16", "50q"): ">= 1.0",
    (None, "push c=1 (p50)", "baseline"): "<= 1.2",
}


def goal(p: Point, against: str) -> str | None:
    if p.mode != "optimised":
        return None
    return GOALS.get((p.runtime, p.name, against)) or GOALS.get((None, p.name, against))


def busy_us(cpu: dict[str, float]) -> float:
    """CPU-µs per op of the processes doing the work (all but the rest of the host)."""
    return sum(v for k, v in cpu.items() if k != "other")


def reference_cpu(pgbench: dict) -> float:
    """pgbench's CPU-µs per transaction (PostgreSQL + pgbench), mean of start and end."""
    return sum(busy_us(pgbench[when]["cpu_us_per_tx"]) for when in ("start", "end")) / 2


def floor_bound(f: Point, ref: float, ref_cpu: float | None, one_process: bool = False) -> float:
    """The floor's ratio to pgbench (around the floor's point, else the run's ``ref``),
    the highest of: by rate; by CPU per op (what the two would reach if both spent every
    core: unlike a rate, CPU per op barely moves when the host is busy); and the floor
    spending every core against pgbench's measured rate. The highest only ever calls a
    goal reachable.

    ``one_process``: the bounded runtime serves from one process (embedded mode: one
    host per database, its actors in one event loop), whose server can never spend more
    than one core, however many the host has: spending every core, the floor's rate is
    capped by its server's CPU per op, and pgbench's is not."""
    ref = f.pgbench_tps or ref
    by_rate = f.rate / ref
    if not ref_cpu:
        return by_rate
    busy, cores = busy_us(f.cpu_us_per_op), psutil.cpu_count() or 1
    most = cores * 1e6 / busy  # the floor's rate with every core spent
    if one_process:
        most = min(most, 1e6 / f.cpu_us_per_op["server"])
    # pgbench with every core spent: cores * 1e6 / ref_cpu
    return max(by_rate, most * ref_cpu / (cores * 1e6), most / ref)


def targets(points: list[Point], ref: float, ref_cpu: float | None = None) -> list[Target]:
    floors = {
        (runtime, op): floor_bound(f, ref, ref_cpu, one_process=runtime in ONE_PROCESS)
        for runtime in FLOORS
        for op in ("push", "pop")
        if (f := floor_point(points, op, runtime))
    }
    # the floors are measured at 50 queues, one write per request: they bound the 50-queue
    # points, not a hot queue's, whose requests coalescing merges into fewer writes
    return [
        Target(p.runtime, p.name, against, value, g, floors.get((p.runtime, p.op)))
        if against == "pgbench" and (p.queues, p.connections) == (QUEUES, CONNECTIONS)
        else Target(p.runtime, p.name, against, value, g)
        for p in points
        for against, value in ratios(p, points, ref).items()
        if (g := goal(p, against))
    ]
