"""Empty a run's queues at the end, so the ledger can account for every item.

Why draining by id: "no loss, no duplicate" is only provable if every item still in a
queue is seen once more; purging large leftovers instead keeps the store clean when
listing them would take too long (the ledger then checks counts, not ids).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlencode

import gevent

from load_tests.scenarios.api_client import ApiClient
from load_tests.utils.metrics import Remaining

DRAIN_BATCH = 100  # docs/api.md: pop depth <= 100


def drain_queues(host: str, queues: Iterable[str], limit: int) -> dict[str, Remaining]:
    """Pop (and list) up to ``limit`` leftover items over all ``queues``; purge beyond that.

    Queues that ``GET /queues`` does not list hold nothing (no item, delayed item or
    lock) and are skipped: a run over 10,000 queue ids asks about the few with leftovers
    instead of all of them. Absent from the answer, they count as empty in the ledger.
    """
    out: dict[str, Remaining] = {}
    budget = limit
    if not host:
        return out
    queues = list(queues)
    client = ApiClient(host)
    try:
        listed = _listed(client, queues)
        for q in queues:
            if listed is not None and q not in listed:
                continue
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


LIST_FROM = 500  # queue ids from which listing the non-empty ones beats asking each


def _listed(client: ApiClient, queues: list[str]) -> set[str] | None:
    """The ids among ``queues`` that hold anything, from ``GET /queues`` under their common
    prefix; ``None`` (ask each queue) for a few queues or a server that cannot list."""
    if len(queues) < LIST_FROM:
        return None
    lo, hi = min(queues), max(queues)  # their common prefix is everyone's
    same = [a == b for a, b in zip(lo, hi, strict=False)]
    prefix = lo[: same.index(False) if False in same else len(same)]
    if not prefix:
        return None
    listed: set[str] = set()
    after: str | None = None
    while True:
        query = {"prefix": prefix, "limit": 1000} | ({"after": after} if after else {})
        status, body = client.call("GET", f"/queues?{urlencode(query)}")
        if status != 200 or not isinstance(body, dict):
            return None
        listed.update(str(q["queue_id"]) for q in body.get("queues", []))
        after = body.get("next")
        if not after:
            return listed & set(queues)


def _wait_locks(client: ApiClient, queue: str, timeout: float = 40.0) -> dict[str, Any]:
    """Stats of ``queue`` once no lock is outstanding (expired ones return their items)."""
    deadline = time.time() + timeout
    while True:
        stats = client.ok("GET", f"/queue/{queue}")
        if not stats.get("in_flight") or time.time() > deadline:
            return stats
        gevent.sleep(0.5)


__all__ = ["DRAIN_BATCH", "drain_queues"]
