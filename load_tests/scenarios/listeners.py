"""The Locust event listeners of this package, registered by one explicit call.

Why explicit: listeners that register as a side effect of an import run once per
import path, or not at all when nothing happens to import the right module first.
A locustfile calls :func:`register_listeners` (as Locust's own examples add theirs in
the locustfile), so every runner -- local, master, worker -- gets each listener
exactly once.

Measurement flow (see :mod:`load_tests.utils.metrics`): every request's latency goes
into microsecond HdrHistograms per time bucket; workers ship closed buckets to the
master in ``report_to_master`` and a final ``pushpop_final`` message, so the master's
percentiles are exact over all workers. Pops record each item's time in queue; the
master samples queue depths; the ledger checks at the end that every acknowledged push
was delivered once or is still in its queue.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
import weakref
from typing import Any

from locust.env import Environment
from locust.event import Events

from load_tests.scenarios import lifecycle
from load_tests.scenarios.lifecycle import is_master, is_worker
from load_tests.scenarios.options import Options, add_arguments
from load_tests.scenarios.run_state import STATE
from load_tests.utils.metrics import LATENCY, SERVICE, Bucket, tag

log = logging.getLogger("pushpop.load")

_REGISTERED: weakref.WeakSet[Events] = weakref.WeakSet()


def register_listeners(events: Events) -> None:
    """Add this package's listeners to ``events``; a second call for the same one is a no-op."""
    if events in _REGISTERED:
        return
    _REGISTERED.add(events)
    events.init_command_line_parser.add_listener(add_arguments)
    events.init.add_listener(_on_init)
    events.report_to_master.add_listener(_on_report_to_master)
    events.worker_report.add_listener(_on_worker_report)
    events.request.add_listener(_on_request)
    events.test_start.add_listener(_on_test_start)
    events.test_stop.add_listener(_on_test_stop)


def register_if_locustfile(module_name: str, events: Events) -> None:
    """Register only when the calling scenario file is this run's locustfile.

    The load plan runs ``locust -f scenarios/s3_mixed.py``: then the scenario file *is*
    the locustfile, and Locust loads it under its bare file name (``s3_mixed``).
    Imported as part of the package (``load_tests.scenarios.s3_mixed``, by the
    catalogue or by another scenario) it must register nothing.
    """
    if "." not in module_name:
        register_listeners(events)


def _on_init(environment: Environment, **_: Any) -> None:
    opts = Options.of(environment)
    runner = environment.runner
    if is_worker(environment):
        source = f"worker-{uuid.uuid4().hex[:6]}"
        STATE.configure(model=opts.model, bucket=opts.bucket, source=source)
        runner.register_message(
            "pushpop_run", lambda environment, msg, **kw: STATE.run.apply_message(msg.data)
        )
        runner.register_message(
            lifecycle.STOP_MESSAGE, lambda environment, msg, **_: lifecycle.stop_worker(environment)
        )
    else:
        STATE.configure(model=opts.model, bucket=opts.bucket, source="local")
    if is_master(environment):
        runner.register_message("pushpop_final", _on_final_from_worker)


def _on_report_to_master(client_id: str, data: dict[str, Any]) -> None:
    data["pushpop"] = {
        "buckets": [b.to_dict() for b in STATE.recorder.drain()],
        "ledger": STATE.ledger_buffer.drain(),
    }


def _on_worker_report(client_id: str, data: dict[str, Any]) -> None:
    if STATE.run.started_at is not None:
        STATE.run.workers.add(client_id)  # one that joined after the start counts too
    _merge_payload(data.get("pushpop"))


def _on_final_from_worker(environment: Environment, msg: Any, **_: Any) -> None:
    _merge_payload(msg.data)
    STATE.run.finals.add(msg.node_id)


def _merge_payload(payload: dict[str, Any] | None) -> None:
    if not payload:
        return
    STATE.sink.add(Bucket.from_dict(b) for b in payload.get("buckets", []))
    STATE.ledger.merge(payload.get("ledger", {}))


def _on_request(
    request_type: str,
    name: str,
    response_time: float,
    response_length: int,
    exception: BaseException | None = None,
    context: dict[str, Any] | None = None,
    **_: Any,
) -> None:
    now = time.time()
    latency_ms = float(response_time or 0.0)
    service_ms = (context or {}).get("pushpop_service_ms", latency_ms)
    recorder = STATE.recorder
    recorder.record(tag(LATENCY, name), latency_ms * 1000.0, now)
    recorder.record(tag(SERVICE, name), float(service_ms) * 1000.0, now)
    recorder.count("requests", 1, now)
    if exception is not None:
        recorder.count("failures", 1, now)
        recorder.count(f"fail:{str(exception)[:80]}", 1, now)


def _on_test_start(environment: Environment, **_: Any) -> None:
    if is_worker(environment):
        return  # workers get everything from the master's pushpop_run message
    try:
        lifecycle.start_run(environment)
    except Exception as exc:
        log.exception("setting up the run failed")
        out = Options.of(environment).out_dir
        if out:
            out.mkdir(parents=True, exist_ok=True)
            (out / "setup_error.txt").write_text(repr(exc))
        STATE.finished.set()
        raise


def _on_test_stop(environment: Environment, **_: Any) -> None:
    try:
        lifecycle.finish_run(environment)
    except Exception as exc:
        log.exception("finishing the run failed")
        out = Options.of(environment).out_dir
        if out and not is_worker(environment):
            (out / "ledger.json").write_text(
                json.dumps({"ok": False, "status": "error", "problems": [repr(exc)], "totals": {}})
            )
    finally:
        if not is_worker(environment):
            STATE.run.started_at = None
            STATE.finished.set()


__all__ = ["register_if_locustfile", "register_listeners"]
