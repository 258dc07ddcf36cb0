"""What the master (or a local runner) does around the load: set up, watch, finish.

Start: reset the run state, prepopulate the queues that ask for it, tell the workers
the run's id, model and schedule, and start two background loops (flushing closed
histogram buckets to disk, sampling queue depths). Finish: wait for in-flight
arrivals, drain the run's queues and check the ledger against what is left.

Workers only send their last buckets and ledger entries (``pushpop_final``); the
master merges them, so its percentiles are exact over all workers.
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import gevent
from gevent.event import Event
from locust.env import Environment
from locust.runners import (
    STATE_MISSING,
    STATE_RUNNING,
    STATE_SPAWNING,
    MasterRunner,
    WorkerRunner,
)

from load_tests.scenarios.api_client import ApiClient
from load_tests.scenarios.drain import drain_queues
from load_tests.scenarios.options import Options
from load_tests.scenarios.run_state import STATE
from load_tests.scenarios.users import INFLIGHT_GRACE, queue_user_classes
from load_tests.utils.metrics import HistogramSink, Recorder

log = logging.getLogger("pushpop.load")

DEPTH_SAMPLES_PER_TICK = 8  # GET /queue/{id} per sampling tick, round-robin over queues


def is_master(environment: Environment) -> bool:
    return isinstance(environment.runner, MasterRunner)


def is_worker(environment: Environment) -> bool:
    return isinstance(environment.runner, WorkerRunner)


# --------------------------------------------------------------------------- start


def start_run(environment: Environment) -> None:
    opts = Options.of(environment)
    STATE.reset(opts.model)
    run = STATE.run
    run.run_id = opts.run_id or f"r{time.strftime('%H%M%S')}-{uuid.uuid4().hex[:6]}"
    out = opts.out_dir
    STATE.sink.open(out)
    prepopulated = _prepopulate(environment)
    shape = environment.shape_class
    schedule = getattr(shape, "schedule", None)
    run.schedule = schedule if opts.model == "open" else None
    run.generators = max(1, getattr(shape, "generators", opts.generators))
    run.started_at = time.time()
    queues = [q for cls in queue_user_classes(environment) for q in cls.queue_ids()]
    if out:
        started = {
            **run.to_message(),
            "queues": queues,
            "user_classes": [c.__name__ for c in environment.user_classes],
            "prepopulated": prepopulated,
            "host": environment.host,
        }
        tmp = out / "started.json.tmp"
        tmp.write_text(json.dumps(started, indent=1))
        tmp.replace(out / "started.json")  # atomic: the fault thread polls for it
    if is_master(environment):
        run.workers = {c.id for c in environment.runner.clients.all}
        environment.runner.send_message("pushpop_run", run.to_message())
    stop = STATE.stop_background
    STATE.background[:] = [
        gevent.spawn(_flush_loop, STATE.recorder, STATE.sink, stop),
        gevent.spawn(
            _sample_depths, environment.host or "", queues, out, opts.depth_interval, stop
        ),
    ]
    run.ready.set()
    log.info("run %s started (%s model, %d queues)", run.run_id, run.model, len(queues))


def _prepopulate(environment: Environment) -> dict[str, Any]:
    """Load the queues of every class that asks for it, in a subprocess (asyncio, not gevent)."""
    summary: dict[str, Any] = {}
    for cls in queue_user_classes(environment):
        spec = cls.prepopulate
        if not spec or spec.items <= 0:
            continue
        queues = cls.queue_ids()
        with tempfile.TemporaryDirectory() as tmp:
            ids_file = Path(tmp) / "ids.json"
            cmd = [
                sys.executable,
                "-m",
                "load_tests.utils.queue_prepopulator",
                "--host",
                environment.host or "",
                "--items",
                str(spec.items),
                "--priorities",
                ",".join(str(p) for p in spec.priorities),
                "--item-bytes",
                str(spec.item_bytes),
                "--ids-out",
                str(ids_file),
                "--no-progress",
            ]
            for q in queues:
                cmd += ["--queue", q]
            t0 = time.time()
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                raise RuntimeError(f"prepopulation of {queues} failed: {proc.stderr[-2000:]}")
            result = json.loads(proc.stdout.strip().splitlines()[-1])
            ids = json.loads(ids_file.read_text())
        STATE.ledger.merge({"pushed": ids})
        summary[cls.__name__] = {
            "queues": len(queues),
            "items_per_queue": spec.items,
            "priorities": list(spec.priorities),
            "seconds": round(time.time() - t0, 2),
            "items_per_s": result.get("items_per_s"),
            "verified": result.get("ok"),
        }
        log.info("prepopulated %s: %s", cls.__name__, summary[cls.__name__])
    return summary


# --------------------------------------------------------------------------- during


def _flush_loop(recorder: Recorder, sink: HistogramSink, stop: Event) -> None:
    """Master/local: move this process's closed buckets into the sink every second."""
    while not stop.wait(1.0):
        sink.add(recorder.drain())
        sink.flush()


