"""Shared behaviour of every scenario: the queue API calls, open-model arrivals, measurement.

Why one base: a number from S1 and one from S5 must mean the same thing, so every
scenario calls the API, classifies answers, times requests and keeps the ledger the same
way; a scenario only says what one *arrival* does (:meth:`QueueUser.arrival`).

Two ways to drive load (``--pushpop-model``):

``closed`` (Locust's usual model, the default for the web UI)
    each user runs an arrival, waits (``constant_throughput(rate_per_user)``), repeats.
    When the server slows down, the users slow down with it, and the latency they
    record leaves out the requests that were never sent (coordinated omission).
``open`` (what ``pushpop-bench`` uses)
    each user is a generator that starts arrivals on a fixed timetable derived from the
    target rate (the shape's :class:`~load_tests.schedules.Schedule`, shared by the
    master with every worker), whatever the server does. Each arrival runs in its own
    greenlet; its first request's latency is measured from the *scheduled* send time.
    Sends that leave late (the generator was saturated) are counted, and arrivals that
    cannot start within ``MAX_LATENESS`` because ``max_in_flight`` requests are already
    outstanding are counted as dropped rather than silently skipped.

Measurement (see :mod:`load_tests.utils.metrics`): every request's latency goes into
microsecond HdrHistograms per time bucket; workers ship closed buckets to the master in
``report_to_master`` and a final ``pushpop_final`` custom message, so the master's
percentiles are exact over all workers. Pops record each item's time in queue; the
master samples queue depths; the ledger checks at the end that every acknowledged push
was delivered once or is still in its queue.
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import math
import random
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import gevent
from gevent.event import Event
from gevent.pool import Pool
from geventhttpclient import HTTPClient
from locust import events, task
from locust.contrib.fasthttp import FastHttpUser
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner
from locust.user.users import LOCUST_STATE_STOPPING
from locust.user.wait_time import constant_throughput

from load_tests.schedules import Schedule, schedule_from_spec
from load_tests.utils.metrics import (
    LATENCY,
    QUEUE_TIME,
    SEND_LAG,
    SERVICE,
    HistogramSink,
    Ledger,
    LedgerBuffer,
    Recorder,
    Remaining,
    tag,
)

log = logging.getLogger("pushpop.load")

LATE_AFTER = 0.010  # a send leaving more than 10 ms after its slot counts as late
MAX_LATENESS = 2.0  # an arrival that cannot start within 2 s of its slot is dropped
DRAIN_BATCH = 100  # API.md: pop depth <= 100
DEPTH_SAMPLES_PER_TICK = 8  # GET /queue/{id} per sampling tick, round-robin over queues
INFLIGHT_GRACE = 30.0  # how long the end of a run waits for outstanding requests


# --------------------------------------------------------------------------- options


@dataclass
class Options:
    """This package's command-line options, with defaults when Locust did not parse any."""

    model: str = "closed"
    out: str = ""
    run_id: str = ""
    time_scale: float = 1.0
    bucket: float = 1.0
    drain_limit: int = 20_000
    generators: int = 1
    depth_interval: float = 1.0

    @classmethod
    def of(cls, environment: Environment) -> Options:
        po = environment.parsed_options
        if po is None:
            return cls()
        d = cls()
        return cls(
            model=getattr(po, "pushpop_model", d.model) or d.model,
            out=getattr(po, "pushpop_out", d.out) or "",
            run_id=getattr(po, "pushpop_run_id", d.run_id) or "",
            time_scale=float(getattr(po, "pushpop_time_scale", d.time_scale) or d.time_scale),
            bucket=float(getattr(po, "pushpop_bucket", d.bucket) or d.bucket),
            drain_limit=int(getattr(po, "pushpop_drain_limit", d.drain_limit)),
            generators=int(getattr(po, "pushpop_generators", d.generators) or d.generators),
            depth_interval=float(
                getattr(po, "pushpop_depth_interval", d.depth_interval) or d.depth_interval
            ),
        )


