"""The checks of a worker-fleet run (S8): backlog growth, drain, dead letters, end to end.

Why the backlog's limit is ``max(growth x arrival rate, noise band)``: a slope inside its
own noise band is no evidence of growth, and a slope of a few percent of the arrival
rate is a backlog that would take hours to matter. Beyond both, the fleet does not keep
up, and the run FAILs however fast every endpoint answered.
"""

from __future__ import annotations

from load_tests.evaluation.check import Check
from load_tests.evaluation.codes import EXIT_LEDGER
from load_tests.evaluation.results import RunResult
from load_tests.evaluation.thresholds import Thresholds

BACKLOG = "backlog growth"  # the metric the verdict's headline names


def worker_checks(r: RunResult, t: Thresholds) -> list[Check]:
    w = r.workers
    if not w:
        return []
    e2e = w.get("end_to_end_ms") or {}
    out = [
        Check("end-to-end p50", "ms", e2e.get("p50"), None, compared=True),
        Check("end-to-end p99", "ms", e2e.get("p99"), t.e2e_p99_ms, compared=True),
        Check("worker utilisation", "%", w.get("utilisation"), None),
    ]
    backlog = w.get("backlog") or {}
    if backlog.get("slope") is not None:
        limit = None
        if t.backlog_growth is not None:
            rate = float(w.get("arrival_items_per_s") or 0.0)
            limit = round(max(t.backlog_growth * rate, float(backlog.get("band") or 0.0)), 4)
        out.append(Check(BACKLOG, "items/s", backlog["slope"], limit))
    drain = w.get("drain")
    if drain is not None:
        seconds = drain.get("drain_s")
        # never drained: an infinite time fails any limit
        value = float("inf") if seconds is None else float(seconds)
        out.append(Check("burst drain time", "s", value, t.drain_s))
    dead = w.get("dead_letter") or {}
    if dead.get("injected") or dead.get("dead_lettered"):
        held = dead.get("dead_lettered")
        gap = None if held is None else float(abs(held - dead["injected"]))
        out.append(Check("dead-lettered - injected", "items", gap, 0.0, code=EXIT_LEDGER))
    return out
