"""Empty a run's queues at the end, so the ledger can account for every item.

Why draining by id: "no loss, no duplicate" is only provable if every item still in a
queue is seen once more; purging large leftovers instead keeps the store clean when
listing them would take too long (the ledger then checks counts, not ids).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import gevent

from load_tests.scenarios.api_client import ApiClient
from load_tests.utils.metrics import Remaining

DRAIN_BATCH = 100  # API.md: pop depth <= 100


def drain_queues(host: str, queues: Iterable[str], limit: int) -> dict[str, Remaining]:
    """Pop (and list) up to ``limit`` leftover items over all ``queues``; purge beyond that."""
    out: dict[str, Remaining] = {}
    budget = limit
    if not host:
        return out
    client = ApiClient(host)
    try:
        for q in queues:
            stats = _wait_locks(client, q)
            depth, in_flight = int(stats["depth"]), int(stats.get("in_flight", 0))
            if depth <= budget:
                ids: list[str] = []
                while True:
                    items = client.ok("POST", f"/queue/{q}/pop?depth={DRAIN_BATCH}")["items"]
                    if not items:
                        break
                    ids.extend(str(i["id"]) for i in items)
                budget -= len(ids)
                out[q] = Remaining(depth=len(ids), in_flight=in_flight, ids=ids)
            else:
                purged = int(client.ok("DELETE", f"/queue/{q}")["purged"])
                out[q] = Remaining(depth=depth, in_flight=in_flight, purged=purged)
    finally:
        client.close()
    return out


def _wait_locks(client: ApiClient, queue: str, timeout: float = 40.0) -> dict[str, Any]:
    """Stats of ``queue`` once no lock is outstanding (expired ones return their items)."""
    deadline = time.time() + timeout
    while True:
        stats = client.ok("GET", f"/queue/{queue}")
        if not stats.get("in_flight") or time.time() > deadline:
            return stats
        gevent.sleep(0.5)


__all__ = ["DRAIN_BATCH", "drain_queues"]