@events.init_command_line_parser.add_listener
def _add_arguments(parser: Any) -> None:
    parser.add_argument(
        "--pushpop-model",
        choices=["closed", "open"],
        default="closed",
        include_in_web_ui=True,
        help="closed: users wait for answers (Locust's model); open: arrivals on a timetable",
    )
    parser.add_argument(
        "--pushpop-out", default="", help="directory for histograms, ledger and depth samples"
    )
    parser.add_argument("--pushpop-run-id", default="", help="prefix of this run's queue ids")
    parser.add_argument(
        "--pushpop-time-scale",
        type=float,
        default=1.0,
        include_in_web_ui=True,
        help="multiply every shape's durations by this (0.1 = ten times faster)",
    )
    parser.add_argument("--pushpop-bucket", type=float, default=1.0, help="histogram bucket (s)")
    parser.add_argument(
        "--pushpop-drain-limit",
        type=int,
        default=20_000,
        help="drain (and check by id) at most this many leftover items; purge the rest",
    )
    parser.add_argument(
        "--pushpop-generators",
        type=int,
        default=1,
        help="open model: users (arrival generators) sharing a shape's rate",
    )
    parser.add_argument("--pushpop-depth-interval", type=float, default=1.0)


# --------------------------------------------------------------------------- run state


class RunContext:
    """Per-process facts about the current run, set by the master and sent to workers."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.run_id = ""
        self.model = "closed"
        self.started_at: float | None = None
        self.schedule: Schedule | None = None
        self.generators = 1
        self.ready = Event()

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


RUN = RunContext()
RECORDER = Recorder()
SINK = HistogramSink()
LEDGER_BUFFER = LedgerBuffer()
LEDGER = Ledger()
POOLS: list[Pool] = []  # every generator's in-flight arrivals, joined at the end of a run
_BACKGROUND: list[gevent.Greenlet] = []
_STOP_BACKGROUND = Event()
_DRY_WARNED: set[str] = set()
FINISHED = Event()  # set when the master/local side has written its results


# --------------------------------------------------------------------------- answers


@dataclass
class Arrival:
    """One arrival: its first request is timed from ``scheduled`` (open model)."""

    scheduled: float | None = None

    def claim(self) -> float | None:
        s, self.scheduled = self.scheduled, None
        return s


@dataclass
class Answer:
    status: int
    body: Any
    problem: str | None  # None = counted as a success

    @property
    def ok(self) -> bool:
        return self.problem is None


@dataclass
class Popped:
    items: list[dict[str, Any]]
    lock_id: str | None = None

    @property
    def ids(self) -> list[str]:
        return [i["id"] for i in self.items]


def error_kind(status: int, body: Any, headers: Any, error: BaseException | None = None) -> str:
    """How a failed request is reported: ``"503 STORE_UNAVAILABLE"``, ``"connection: ..."``.

    Locust groups failures by this text, so ``*_failures.csv`` is the errors-by-kind table.
    """
    if status == 0:
        return f"connection: {type(error).__name__ if error else 'no response'}"
    err = body.get("error") if isinstance(body, dict) else None
    if not isinstance(err, dict) or not isinstance(err.get("code"), str):
        return f"{status} UNSTRUCTURED_ERROR_BODY"
    kind = f"{status} {err['code']}"
    if status == 503 and not (headers and headers.get("retry-after")):
        kind += " (no Retry-After)"
    return kind


def _json(resp: Any) -> Any:
    try:
        return resp.json()
    except Exception:
        return None


# --------------------------------------------------------------------------- the user


@dataclass(frozen=True)
class Prepopulation:
    """Items to load into each of a user class's queues before the load starts."""

    items: int
    priorities: tuple[int, ...] = (1,)
    item_bytes: int = 64


