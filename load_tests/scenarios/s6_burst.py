"""S6 -- bursts: the balanced workload under sine, square and spike shapes.

The shapes live in ``load_tests/shapes.py`` (``SineBurstShape``, ``SquareBurstShape``,
``SpikeBurstShape``); the analysis reads the burst windows from the same schedules and
reports how long latency takes to come back to its calm level after each burst.
"""

from __future__ import annotations

from locust import events

from load_tests.scenarios.listeners import register_if_locustfile
from load_tests.scenarios.s3_mixed import MixedWorkloadUser


class BurstUser(MixedWorkloadUser):
    """Balanced push/pop over a few queues, with a deep in-flight pool.

    Why deep: at 500 req/s a server that slows to 100 ms has 50 requests outstanding;
    a shallow pool would turn the generator into a closed loop exactly when it matters.
    """

    queue_count = 4
    max_in_flight = 2048
    concurrency = 2048


register_if_locustfile(__name__, events)  # only as `locust -f` of this file
