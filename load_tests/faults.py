"""Faults injected from outside the load: PostgreSQL restart (S7d), sidecar restart (S7e).

Why outside Locust: a fault acts on processes the harness owns (``PostgresServer``
``stop()``/``start()`` on the same port, the ``daprd`` process), at a known time after
the load started, while the generators keep sending on schedule. It runs in a thread of
the orchestrator, waits for the Locust side to write ``started.json``, and records a
timeline (unix times, the clock of every other file) in ``faults.json``.

Recovery is measured two ways: here, by probing the service (push then pop on a probe
queue, every 50 ms) from the moment the component is back until it answers 2xx; and in
the analysis, from the load's own errors (last failure after the fault).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
import time
import uuid
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

from load_tests.harness import Harness, pids_named

PROBE_INTERVAL = 0.05
PROBE_TIMEOUT = 120.0


@dataclass
class FaultRecord:
    name: str
    skipped: str | None = None
    events: dict[str, float] = field(default_factory=dict)  # what happened when (unix time)
    window: tuple[float, float] | None = None  # when errors are expected: fault start .. back
    recovery_s: float | None = None  # component back -> service answering again
    outage_s: float | None = None  # fault start -> service answering again
    notes: list[str] = field(default_factory=list)
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Fault(ABC):
    """``at`` and ``outage`` are fractions of the run's duration."""

    name = "fault"
    at = 0.3
    outage = 0.2
    min_outage_s = 2.0

    def skip_reason(self, harness: Harness) -> str | None:
        return None

    @abstractmethod
    def inject(self, harness: Harness, record: FaultRecord, outage_s: float) -> None:
        """Break the component, keep it down ``outage_s``, bring it back; note times."""

    def run(
        self, harness: Harness, started_at: float, duration: float, outage_s: float | None = None
    ) -> FaultRecord:
        record = FaultRecord(self.name)
        reason = self.skip_reason(harness)
        if reason:
            record.skipped = reason
            return record
        time.sleep(max(0.0, started_at + self.at * duration - time.time()))
        if outage_s is None:
            outage_s = max(self.min_outage_s, self.outage * duration)
        try:
            self.inject(harness, record, outage_s)
            back = record.events["back"]
            ok_at = probe_until_ok(harness.base_url, record)
            record.recovery_s = round(ok_at - back, 3)
            record.outage_s = round(ok_at - record.events["fault_start"], 3)
            record.window = (record.events["fault_start"], ok_at)
        except Exception as exc:
            record.error = repr(exc)
        return record


def probe_until_ok(base_url: str, record: FaultRecord) -> float:
    """First time a push *and* a pop on a probe queue succeed (the write path is back)."""
    queue = f"probe-{uuid.uuid4().hex[:8]}"
    deadline = time.time() + PROBE_TIMEOUT
    attempts = 0
    with httpx.Client(base_url=base_url, timeout=10) as client:
        while time.time() < deadline:
            attempts += 1
            with contextlib.suppress(httpx.HTTPError):
                r = client.post(f"/queue/{queue}/push", json={"item": {"probe": attempts}})
                if r.status_code == 200:
                    p = client.post(f"/queue/{queue}/pop")
                    if p.status_code == 200:
                        now = time.time()
                        record.events["service_ok"] = now
                        record.notes.append(f"service answered after {attempts} probes")
                        client.delete(f"/queue/{queue}")
                        return now
            time.sleep(PROBE_INTERVAL)
    raise TimeoutError(f"service did not recover within {PROBE_TIMEOUT:g}s")


class PostgresRestart(Fault):
    """S7d: ``pg.stop()`` (fast shutdown: sessions are cut), wait, ``pg.start()``.

    The service waits up to its store deadline (5 s by default) for a connection before
    it answers 503, so a shorter outage shows only as slow answers. The outage lasts at
    least 7 s so that a run sees both: requests held, then 503s, then recovery.
    """

    name = "postgres-restart"
    min_outage_s = 7.0

    def skip_reason(self, harness: Harness) -> str | None:
        if harness.pg is None:
            return (
                "S7d needs a PostgreSQL owned by this run: use --store postgres without "
                "--host/--database-url"
            )
        return None

    def inject(self, harness: Harness, record: FaultRecord, outage_s: float) -> None:
        pg: Any = harness.pg
        record.events["fault_start"] = time.time()
        pg.stop()
        record.events["component_down"] = time.time()
        time.sleep(max(0.0, record.events["fault_start"] + outage_s - time.time()))
        record.events["restart_begin"] = time.time()
        pg.start()
        record.events["back"] = time.time()
        record.notes.append(f"PostgreSQL on port {pg.port} stopped and started again")