class QueueUser(FastHttpUser):
    """A client of the queue API. Subclasses set the class attributes and ``arrival``."""

    abstract = True

    queue_count: ClassVar[int] = 1
    queue_tag: ClassVar[str] = ""  # part of the queue ids; defaults to the class name
    priorities: ClassVar[tuple[int, ...]] = (1,)
    item_bytes: ClassVar[tuple[int, int]] = (64, 64)  # serialized size range of an item
    pop_depth: ClassVar[int] = 1
    rate_per_user: ClassVar[float] = 10.0  # closed-model pacing; open model without a shape
    max_in_flight: ClassVar[int] = 512
    prepopulate: ClassVar[Prepopulation | None] = None
    settle_seconds: ClassVar[float] = 0.0  # wait this long after the load before the ledger

    # FastHttpUser: one connection per outstanding request, up to max_in_flight
    concurrency = 512
    network_timeout = 30.0
    connection_timeout = 5.0

    @classmethod
    def queue_ids(cls) -> list[str]:
        """This class's queues in the current run (same on every worker)."""
        name = cls.queue_tag or cls.__name__.lower()
        prefix = f"{RUN.run_id or 'adhoc'}-{name}"[:110]
        return [f"{prefix}-{i:03d}" for i in range(cls.queue_count)]

    def wait_time(self) -> float:
        return constant_throughput(self.rate_per_user)(self)

    # ------------------------------------------------------------------ driving
    @task
    def drive(self) -> None:
        if RUN.model == "open":
            self._generate()
        else:
            RUN.ready.wait()
            self._run_arrival(Arrival())

    def arrival(self, ctx: Arrival) -> None:
        """What one arrival does (one or more requests); the first is timed from schedule."""
        raise NotImplementedError

    def _run_arrival(self, ctx: Arrival) -> None:
        try:
            self.arrival(ctx)
        except gevent.GreenletExit:
            raise
        except Exception as exc:  # a bug in a scenario must not kill the generator
            log.exception("arrival of %s failed", type(self).__name__)
            RECORDER.count("arrival_errors")
            self.environment.events.user_error.fire(
                user_instance=self, exception=exc, tb=exc.__traceback__
            )

    def _generate(self) -> None:
        """Open model: start arrivals on the timetable until the schedule ends or we stop."""
        RUN.ready.wait()
        pool = Pool(self.max_in_flight)
        POOLS.append(pool)
        # The timetable starts when the run started, not when this generator was spawned:
        # arrivals due before a late spawn are sent at once and counted late, never lost.
        start = RUN.started_at or time.time()
        rate = RUN.generator_rate(start, self.rate_per_user) or 1.0
        slot = start + random.random() / max(rate, 1e-9)  # random phase per generator
        while self._state != LOCUST_STATE_STOPPING:
            rate = RUN.generator_rate(slot, self.rate_per_user)
            if rate is None:  # the schedule is over: idle until the shape stops us
                pool.join(timeout=INFLIGHT_GRACE)
                while self._state != LOCUST_STATE_STOPPING:
                    gevent.sleep(0.2)
                break
            if rate <= 0:
                gevent.sleep(0.05)
                slot = max(slot, time.time())
                continue
            delay = slot - time.time()
            if delay > 0:
                gevent.sleep(delay)
            self._dispatch(pool, slot)
            slot += 1.0 / rate
        pool.join(timeout=INFLIGHT_GRACE)

    def _dispatch(self, pool: Pool, slot: float) -> None:
        RECORDER.count("scheduled")
        if pool.full():
            pool.wait_available(timeout=max(0.0, slot + MAX_LATENESS - time.time()))
            if pool.full():
                RECORDER.count("dropped")
                return
        lag = time.time() - slot
        RECORDER.record(tag(SEND_LAG, "send"), max(0.0, lag) * 1e6)
        if lag > LATE_AFTER:
            RECORDER.count("late")
        pool.spawn(self._run_arrival, Arrival(scheduled=slot))
        RECORDER.gauge_max("in_flight_max", len(pool))

    # ------------------------------------------------------------------ choices
    def pick_queue(self) -> str:
        return random.choice(self.queue_ids())

    def pick_priority(self) -> int:
        return random.choice(self.priorities)

    def make_item(self) -> dict[str, Any]:
        size = random.randint(*self.item_bytes)
        return {"n": random.getrandbits(32), "pad": "x" * max(0, size - 30)}

    def make_entries(self, n: int = 1) -> list[dict[str, Any]]:
        return [{"item": self.make_item(), "priority": self.pick_priority()} for _ in range(n)]

    # ------------------------------------------------------------------ requests
    def request(
        self,
        method: str,
        path: str,
        *,
        name: str,
        ctx: Arrival,
        body: Any = None,
        raw: bytes | None = None,
        judge: Callable[[int, Any, Any], str | None] | None = None,
        queue: str | None = None,
    ) -> Answer:
        """Send one request; ``judge(status, body, headers)`` returns a problem or ``None``.

        The default judge accepts 2xx and names anything else by :func:`error_kind`.
        """
        intended = ctx.claim()
        headers = {"Content-Type": "application/json"} if raw is not None else None
        try:
            with self.client.request(
                method,
                path,
                name=name,
                json=body,
                data=raw,
                headers=headers,
                catch_response=True,
            ) as resp:
                done = time.time()
                meta = resp.request_meta
                service_ms = float(meta["response_time"])
                meta["context"]["pushpop_service_ms"] = service_ms
                if intended is not None:
                    meta["response_time"] = max(service_ms, (done - intended) * 1000.0)
                status = int(resp.status_code or 0)
                parsed = _json(resp) if status else None
                if judge is not None:
                    problem = judge(status, parsed, resp.headers)
                elif 200 <= status < 300:
                    problem = None
                else:
                    problem = error_kind(status, parsed, resp.headers, getattr(resp, "error", None))
                if problem is None:
                    resp.success()
                else:
                    resp.failure(problem)
                return Answer(status, parsed, problem)
        except gevent.GreenletExit:
            if queue:
                LEDGER_BUFFER.uncertain(queue, f"{method} {name} killed in flight")
            raise

    def push(
        self, queue: str, entries: list[dict[str, Any]], ctx: Arrival, name: str = "push"
    ) -> list[str] | None:
        """Push ``entries`` (single form for one item, bulk form otherwise); ids on success."""
        body: dict[str, Any] = (
            {"item": entries[0]["item"], "priority": entries[0]["priority"]}
            if len(entries) == 1
            else {"items": entries}
        )

        def judge(status: int, data: Any, headers: Any) -> str | None:
            if status != 200:
                return error_kind(status, data, headers)
            ids = data.get("ids") if isinstance(data, dict) else None
            if (
                not isinstance(ids, list)
                or len(ids) != len(entries)
                or data.get("pushed") != len(entries)
            ):
                return "contract: push answer without one id per item"
            return None

        answer = self.request(
            "POST", f"/queue/{queue}/push", name=name, ctx=ctx, body=body, judge=judge, queue=queue
        )
        if answer.ok:
            ids = [str(i) for i in answer.body["ids"]]
            LEDGER_BUFFER.pushed(queue, ids)
            RECORDER.count("items_pushed", len(ids))
            return ids
        if answer.status == 0 or (answer.status >= 500 and answer.status != 503):
            LEDGER_BUFFER.uncertain(queue, "push without a definite answer")
        return None

    def pop(
        self,
        queue: str,
        depth: int,
        ctx: Arrival,
        *,
        ttl: int | None = None,
        name: str | None = None,
    ) -> Popped | None:
        """Pop up to ``depth`` items (with a lock of ``ttl`` seconds when given)."""
        path = f"/queue/{queue}/pop?depth={depth}"
        if ttl is not None:
            path += f"&require_ack=true&ttl_seconds={ttl}"
        name = name or ("pop+ack" if ttl is not None else "pop")

        def judge(status: int, data: Any, headers: Any) -> str | None:
            if status != 200:
                return error_kind(status, data, headers)
            items = data.get("items") if isinstance(data, dict) else None
            if not isinstance(items, list) or len(items) > depth:
                return "contract: pop answer without an item list of at most depth"
            for it in items:
                if (
                    not isinstance(it, dict)
                    or not {"id", "item", "priority", "enqueued_at"} <= it.keys()
                ):
                    return "contract: popped item lacks id/item/priority/enqueued_at"
            order = [(int(i["priority"]), len(str(i["id"])), str(i["id"])) for i in items]
            if order != sorted(order):
                return "contract: pop not in priority-then-FIFO order"
            if ttl is not None and items and not data.get("lock_id"):
                return "contract: pop with require_ack returned items without lock_id"
            return None

        answer = self.request("POST", path, name=name, ctx=ctx, judge=judge, queue=queue)
        if not answer.ok:
            if answer.status == 0 or (answer.status >= 500 and answer.status != 503):
                LEDGER_BUFFER.uncertain(queue, "pop without a definite answer")
            return None
        items = answer.body["items"]
        now = time.time()
        for it in items:
            RECORDER.record(
                tag(QUEUE_TIME, name), max(0.0, now - float(it["enqueued_at"])) * 1e6, now
            )
        RECORDER.count("items_popped", len(items))
        if not items:
            RECORDER.count("empty_pops")
        popped = Popped(items=items, lock_id=answer.body.get("lock_id"))
        if ttl is None:
            LEDGER_BUFFER.final(queue, popped.ids)
        return popped

    def acknowledge(self, queue: str, popped: Popped, ctx: Arrival) -> bool:
        """Acknowledge a lock; a 410 (it expired first) means its items are back in the queue."""

        def judge(status: int, data: Any, headers: Any) -> str | None:
            if status == 200:
                return (
                    None if isinstance(data, dict) and "acknowledged" in data else "contract: ack"
                )
            if status == 410 and isinstance(data, dict):
                return None  # the lock expired first: not a failure, the items come back
            return error_kind(status, data, headers)

        answer = self.request(
            "POST",
            f"/queue/{queue}/acknowledge",
            name="acknowledge",
            ctx=ctx,
            body={"lock_id": popped.lock_id},
            judge=judge,
            queue=queue,
        )
        if answer.ok and answer.status == 200:
            LEDGER_BUFFER.final(queue, popped.ids)
            return True
        LEDGER_BUFFER.abandoned(queue, popped.ids)
        if answer.status == 410:
            RECORDER.count("acks_too_late")
        return False

    def abandon(self, queue: str, popped: Popped) -> None:
        """Leave a lock to expire: its items must come back (the ledger checks it)."""
        LEDGER_BUFFER.abandoned(queue, popped.ids)
        RECORDER.count("locks_abandoned")

    def expect_rejection(
        self,
        method: str,
        path: str,
        *,
        name: str,
        ctx: Arrival,
        status: int,
        code: str,
        mentions: str,
        body: Any = None,
        raw: bytes | None = None,
    ) -> bool:
        """An invalid request counts as a success only when it is refused exactly as API.md says:
        the status, the error code, and a message naming the offending field."""

        def judge(got: int, data: Any, headers: Any) -> str | None:
            err = data.get("error") if isinstance(data, dict) else None
            got_code = err.get("code") if isinstance(err, dict) else None
            message = str(err.get("message", "")) if isinstance(err, dict) else ""
            if got == status and got_code == code and mentions in message.lower():
                return None
            return f"expected {status} {code} naming '{mentions}', got {got} {got_code}"

        answer = self.request(method, path, name=name, ctx=ctx, body=body, raw=raw, judge=judge)
        RECORDER.count("rejections_ok" if answer.ok else "rejections_wrong")
        return answer.ok

    def warn_dry(self, queue: str) -> None:
        """A prepopulated queue answered empty: later pops measure an empty queue."""
        RECORDER.count("dry_pops")
        if queue not in _DRY_WARNED:
            _DRY_WARNED.add(queue)
            log.warning(
                "queue %s ran dry %.1fs into the load; pops from now on measure an empty queue",
                queue,
                RUN.elapsed(),
            )


