"""S4 -- queue scaling: the same balanced load over 1, 10, 50, 100 (and 1,000, 10,000) ids.

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


class S4eThousandQueues(MixedWorkloadUser):
    """S4e: 1,000 queue ids: most requests wake an actor that was idle a few seconds ago."""

    queue_count = 1000


class S4fTenThousandQueues(MixedWorkloadUser):
    """S4f: 10,000 queue ids: each is touched about once in 50 s at 200 req/s, so nearly
    every request activates an actor (and idle ones are deactivated behind it)."""

    queue_count = 10_000


register_if_locustfile(__name__, events)  # only as `locust -f` of this file
