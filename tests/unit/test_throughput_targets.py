"""benchmarks.throughput's verdicts: a target is never both met and out of reach, and the
floors (50 queues, one write per request) bound only the 50-queue points."""

from __future__ import annotations

from benchmarks.throughput import CONNECTIONS, FLOORS, QUEUES, Point, targets


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