def queue_user_classes(environment: Environment) -> list[type[QueueUser]]:
    return [c for c in environment.user_classes if issubclass(c, QueueUser)]


# --------------------------------------------------------------------------- side channel


class ApiClient:
    """Requests that are measurement, not load (depth samples, the final drain).

    geventhttpclient rather than httpx: httpx pulls in trio when it is installed, which
    needs ``select.epoll`` -- gone once gevent has monkey-patched the process. And not
    ``self.client``: these requests must not appear in Locust's statistics.
    """

    def __init__(self, host: str, timeout: float = 60.0) -> None:
        self._http = HTTPClient.from_url(host, network_timeout=timeout, connection_timeout=5.0)

    def call(self, method: str, path: str) -> tuple[int, Any]:
        resp = self._http.request(method, path, body=b"", headers={"Accept": "application/json"})
        raw = resp.read()
        try:
            return resp.status_code, json.loads(raw) if raw else None
        finally:
            resp.release()

    def ok(self, method: str, path: str) -> Any:
        status, body = self.call(method, path)
        if status != 200:
            raise RuntimeError(f"{method} {path}: {status} {body}")
        return body

    def close(self) -> None:
        self._http.close()


# --------------------------------------------------------------------------- run lifecycle


def _is_master(environment: Environment) -> bool:
    return isinstance(environment.runner, MasterRunner)


