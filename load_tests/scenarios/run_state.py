"""All per-run state of one Locust process, in one object (:data:`STATE`).

Why one object with :meth:`RunState.reset`: a Locust process can run several tests in
a row (the web UI's "new test"), and each run must start with an empty recorder, sink
and ledger. Building fresh members makes "nothing of the last run leaks into this one"
true by construction, rather than by re-initialising each live object in turn and
hoping none was forgotten.

Why a module-level singleton at all: Locust instantiates the user classes and calls
the event listeners itself, so they can only reach the run through something
importable.
"""

from __future__ import annotations

import time
from typing import Any

import gevent
from gevent.event import Event
from gevent.pool import Pool

from load_tests.schedules import Schedule, schedule_from_spec
from load_tests.utils.metrics import HistogramSink, Ledger, LedgerBuffer, Recorder


class RunContext:
    """Per-process facts about the current run, set by the master and sent to workers."""

    def __init__(self, model: str = "closed") -> None:
        self.run_id = ""
        self.model = model
        self.started_at: float | None = None
        self.schedule: Schedule | None = None
        self.generators = 1
        self.ready = Event()
        # master: the workers of this run, and those whose last buckets and ledger
        # entries (``pushpop_final``) have arrived; the ledger waits for all of them
        self.workers: set[str] = set()
        self.finals: set[str] = set()

    def to_message(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "model": self.model,
            "started_at": self.started_at,
            "schedule": self.schedule.to_spec() if self.schedule else None,
            "generators": self.generators,
        }

    def apply_message(self, data: dict[str, Any]) -> None:
        self.run_id = data["run_id"]
        self.model = data["model"]
        self.started_at = data["started_at"]
        self.schedule = schedule_from_spec(data["schedule"]) if data["schedule"] else None
        self.generators = max(1, int(data["generators"]))
        self.ready.set()

    def elapsed(self, now: float | None = None) -> float:
        now = time.time() if now is None else now
        return now - self.started_at if self.started_at else 0.0

    def generator_rate(self, at: float, fallback: float) -> float | None:
        """Arrivals/s one generator should produce at unix time ``at``; ``None`` = over."""
        if self.schedule is None:
            return fallback
        rate = self.schedule.rate_at(self.elapsed(at))
        return None if rate is None else rate / self.generators


class RunState:
    """The current run's context, measurements and ledger, replaced whole by :meth:`reset`.

    ``finished`` is the one member that outlives a reset: callers (``load_tests.headless``)
    start a run and then wait on it, while the run's own start resets the state; a fresh
    event would leave them waiting on one nobody sets.
    """

    def __init__(self) -> None:
        self.finished = Event()  # set when the master/local side has written its results
        self._bucket = 1.0
        self._source = "local"
        self.reset()

    def reset(self, model: str = "closed") -> None:
        """Start over with fresh members; what the previous run still held is let go."""
        old_sink = getattr(self, "sink", None)
        if old_sink is not None:
            old_sink.close()
        old_stop = getattr(self, "stop_background", None)
        if old_stop is not None:
            old_stop.set()  # a loop the previous run left behind ends instead of leaking
        self.run = RunContext(model)
        self.recorder = Recorder(self._bucket, source=self._source)
        self.sink = HistogramSink()
        self.ledger_buffer = LedgerBuffer()  # worker side: entries not yet sent to the master
        self.ledger = Ledger()  # master/local side: the merged ledger
        self.stop_background = Event()
        self.background: list[gevent.Greenlet] = []
        self.pools: list[Pool] = []  # every generator's in-flight arrivals, joined at the end
        self.dry_warned: set[str] = set()
        self.finished.clear()

    def configure(self, *, model: str, bucket: float, source: str) -> None:
        """Once per process (``init``): how this process's buckets are cut and labelled."""
        self._bucket = bucket
        self._source = source
        self.reset(model)


STATE = RunState()

__all__ = ["STATE", "RunContext", "RunState"]
