"""S3 -- mixed push/pop: the steady state most deployments see.

The five user classes keep the names of the original plan so that web-UI habits still
work; they differ only in class attributes of :class:`MixedUser`.
"""

from __future__ import annotations

import random

from locust import events

from load_tests.scenarios.api_calls import Arrival
from load_tests.scenarios.listeners import register_if_locustfile
from load_tests.scenarios.users import QueueUser


class MixedUser(QueueUser):
    """One arrival = a push with probability ``push_ratio``, otherwise a pop."""

    abstract = True
    push_ratio = 0.5

    def arrival(self, ctx: Arrival) -> None:
        queue = self.pick_queue()
        if random.random() < self.push_ratio:
            self.push(queue, self.make_entries(1), ctx)
        else:
            self.pop(queue, self.pop_depth, ctx)


class MixedWorkloadUser(MixedUser):
    """S3a: balanced 50/50 -- start here."""


class ProducerHeavyUser(MixedUser):
    """S3b: 80% push, 20% pop -- the queue grows."""

    push_ratio = 0.8


class ConsumerHeavyUser(MixedUser):
    """S3c: 20% push, 80% pop -- the queue is mostly empty, most pops find nothing."""

    push_ratio = 0.2


class MultiPriorityMixedUser(MixedUser):
    """S3d: balanced, priorities 0-4 at random."""

    priorities = (0, 1, 2, 3, 4)


class BalancedLargeItemsUser(MixedUser):
    """S3e: balanced with 1-10 KB items: serialization and segment size show up."""

    item_bytes = (1024, 10 * 1024)


register_if_locustfile(__name__, events)  # only as `locust -f` of this file