def _is_worker(environment: Environment) -> bool:
    return isinstance(environment.runner, WorkerRunner)


def _out_dir(environment: Environment) -> Path | None:
    opts = Options.of(environment)
    return Path(opts.out) if opts.out else None


@events.init.add_listener
def _on_init(environment: Environment, **_: Any) -> None:
    opts = Options.of(environment)
    RUN.reset()
    RUN.model = opts.model
    runner = environment.runner
    if _is_worker(environment):
        RECORDER.configure(opts.bucket, source=f"worker-{uuid.uuid4().hex[:6]}")
        runner.register_message(
            "pushpop_run", lambda environment, msg, **kw: RUN.apply_message(msg.data)
        )
    else:
        RECORDER.configure(opts.bucket, source="local")
    if _is_master(environment):
        runner.register_message("pushpop_final", _on_final_from_worker)


@events.report_to_master.add_listener
def _on_report_to_master(client_id: str, data: dict[str, Any]) -> None:
    data["pushpop"] = {
        "buckets": [b.to_dict() for b in RECORDER.drain()],
        "ledger": LEDGER_BUFFER.drain(),
    }


@events.worker_report.add_listener
def _on_worker_report(client_id: str, data: dict[str, Any]) -> None:
    _merge_payload(data.get("pushpop"))


