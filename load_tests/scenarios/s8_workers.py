"""S8 -- worker fleets: producers feeding workers, end to end.

What users run: producers push at an open-model rate (the schedule, as in S1-S7) and a
fleet of workers long-polls (``wait_seconds``), pops with ack, "works" for a drawn time
and acknowledges -- or releases with a delay (a transient failure), or keeps failing a
*poison* item until the queue's ``max_deliveries`` dead-letters it.

Why a scenario of its own: endpoint latency can look perfect while jobs wait longer and
longer. Here the measures are the ones a worker fleet is judged by: end-to-end time
from push to acknowledge (microsecond histograms, kind ``end_to_end``), time in queue,
worker utilisation, and the backlog (``GET /queue/{id}`` depth over time), whose slope
over the steady part fails the verdict when it grows (``load_tests/analysis/workers.py``).

Variants: S8a balanced, S8b under-provisioned (the backlog must be flagged), S8c poison
items (dead-lettered count = injected count), S8d a burst the fleet must drain, S8e a
thousand idle long-polling workers (1,000 concurrent connections).

End of a run: when the schedule is over the workers keep going, with short polls, until
their queue holds nothing waiting or delayed (at most ``drain_s``), so that a balanced
run ends with every pushed item acknowledged exactly once (the ledger checks it).
"""

from __future__ import annotations

import math
import random
import time
from typing import Any, ClassVar

import gevent
from gevent.event import Event
from gevent.pool import Group
from locust import events

from load_tests.scenarios.api_calls import Arrival
from load_tests.scenarios.api_client import ApiClient, Popped
from load_tests.scenarios.listeners import register_if_locustfile
from load_tests.scenarios.run_state import STATE
from load_tests.scenarios.users import QueueUser
from load_tests.utils.metrics import END_TO_END, tag

DEADLETTER_SUFFIX = "-deadletter"  # docs/api.md: a queue's default dead-letter queue
LONG_POLL = "pop+ack/long-poll"  # its latency is waiting by design: exempt from limits
DRAIN_POLL_S = 1  # the long poll of the drain phase: short, to notice an empty queue soon


