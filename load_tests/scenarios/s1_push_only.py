"""S1 -- push-only: the write path (one PostgreSQL transaction per push).

No pops, so queues only grow; the ledger drains them at the end. S1a ramps the rate in
steps so the analysis can find the knee; S1b spreads the same kind of load over ten
actors; S1c adds random priorities, which touch a different tail segment per priority.
"""

from __future__ import annotations

from locust import events

from load_tests.scenarios.api_calls import Arrival
from load_tests.scenarios.listeners import register_if_locustfile
from load_tests.scenarios.users import QueueUser


class PushOnlyUser(QueueUser):
    """One arrival = one single-item push to a random queue of this class."""

    abstract = True
    priorities = (0,)

    def arrival(self, ctx: Arrival) -> None:
        self.push(self.pick_queue(), self.make_entries(1), ctx)


class S1aSingleQueuePush(PushOnlyUser):
    """S1a: one queue, priority 0 (run with a 10 -> 100 req/s step ramp)."""

    queue_count = 1


class S1bTenQueuePush(PushOnlyUser):
    """S1b: ten queues (ten actors) sharing 50 req/s."""

    queue_count = 10


class S1cFivePriorityPush(PushOnlyUser):
    """S1c: one queue, priorities 0-4 at random."""

    queue_count = 1
    priorities = (0, 1, 2, 3, 4)


register_if_locustfile(__name__, events)  # only as `locust -f` of this file