def _on_final_from_worker(environment: Environment, msg: Any, **_: Any) -> None:
    _merge_payload(msg.data)


def _merge_payload(payload: dict[str, Any] | None) -> None:
    if not payload:
        return
    from load_tests.utils.metrics import Bucket

    SINK.add(Bucket.from_dict(b) for b in payload.get("buckets", []))
    LEDGER.merge(payload.get("ledger", {}))


@events.request.add_listener
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
    RECORDER.record(tag(LATENCY, name), latency_ms * 1000.0, now)
    RECORDER.record(tag(SERVICE, name), float(service_ms) * 1000.0, now)
    RECORDER.count("requests", 1, now)
    if exception is not None:
        RECORDER.count("failures", 1, now)
        RECORDER.count(f"fail:{str(exception)[:80]}", 1, now)


@events.test_start.add_listener
def _on_test_start(environment: Environment, **_: Any) -> None:
    if _is_worker(environment):
        return  # workers get everything from the master's pushpop_run message
    try:
        _start_run(environment)
    except Exception as exc:
        log.exception("setting up the run failed")
        out = _out_dir(environment)
        if out:
            out.mkdir(parents=True, exist_ok=True)
            (out / "setup_error.txt").write_text(repr(exc))
        FINISHED.set()
        raise


def _start_run(environment: Environment) -> None:
    opts = Options.of(environment)
    RUN.reset()
    RUN.model = opts.model
    RUN.run_id = opts.run_id or f"r{time.strftime('%H%M%S')}-{uuid.uuid4().hex[:6]}"
    LEDGER.__init__()  # type: ignore[misc]
    LEDGER_BUFFER.drain()
    RECORDER.drain(final=True)
    _DRY_WARNED.clear()
    POOLS.clear()
    FINISHED.clear()
    out = _out_dir(environment)
    SINK.open(out)
    prepopulated = _prepopulate(environment, out)
    shape = environment.shape_class
    schedule = getattr(shape, "schedule", None)
    RUN.schedule = schedule if opts.model == "open" else None
    RUN.generators = max(1, getattr(shape, "generators", opts.generators))
    RUN.started_at = time.time()
    queues = [q for cls in queue_user_classes(environment) for q in cls.queue_ids()]
    if out:
        started = {
            **RUN.to_message(),
            "queues": queues,
            "user_classes": [c.__name__ for c in environment.user_classes],
            "prepopulated": prepopulated,
            "host": environment.host,
        }
        tmp = out / "started.json.tmp"
        tmp.write_text(json.dumps(started, indent=1))
        tmp.replace(out / "started.json")  # atomic: the fault thread polls for it
    if _is_master(environment):
        environment.runner.send_message("pushpop_run", RUN.to_message())
    _STOP_BACKGROUND.clear()
    _BACKGROUND[:] = [
        gevent.spawn(_flush_loop),
        gevent.spawn(_sample_depths, environment.host or "", queues, out, opts.depth_interval),
    ]
    RUN.ready.set()
    log.info("run %s started (%s model, %d queues)", RUN.run_id, RUN.model, len(queues))


def _prepopulate(environment: Environment, out: Path | None) -> dict[str, Any]:
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
        LEDGER.merge({"pushed": ids})
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


def _flush_loop() -> None:
    """Master/local: move this process's closed buckets into the sink every second."""
    while not _STOP_BACKGROUND.wait(1.0):
        SINK.add(RECORDER.drain())
        SINK.flush()


