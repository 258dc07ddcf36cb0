"""The load generator: :class:`QueueUser`, which every scenario's user class extends.

A scenario only says what one *arrival* does (:meth:`QueueUser.arrival`); how arrivals
are paced is chosen per run (``--pushpop-model``):

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
"""

from __future__ import annotations

import logging
import math
import random
import time
from dataclasses import dataclass
from typing import Any, ClassVar

import gevent
from gevent.pool import Pool
from locust import task
from locust.contrib.fasthttp import FastHttpUser
from locust.env import Environment
from locust.user.users import LOCUST_STATE_STOPPING
from locust.user.wait_time import constant_throughput

from load_tests.scenarios.api_calls import Arrival, QueueApi
from load_tests.scenarios.run_state import STATE
from load_tests.utils.metrics import SEND_LAG, tag

log = logging.getLogger("pushpop.load")

LATE_AFTER = 0.010  # a send leaving more than 10 ms after its slot counts as late
MAX_LATENESS = 2.0  # an arrival that cannot start within 2 s of its slot is dropped
INFLIGHT_GRACE = 30.0  # how long the end of a run waits for outstanding requests


RATE_STEP = 0.01  # s: how finely the next arrival integrates a rate that changes


def next_slot(run: Any, slot: float, rate: float, fallback: float) -> float:
    """The arrival after ``slot``: where the schedule's rate, integrated from ``slot``,
    reaches one arrival. Stepping by ``1 / rate`` of the rate at ``slot`` alone skipped
    up to one old interval's worth of arrivals when the rate rose (10/s -> 100/s: up to
    10 never sent), so the rate is re-read every ``RATE_STEP`` (at most that long's worth
    of error at a step)."""
    owed, t = 1.0, slot
    while True:
        if rate > 0 and owed / rate <= RATE_STEP:
            return t + owed / rate
        owed -= RATE_STEP * rate
        t += RATE_STEP
        now = run.generator_rate(t, fallback)
        if now is None:  # the schedule ends before the next arrival is due
            return t
        rate = max(0.0, now)


@dataclass(frozen=True)
class Prepopulation:
    """Items to load into each of a user class's queues before the load starts."""

    items: int
    priorities: tuple[int, ...] = (1,)
    item_bytes: int = 64


class QueueUser(QueueApi, FastHttpUser):
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
        prefix = f"{STATE.run.run_id or 'adhoc'}-{name}"[:110]
        return [f"{prefix}-{i:03d}" for i in range(cls.queue_count)]

    def wait_time(self) -> float:
        return constant_throughput(self.rate_per_user)(self)

    # ------------------------------------------------------------------ driving
    @task
    def drive(self) -> None:
        if STATE.run.model == "open":
            self._generate()
        else:
            STATE.run.ready.wait()
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
            STATE.recorder.count("arrival_errors")
            self.environment.events.user_error.fire(
                user_instance=self, exception=exc, tb=exc.__traceback__
            )

    def _generate(self) -> None:
        """Open model: start arrivals on the timetable until the schedule ends or we stop."""
        run = STATE.run
        run.ready.wait()
        pool = Pool(self.max_in_flight)
        STATE.pools.append(pool)
        # The timetable starts when the run started, not when this generator was spawned:
        # arrivals due before a late spawn are sent at once and counted late, never lost.
        start = run.started_at or time.time()
        rate = run.generator_rate(start, self.rate_per_user) or 1.0
        slot = start + random.random() / max(rate, 1e-9)  # random phase per generator
        while self._state != LOCUST_STATE_STOPPING:
            rate = run.generator_rate(slot, self.rate_per_user)
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
            slot = next_slot(run, slot, rate, self.rate_per_user)
        pool.join(timeout=INFLIGHT_GRACE)

    def _dispatch(self, pool: Pool, slot: float) -> None:
        recorder = STATE.recorder
        recorder.count("scheduled")
        if pool.full():
            pool.wait_available(timeout=max(0.0, slot + MAX_LATENESS - time.time()))
            if pool.full():
                recorder.count("dropped")
                return
        lag = time.time() - slot
        recorder.record(tag(SEND_LAG, "send"), max(0.0, lag) * 1e6)
        if lag > LATE_AFTER:
            recorder.count("late")
        pool.spawn(self._run_arrival, Arrival(scheduled=slot))
        recorder.gauge_max("in_flight_max", len(pool))

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


def queue_user_classes(environment: Environment) -> list[type[QueueUser]]:
    return [c for c in environment.user_classes if issubclass(c, QueueUser)]


def target_users(rate: float, per_user: float) -> int:
    """Closed model: users needed for ``rate`` when each makes ``per_user`` arrivals/s."""
    return max(1, math.ceil(rate / max(per_user, 1e-9)))


__all__ = [
    "Prepopulation",
    "QueueUser",
    "queue_user_classes",
    "target_users",
]
