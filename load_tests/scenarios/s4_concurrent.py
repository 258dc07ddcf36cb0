"""S4 -- queue scaling: the same balanced load over 1, 10, 50 and 100 queue ids.

Each queue id is one actor, so this measures actor activation and per-actor
serialization: on one queue every request waits for the one before it; on a hundred
they run in parallel, up to the database's connection pool.
"""

from __future__ import annotations

from locust import events

from load_tests.scenarios.listeners import register_if_locustfile
from load_tests.scenarios.s3_mixed import MixedWorkloadUser


class S4aOneQueue(MixedWorkloadUser):
    """S4a: 1 queue id (baseline)."""

    queue_count = 1


class S4bTenQueues(MixedWorkloadUser):
    """S4b: 10 queue ids."""

    queue_count = 10


class S4cFiftyQueues(MixedWorkloadUser):
    """S4c: 50 queue ids."""

    queue_count = 50


class S4dHundredQueues(MixedWorkloadUser):
    """S4d: 100 queue ids."""

    queue_count = 100


register_if_locustfile(__name__, events)  # only as `locust -f` of this file
