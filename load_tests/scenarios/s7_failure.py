"""S7 -- failures: bad requests, outages, and locks left to expire.

S7a-c mix invalid requests into valid traffic. An invalid request counts as a success
only when the service refuses it exactly as docs/api.md says (400, the error code, and a
message that names the field); the valid half must keep working around them.

S7d and S7e are ordinary balanced load; the fault is injected from outside by the
runner (``load_tests/faults.py``): PostgreSQL stopped and started on the same port, or
``daprd`` restarted. The analysis then separates the expected ``503
STORE_UNAVAILABLE`` answers during the outage from anything else, and the ledger
proves that no acknowledged push was lost.

S7f pops with locks and deliberately abandons some of them; the ledger checks at the
end that every abandoned item came back.
"""

from __future__ import annotations

import random
from typing import Any, ClassVar

from locust import events

from load_tests.scenarios.api_calls import Arrival
from load_tests.scenarios.listeners import register_if_locustfile
from load_tests.scenarios.s3_mixed import MixedUser


class ValidationUser(MixedUser):
    """Half the arrivals are invalid requests of one kind, the rest balanced valid traffic."""

    abstract = True
    invalid_ratio: ClassVar[float] = 0.5

    def arrival(self, ctx: Arrival) -> None:
        if random.random() < self.invalid_ratio:
            self.send_invalid(self.pick_queue(), ctx)
        else:
            super().arrival(ctx)

    def send_invalid(self, queue: str, ctx: Arrival) -> None:
        raise NotImplementedError


class S7aInvalidItems(ValidationUser):
    """S7a: items that are not JSON objects, in the single and the bulk form."""

    BAD_ITEMS: ClassVar[tuple[Any, ...]] = ([1, 2], "text", 42, 3.5, True, None)

    def send_invalid(self, queue: str, ctx: Arrival) -> None:
        bad = random.choice(self.BAD_ITEMS)
        body = (
            {"item": bad, "priority": 1}
            if random.random() < 0.5
            else {"items": [{"item": {"ok": 1}}, {"item": bad}]}
        )
        self.expect_rejection(
            "POST",
            f"/queue/{queue}/push",
            name="push:invalid-item",
            ctx=ctx,
            body=body,
            status=400,
            code="INVALID_ITEM",
            mentions="item",
        )


class S7bNegativePriorities(ValidationUser):
    """S7b: negative priorities (docs/api.md: 0 .. 2^31-1)."""

    def send_invalid(self, queue: str, ctx: Arrival) -> None:
        priority = random.choice((-1, -7, -(2**31)))
        self.expect_rejection(
            "POST",
            f"/queue/{queue}/push",
            name="push:negative-priority",
            ctx=ctx,
            body={"item": {"ok": 1}, "priority": priority},
            status=400,
            code="INVALID_PRIORITY",
            mentions="priority",
        )


class S7cDepthTooLarge(ValidationUser):
    """S7c: pop depth above 100."""

    def send_invalid(self, queue: str, ctx: Arrival) -> None:
        depth = random.choice((101, 1000, 10**6))
        self.expect_rejection(
            "POST",
            f"/queue/{queue}/pop?depth={depth}",
            name="pop:depth-over-100",
            ctx=ctx,
            status=400,
            code="INVALID_DEPTH",
            mentions="depth",
        )


class OutageUser(MixedUser):
    """Balanced load that keeps arriving through an outage.

    Why a deep pool: during the outage each request waits for the service's store
    deadline (seconds) before its 503, so hundreds are outstanding at 50 req/s.
    """

    abstract = True
    queue_count = 4
    max_in_flight = 2048
    concurrency = 2048


class S7dPostgresRestart(OutageUser):
    """S7d: the runner stops PostgreSQL a third of the way in and starts it again."""


class S7eSidecarRestart(OutageUser):
    """S7e: the runner restarts ``daprd`` (Dapr mode only)."""


class S7fLockExpiry(MixedUser):
    """S7f: pops take a one-second lock; ``ack_ratio`` of them are acknowledged, the rest
    abandoned, so their items must return to the queue and be delivered again."""

    queue_count = 2
    lock_ttl: ClassVar[int] = 1  # docs/api.md's minimum
    ack_ratio: ClassVar[float] = 0.5
    settle_seconds = 2.5  # let the last abandoned locks expire before the ledger drains

    def arrival(self, ctx: Arrival) -> None:
        queue = self.pick_queue()
        if random.random() < self.push_ratio:
            self.push(queue, self.make_entries(1), ctx)
            return
        popped = self.pop(queue, random.randint(1, 3), ctx, ttl=self.lock_ttl)
        if popped is None or not popped.items:
            return
        if random.random() < self.ack_ratio:
            self.acknowledge(queue, popped, Arrival())
        else:
            self.abandon(queue, popped)


register_if_locustfile(__name__, events)  # only as `locust -f` of this file
