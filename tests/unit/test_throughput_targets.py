"""benchmarks.throughput's verdicts (``benchmarks/throughput_goals.py``): a target is
never both met and out of reach; the floors (50 queues, one write per request) bound only
the 50-queue points; a point is judged against pgbench around it; the embedded floor gets
one core."""

from __future__ import annotations

import pytest

from benchmarks import throughput_goals
from benchmarks.throughput_goals import CONNECTIONS, FLOORS, QUEUES, Point, targets


def point(runtime: str, mode: str, op: str, queues: int, rate: float) -> Point:
    return Point(runtime, mode, op, queues, CONNECTIONS, int(rate * 10), 10.0, 0, 1.0, 2.0, 0,
                 {"server": 500.0, "PostgreSQL": 100.0})  # fmt: skip


def test_floor_bounds_only_the_fifty_queue_points_and_never_a_met_goal() -> None:
    ref = 10_000.0  # pgbench; the Dapr floor reaches 0.10 of it
    points = [
        point(*FLOORS["dapr"], "push", QUEUES, 1_000),
        point("dapr", "optimised", "push", QUEUES, 700),  # 0.07: missed, above the floor
        point("dapr", "optimised", "push", 1, 1_400),  # 0.14: met, thanks to coalescing
    ]
    got = {t.point: t for t in targets(points, ref) if t.against == "pgbench"}
    wide, hot = got[f"push {QUEUES}q c={CONNECTIONS}"], got[f"push 1q c={CONNECTIONS}"]
    assert (wide.met, wide.out_of_reach) == (False, True)
    assert wide.floor is not None and abs(wide.floor - 0.10) < 1e-9
    assert (hot.met, hot.out_of_reach, hot.floor) == (True, False, None)
    assert "out of reach" not in hot.verdict()


def test_a_point_is_judged_against_pgbench_in_the_minutes_around_it() -> None:
    # the run's reference says 10,000 tps; in the slices around the point pgbench did 5,000
    p = point("embedded", "optimised", "push", QUEUES, 3_000)
    p.pgbench_tps = 5_000.0
    (got,) = [t for t in targets([p], 10_000.0) if t.against == "pgbench"]
    assert abs(got.value - 0.6) < 1e-9 and got.met
    p.pgbench_tps = None  # JSON of a run without slices: the run's reference
    (got,) = [t for t in targets([p], 10_000.0) if t.against == "pgbench"]
    assert abs(got.value - 0.3) < 1e-9 and not got.met


def test_embedded_floor_gets_one_core_and_the_dapr_floor_every_core(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(throughput_goals.psutil, "cpu_count", lambda: 2)
    floors = {}
    for runtime in ("embedded", "dapr"):
        f = point(*FLOORS[runtime], "push", QUEUES, 2_000)  # 0.2 x pgbench by rate
        f.cpu_us_per_op = {"server": 250.0, "PostgreSQL": 150.0}  # 400 µs busy per op
        f.pgbench_tps = 10_000.0
        wide = point(runtime, "optimised", "push", QUEUES, 1_000)
        wide.pgbench_tps = 10_000.0
        (t,) = [t for t in targets([f, wide], 1.0, ref_cpu=100.0) if t.against == "pgbench"]
        floors[runtime] = t.floor
    # every core: 2e6 / 400 = 5,000/s = 0.5 x pgbench; one process: 1e6 / 250 = 4,000/s
    assert floors["dapr"] is not None and abs(floors["dapr"] - 0.5) < 1e-9
    assert floors["embedded"] is not None and abs(floors["embedded"] - 0.4) < 1e-9