class WorkerFleetUser(QueueUser):
    """One user = a producer (the open-model arrivals: one push each) plus ``workers``
    worker greenlets, each long-polling one of the work queues (round robin)."""

    abstract = True
    queue_count = 2
    workers: ClassVar[int] = 8  # worker greenlets per user (generator)
    work_ms: ClassVar[float] = 20.0  # mean of the drawn work time (exponential)
    work_max_ms: ClassVar[float] = 1000.0
    wait_seconds: ClassVar[int] = 2  # long poll while producers run
    lock_ttl: ClassVar[int] = 30  # long enough that no lock expires under a working worker
    release_ratio: ClassVar[float] = 0.0  # transient failures: released after release_delay
    release_delay: ClassVar[int] = 1
    poison_ratio: ClassVar[float] = 0.0  # pushed items that fail every time
    max_deliveries: ClassVar[int] = 0  # 0: leave the queue's setting alone
    drain_s: ClassVar[float] = 10.0  # after the schedule, workers drain at most this long

    _fleet: Group | None = None
    _done: Event | None = None
    _side: ApiClient | None = None

    # ------------------------------------------------------------------ queues
    @classmethod
    def work_queue_ids(cls) -> list[str]:
        return super().queue_ids()

    @classmethod
    def queue_ids(cls) -> list[str]:
        """The work queues and, with ``max_deliveries``, their dead-letter queues: the
        depth sampler watches both, and the final drain hands the dead-letter queues'
        items to the ledger."""
        work = cls.work_queue_ids()
        if not cls.max_deliveries:
            return work
        return work + [q + DEADLETTER_SUFFIX for q in work]

    def pick_queue(self) -> str:
        return random.choice(self.work_queue_ids())

    def side(self) -> ApiClient:
        """Requests that are set-up or measurement, kept out of Locust's statistics."""
        if self._side is None:
            self._side = ApiClient(self.host or "", timeout=10)
        return self._side

    # ------------------------------------------------------------------ driving
    def _generate(self) -> None:
        """Open model: the fleet works while the producer generates, then drains."""
        if self._fleet is None:
            self._start_fleet()
        super()._generate()  # until the shape stops this user
        self._finish_fleet()

    def on_stop(self) -> None:
        self._finish_fleet()

    def _start_fleet(self) -> None:
        if self.max_deliveries:
            for q in self.work_queue_ids():
                self.side().ok(
                    "PUT", f"/queue/{q}/settings", {"max_deliveries": self.max_deliveries}
                )
        self._done = Event()
        self._fleet = Group()
        queues = self.work_queue_ids()
        for i in range(self.workers):
            self._fleet.spawn(self._work_loop, queues[i % len(queues)])

    def _finish_fleet(self) -> None:
        """Producers are over: let the workers drain (bounded), then stop them."""
        if self._fleet is None or self._done is None:
            return
        self._done.set()
        self._fleet.join(timeout=self.drain_s + DRAIN_POLL_S + 2)
        self._fleet.kill(block=True, timeout=5)

    def _producers_over(self) -> bool:
        done = self._done is not None and self._done.is_set()
        over = STATE.run.model == "open" and STATE.run.generator_rate(time.time(), 1.0) is None
        return done or over

    # ------------------------------------------------------------------ producer
    def arrival(self, ctx: Arrival) -> None:
        """One push of one item, stamped with its scheduled send (for push -> ack)."""
        if self._fleet is None:  # closed model (web UI): the first arrival starts it
            self._start_fleet()
        poison = random.random() < self.poison_ratio
        item = self.make_item()
        item["t0"] = ctx.scheduled or time.time()
        if poison:
            item["poison"] = True
        ids = self.push(self.pick_queue(), [{"item": item, "priority": self.pick_priority()}], ctx)
        if ids and poison:
            STATE.recorder.count("poison_pushed", len(ids))

    # ------------------------------------------------------------------ worker
    def _work_loop(self, queue: str) -> None:
        recorder = STATE.recorder
        drain_until: float | None = None
        while True:
            if drain_until is None and self._producers_over():
                drain_until = time.time() + self.drain_s
            if drain_until is not None and time.time() > drain_until:
                return
            wait = self._poll_wait() if drain_until is None else DRAIN_POLL_S
            t0 = time.time()
            popped = self.pop(queue, 1, Arrival(), ttl=self.lock_ttl, name=LONG_POLL, wait=wait)
            if popped is None:  # an error answer: counted by the request; do not spin
                gevent.sleep(0.2)
            elif popped.items:
                recorder.count("work_s", self._handle(queue, popped))
            elif drain_until is not None and self._nothing_left(queue):
                recorder.count("worker_s", time.time() - t0)
                return
            recorder.count("worker_s", time.time() - t0)

    def _poll_wait(self) -> int:
        """``wait_seconds``, but no poll outlasts the schedule by more than a second: at
        the end every worker notices at once that it is time to drain."""
        run = STATE.run
        if run.schedule is None or run.started_at is None:
            return self.wait_seconds
        left = run.started_at + run.schedule.duration - time.time()
        return int(max(DRAIN_POLL_S, min(self.wait_seconds, math.ceil(left))))

    def _handle(self, queue: str, popped: Popped) -> float:
        """Work on the popped item, then acknowledge, release or fail it; the work time."""
        work = min(random.expovariate(1000.0 / self.work_ms), self.work_max_ms / 1000.0)
        gevent.sleep(work)
        it = popped.items[0]
        body: dict[str, Any] = it.get("item") or {}
        if body.get("poison"):
            last = bool(self.max_deliveries) and int(it.get("deliveries", 1)) >= self.max_deliveries
            if self.release(queue, popped, Arrival(), gone=last) and last:
                STATE.recorder.count("poison_dead_lettered")
        elif random.random() < self.release_ratio:
            if self.release(queue, popped, Arrival(), delay=self.release_delay):
                STATE.recorder.count("released")
        elif self.acknowledge(queue, popped, Arrival()):
            now = time.time()
            t0 = float(body.get("t0", it.get("enqueued_at", now)))
            STATE.recorder.record(tag(END_TO_END, "push->ack"), max(0.0, now - t0) * 1e6, now)
            STATE.recorder.count("acked")
        return work

    def _nothing_left(self, queue: str) -> bool:
        """Nothing waiting and nothing delayed (locks of other workers will be acked)."""
        try:
            stats = self.side().ok("GET", f"/queue/{queue}")
        except Exception:
            return False
        return int(stats.get("depth", 0)) + int(stats.get("delayed", 0)) == 0


class S8aBalanced(WorkerFleetUser):
    """S8a: 8 workers for 40 items/s of 20 ms jobs (a tenth of the fleet's capacity), a
    few transient failures released with a one-second backoff."""

    release_ratio = 0.02
    settle_seconds = 1.5  # a release's delay must be over before the ledger drains


class S8bUnderProvisioned(WorkerFleetUser):
    """S8b: 2 workers for 40 items/s of 80 ms jobs: about half the arrivals can be
    served, every request is fast, and the backlog grows without bound."""

    workers = 2
    work_ms = 80.0
    drain_s = 2.0  # it cannot drain: do not wait for it


class S8cPoison(WorkerFleetUser):
    """S8c: 5 % of the items always fail; ``max_deliveries`` 3 dead-letters them, and
    the dead-letter queues must end up holding exactly the injected count."""

    poison_ratio = 0.05
    max_deliveries = 3


class S8dBurst(WorkerFleetUser):
    """S8d: a burst of 200 items/s over a base of 30 into 4 workers (about 160/s of
    capacity): a backlog builds, and the fleet must drain it (time to drain reported)."""

    workers = 4


class S8eThousandWorkers(WorkerFleetUser):
    """S8e: 1,000 workers long-polling 10 queues for 20 s at a time: 1,000 concurrent
    connections, nearly all idle, while 40 items/s flow through. The server must be
    allowed that many (``PUSHPOP_MAX_CONNECTIONS`` above 1,000: its default answers the
    surplus ``503 TOO_MANY_CONNECTIONS``)."""

    queue_count = 10
    workers = 1000
    wait_seconds = 20
    concurrency = 1200  # FastHttpUser's connection pool: one per outstanding request
    max_in_flight = 1200


register_if_locustfile(__name__, events)  # only as `locust -f` of this file