def _sample_depths(host: str, queues: list[str], out: Path | None, interval: float) -> None:
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
            if _STOP_BACKGROUND.wait(interval):
                break
    finally:
        client.close()
    if f:
        f.close()


@events.test_stop.add_listener
def _on_test_stop(environment: Environment, **_: Any) -> None:
    try:
        _finish_run(environment)
    except Exception as exc:
        log.exception("finishing the run failed")
        out = _out_dir(environment)
        if out and not _is_worker(environment):
            (out / "ledger.json").write_text(
                json.dumps({"ok": False, "status": "error", "problems": [repr(exc)], "totals": {}})
            )
    finally:
        if not _is_worker(environment):
            RUN.started_at = None
            FINISHED.set()


def _finish_run(environment: Environment) -> None:
    for pool in list(POOLS):
        pool.join(timeout=INFLIGHT_GRACE)
        pool.kill(block=True, timeout=5)
    if _is_worker(environment):
        environment.runner.send_message(
            "pushpop_final",
            {
                "buckets": [b.to_dict() for b in RECORDER.drain(final=True)],
                "ledger": LEDGER_BUFFER.drain(),
            },
        )
        return
    if RUN.started_at is None:
        return  # stopped before it started
    SINK.add(RECORDER.drain(final=True))
    LEDGER.merge(LEDGER_BUFFER.drain())
    _STOP_BACKGROUND.set()
    gevent.joinall(_BACKGROUND, timeout=10)
    classes = queue_user_classes(environment)
    settle = max((c.settle_seconds for c in classes), default=0.0)
    if settle:
        gevent.sleep(settle)
    opts = Options.of(environment)
    queues = sorted(LEDGER.queues() | {q for c in classes for q in c.queue_ids()})
    remaining = drain_queues(environment.host or "", queues, opts.drain_limit)
    report = LEDGER.check(remaining)
    report["run_id"] = RUN.run_id
    report["stopped_at"] = time.time()
    out = _out_dir(environment)
    if out:
        (out / "ledger.json").write_text(json.dumps(report, indent=1))
    SINK.close()
    level = logging.INFO if report["ok"] else logging.ERROR
    log.log(level, "ledger %s: %s", report["status"], report["totals"])
    for p in report["problems"][:10]:
        log.error("ledger: %s", p)


def drain_queues(host: str, queues: Iterable[str], limit: int) -> dict[str, Remaining]:
    """Empty this run's queues: pop (and list) up to ``limit`` items, purge beyond that.

    Draining by id is what lets the ledger prove "no loss, no duplicate"; purging large
    leftovers keeps the store clean when listing them would take too long.
    """
    out: dict[str, Remaining] = {}
    budget = limit
    if not host:
        return out
    client = ApiClient(host)
    try:
        for q in queues:
            stats = _wait_locks(client, q)
            depth, in_flight = int(stats["depth"]), int(stats.get("in_flight", 0))
            if depth <= budget:
                ids: list[str] = []
                while True:
                    items = client.ok("POST", f"/queue/{q}/pop?depth={DRAIN_BATCH}")["items"]
                    if not items:
                        break
                    ids.extend(str(i["id"]) for i in items)
                budget -= len(ids)
                out[q] = Remaining(depth=len(ids), in_flight=in_flight, ids=ids)
            else:
                purged = int(client.ok("DELETE", f"/queue/{q}")["purged"])
                out[q] = Remaining(depth=depth, in_flight=in_flight, purged=purged)
    finally:
        client.close()
    return out


def _wait_locks(client: ApiClient, queue: str, timeout: float = 40.0) -> dict[str, Any]:
    """Stats of ``queue`` once no lock is outstanding (expired ones return their items)."""
    deadline = time.time() + timeout
    while True:
        stats = client.ok("GET", f"/queue/{queue}")
        if not stats.get("in_flight") or time.time() > deadline:
            return stats
        gevent.sleep(0.5)


def target_users(rate: float, per_user: float) -> int:
    """Closed model: users needed for ``rate`` when each makes ``per_user`` arrivals/s."""
    return max(1, math.ceil(rate / max(per_user, 1e-9)))


__all__ = [
    "LEDGER",
    "RECORDER",
    "RUN",
    "Answer",
    "Arrival",
    "Options",
    "Popped",
    "Prepopulation",
    "QueueUser",
    "drain_queues",
    "error_kind",
    "target_users",
]