class SidecarRestart(Fault):
    """S7e: restart ``daprd`` -- the pid the harness knows, or the one found by name.

    If something supervises the sidecar and starts a new one by itself, that one is used;
    otherwise the same command line is started again with the same environment.
    """

    name = "sidecar-restart"

    def skip_reason(self, harness: Harness) -> str | None:
        if harness.runtime != "dapr":
            return "S7e needs --runtime dapr (the embedded runtime has no sidecar to restart)"
        if not harness.sidecar_pids("daprd"):
            return "S7e needs --runtime dapr: no daprd process was found"
        return None

    def inject(self, harness: Harness, record: FaultRecord, outage_s: float) -> None:
        pid = harness.sidecar_pids("daprd")[0]
        proc = psutil.Process(pid)
        cmdline, cwd = proc.cmdline(), proc.cwd()
        try:
            env = proc.environ()
        except psutil.Error:
            env = dict(os.environ)
        app_id = _flag(cmdline, "--app-id")
        record.notes.append(f"restarting daprd pid {pid} (app id {app_id})")
        record.events["fault_start"] = time.time()
        proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(psutil.TimeoutExpired):
            proc.wait(timeout=10)
        if proc.is_running():
            proc.kill()
        record.events["component_down"] = time.time()
        # a supervisor (pushpop serve --runtime dapr has one) may start a new daprd itself
        deadline = record.events["fault_start"] + outage_s
        while True:
            replacement = [p for p in pids_named("daprd") if p != pid and _app_id_of(p) == app_id]
            if replacement:
                harness.daprd_pid = replacement[0]
                record.notes.append(f"its supervisor started daprd again as pid {replacement[0]}")
                break
            if time.time() >= deadline:
                record.events["restart_begin"] = time.time()
                log_path = Path(cwd) / f"daprd-restarted-{int(time.time())}.log"
                with open(log_path, "ab") as log:
                    child = subprocess.Popen(
                        cmdline, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )  # fmt: skip
                harness.daprd_pid = child.pid
                record.notes.append(f"started daprd again as pid {child.pid} (log {log_path})")
                break
            time.sleep(0.1)
        record.events["back"] = time.time()


def _app_id_of(pid: int) -> str | None:
    try:
        return _flag(psutil.Process(pid).cmdline(), "--app-id")
    except psutil.Error:
        return None


def _flag(cmdline: list[str], flag: str) -> str | None:
    for i, arg in enumerate(cmdline):
        if arg == flag and i + 1 < len(cmdline):
            return cmdline[i + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return None


FAULTS: dict[str, type[Fault]] = {f.name: f for f in (PostgresRestart, SidecarRestart)}


class FaultThread(threading.Thread):
    """Waits for the load to start (``started.json``), injects, writes ``faults.json``."""

    def __init__(
        self,
        fault: Fault,
        harness: Harness,
        out_dir: Path,
        duration: float,
        outage_s: float | None = None,
    ) -> None:
        super().__init__(name=f"fault-{fault.name}", daemon=True)
        self.fault, self.harness, self.out_dir, self.duration = fault, harness, out_dir, duration
        self.outage_s = outage_s
        self.record: FaultRecord | None = None
        self.cancelled = threading.Event()

    def run(self) -> None:
        started = self.out_dir / "started.json"
        while not started.exists():
            if self.cancelled.wait(0.1):
                return
        started_at = float(json.loads(started.read_text())["started_at"])
        self.record = self.fault.run(self.harness, started_at, self.duration, self.outage_s)
        (self.out_dir / "faults.json").write_text(json.dumps(self.record.to_dict(), indent=1))
