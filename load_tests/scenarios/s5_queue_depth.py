"""S5 -- queue depth: does a long queue make pops slower?

The queue is prepopulated to a depth, then every arrival pops 10 items *and pushes 10
back* (one bulk push). Why the refill: at 50 pops/s of 10 items a 1K-item queue would
be empty in two seconds, and the run would measure an empty queue, not a deep one.
The refill keeps the depth at its label for the whole run; the pop latency is the
number reported against depth.
"""

from __future__ import annotations

from locust import events

from load_tests.scenarios.api_calls import Arrival
from load_tests.scenarios.listeners import register_if_locustfile
from load_tests.scenarios.users import Prepopulation, QueueUser


class DepthProbeUser(QueueUser):
    """One arrival = pop 10, then push 10 back (timed separately)."""

    abstract = True
    pop_depth = 10
    priorities = (1,)

    def arrival(self, ctx: Arrival) -> None:
        queue = self.pick_queue()
        self.pop(queue, self.pop_depth, ctx)
        self.push(queue, self.make_entries(self.pop_depth), ctx, name="push-refill")


class S5aEmptyQueue(DepthProbeUser):
    """S5a: starts empty (depth oscillates between 0 and 10)."""


class S5bThousandItems(DepthProbeUser):
    """S5b: 1K items."""

    prepopulate = Prepopulation(items=1_000)


class S5cTenThousandItems(DepthProbeUser):
    """S5c: 10K items."""

    prepopulate = Prepopulation(items=10_000)


class S5dHundredThousandItems(DepthProbeUser):
    """S5d: 100K items."""

    prepopulate = Prepopulation(items=100_000)


class S5eMillionItems(DepthProbeUser):
    """S5e (extra point): 1M items -- docs/api.md promises it pops as fast as an empty queue."""

    prepopulate = Prepopulation(items=1_000_000)


register_if_locustfile(__name__, events)  # only as `locust -f` of this file
