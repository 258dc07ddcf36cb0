"""S2 -- pop-only from prepopulated queues: the read path.

The master loads 10K items into the queue before the load starts (the prepopulator,
verified by depth). At S2b/S2c's rates the queue runs dry before a minute is over; that
is reported (a warning and a ``dry_pops`` count) rather than hidden, because from then
on the pops measure an empty queue.
"""

from __future__ import annotations

from locust import events

from load_tests.scenarios.api_calls import Arrival
from load_tests.scenarios.listeners import register_if_locustfile
from load_tests.scenarios.users import Prepopulation, QueueUser


class PopOnlyUser(QueueUser):
    """One arrival = one pop of ``pop_depth`` items."""

    abstract = True
    prepopulate = Prepopulation(items=10_000, priorities=(0,))

    def arrival(self, ctx: Arrival) -> None:
        queue = self.pick_queue()
        popped = self.pop(queue, self.pop_depth, ctx)
        if popped is not None and not popped.items:
            self.warn_dry(queue)


class S2aPopDepth1(PopOnlyUser):
    """S2a: 10K items at one priority, pop depth 1 (run with a 10 -> 100 req/s ramp)."""

    pop_depth = 1


class S2bPopDepth10(PopOnlyUser):
    """S2b: 10K items over priorities 0-2, pop depth 10, 50 req/s."""

    pop_depth = 10
    prepopulate = Prepopulation(items=10_000, priorities=(0, 1, 2))


class S2cPopDepth100(PopOnlyUser):
    """S2c: 10K items over priorities 0-2, pop depth 100 (the maximum), 20 req/s."""

    pop_depth = 100
    prepopulate = Prepopulation(items=10_000, priorities=(0, 1, 2))


class LimitPop(PopOnlyUser):
    """The physical-limit run's pop side: enough items that a closed loop never runs dry."""

    pop_depth = 1
    prepopulate = Prepopulation(items=5_000, priorities=(1,))


register_if_locustfile(__name__, events)  # only as `locust -f` of this file