def _sample_depths(
    host: str, queues: list[str], out: Path | None, interval: float, stop: Event
) -> None:
    """Master/local: GET /queue/{id} round-robin, a few queues per tick, into depth.csv."""
    if not host or not queues:
        return
    f = open(out / "depth.csv", "w", newline="") if out else None
    writer = csv.writer(f) if f else None
    if writer:
        writer.writerow(["timestamp", "queue", "depth", "in_flight"])
    i = 0
    client = ApiClient(host, timeout=5)
    try:
        while True:
            for _ in range(min(DEPTH_SAMPLES_PER_TICK, len(queues))):
                q = queues[i % len(queues)]
                i += 1
                with contextlib.suppress(Exception):
                    status, d = client.call("GET", f"/queue/{q}")
                    if status == 200 and writer:
                        row = [f"{time.time():.3f}", q, d["depth"], d.get("in_flight", 0)]
                        writer.writerow(row)
            if f:
                f.flush()
            if stop.wait(interval):
                break
    finally:
        client.close()
    if f:
        f.close()


# --------------------------------------------------------------------------- finish


def finish_run(environment: Environment) -> None:
    for pool in list(STATE.pools):
        pool.join(timeout=INFLIGHT_GRACE)
        pool.kill(block=True, timeout=5)
    if is_worker(environment):
        # Locust's statistics of the last requests first (what its own "stop" handler
        # sends): the master has them once it has every final, with no report round to
        # wait for; one socket, in order
        environment.runner._send_stats()
        environment.runner.send_message(
            "pushpop_final",
            {
                "buckets": [b.to_dict() for b in STATE.recorder.drain(final=True)],
                "ledger": STATE.ledger_buffer.drain(),
            },
        )
        return
    run = STATE.run
    if run.started_at is None:
        return  # stopped before it started
    unreported = _await_finals(environment) if is_master(environment) else set()
    STATE.sink.add(STATE.recorder.drain(final=True))
    STATE.ledger.merge(STATE.ledger_buffer.drain())
    STATE.stop_background.set()
    gevent.joinall(STATE.background, timeout=10)
    classes = queue_user_classes(environment)
    settle = max((c.settle_seconds for c in classes), default=0.0)
    if settle:
        gevent.sleep(settle)
    opts = Options.of(environment)
    queues = sorted(STATE.ledger.queues() | {q for c in classes for q in c.queue_ids()})
    remaining = drain_queues(environment.host or "", queues, opts.drain_limit)
    report = STATE.ledger.check(remaining)
    if unreported:
        # their last pushes and pops never reached the ledger: it cannot be trusted
        report["ok"] = False
        report["status"] = "INCOMPLETE"
        report["problems"].insert(0, f"no final report from worker(s) {sorted(unreported)}: "
                                     "their last ledger entries are missing")  # fmt: skip
    report["run_id"] = run.run_id
    report["stopped_at"] = time.time()
    if opts.out_dir:
        (opts.out_dir / "ledger.json").write_text(json.dumps(report, indent=1))
    STATE.sink.close()
    level = logging.INFO if report["ok"] else logging.ERROR
    log.log(level, "ledger %s: %s", report["status"], report["totals"])
    for p in report["problems"][:10]:
        log.error("ledger: %s", p)


def _await_finals(environment: Environment) -> set[str]:
    """Master: wait until every worker of the run has sent ``pushpop_final``; the workers
    that never will (gone without one, or still silent at the deadline) are returned.

    Why: Locust fires the master's ``test_stop`` once the workers report no running
    users, which they do while their own ``test_stop`` still waits for in-flight
    requests, i.e. before their last ledger entries are sent (and, after ``--run-time``,
    before the workers were even told to stop). Draining and checking then would count
    their last pushes as extras and their last pops as losses.
    """
    run = STATE.run
    runner = environment.runner
    # ``--headless --run-time`` ends with the master's quit(), which fires test_stop
    # here *without* stopping the workers (they only get "quit" afterwards, too late
    # to report): have the ones still running users stop (and report). Not Locust's own
    # "stop" message: its reply makes the master forget the worker, which would then
    # never get the "quit" that ends it.
    for client in runner.clients.all:
        running = client.user_count > 0 or client.state in (STATE_RUNNING, STATE_SPAWNING)
        if running and client.id not in run.finals:  # (one already stopping ignores it)
            runner.send_message(STOP_MESSAGE, None, client.id)
    deadline = time.monotonic() + INFLIGHT_GRACE + FINAL_REPORT_SLACK
    while True:
        waiting = run.workers - run.finals
        # a worker leaves the master's list only after its final (one socket, in
        # order) or when it died: stop waiting for those
        present = {c.id for c in runner.clients.all if c.state != STATE_MISSING}
        if not waiting & present or time.monotonic() >= deadline:
            if waiting:
                log.error("no final report from worker(s) %s", sorted(waiting))
            return waiting
        gevent.sleep(0.05)


FINAL_REPORT_SLACK = 30.0  # beyond a worker's own wait for its in-flight requests
STOP_MESSAGE = "pushpop_stop"


def stop_worker(environment: Environment) -> None:
    """Worker: the master's ``pushpop_stop``: stop the users, which fires test_stop and
    so sends ``pushpop_final`` (in a greenlet: that waits for in-flight requests)."""
    runner = environment.runner
    if runner.state in (STATE_RUNNING, STATE_SPAWNING):
        gevent.spawn(runner.stop)


__all__ = ["STOP_MESSAGE", "finish_run", "is_master", "is_worker", "start_run", "stop_worker"]
