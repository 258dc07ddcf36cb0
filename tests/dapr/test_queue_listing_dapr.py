"""``GET /queues`` in Dapr mode: the same answer as the embedded runtime's, read from
daprd's PostgreSQL state table (component state) or from the host's own store (direct
state), never by waking the listed queues' actors.

Real ``pushpop serve --runtime dapr`` processes (placement, scheduler, daprd, the app),
shared with the other Dapr tests of the session; queue ids are unique per test.
"""

from __future__ import annotations

import uuid

import httpx
import pytest

from supervise.server import ServerProcess


def ok(r: httpx.Response) -> dict:
    assert r.status_code == 200, f"{r.request.url}: {r.status_code} {r.text}"
    return r.json()


@pytest.mark.parametrize("runtime", ["dapr_server", "dapr_direct_server"])
def test_listing_in_dapr_mode(runtime: str, request: pytest.FixtureRequest) -> None:
    server: ServerProcess = request.getfixturevalue(runtime)
    prefix = f"lst-{uuid.uuid4().hex[:8]}-"
    a, ab = prefix + "a", prefix + "a-b"  # "a-b||meta" sorts before "a||meta" as keys
    with httpx.Client(base_url=server.url, timeout=30) as c:
        items = [{"item": {"n": 1}, "priority": 3}, {"item": {"n": 2}, "priority": 0}]
        ok(c.post(f"/queue/{a}/push", json={"items": items}))
        ok(c.post(f"/queue/{ab}/push", json={"item": {"n": 3}}))
        lock = ok(c.post(f"/queue/{ab}/pop", params={"require_ack": "true"}))

        listed = ok(c.get("/queues", params={"prefix": prefix}))
        assert [q["queue_id"] for q in listed["queues"]] == [a, ab] and listed["next"] is None
        for entry in listed["queues"]:
            stats = ok(c.get(f"/queue/{entry['queue_id']}"))
            assert entry == {
                "queue_id": stats["queue_id"],
                "depth": stats["depth"],
                "in_flight": stats["in_flight"],
                "delayed": stats["delayed"],
                "locks": stats["locks"],
                "oldest_enqueued_at": stats["oldest_enqueued_at"],
            }
        assert (listed["queues"][0]["depth"], listed["queues"][1]["in_flight"]) == (2, 1)
        first = ok(c.get("/queues", params={"prefix": prefix, "limit": 1}))
        assert [q["queue_id"] for q in first["queues"]] == [a] and first["next"] == a
        second = ok(c.get("/queues", params={"prefix": prefix, "after": a}))
        assert [q["queue_id"] for q in second["queues"]] == [ab]

        ok(c.post(f"/queue/{ab}/acknowledge", json={"lock_id": lock["lock_id"]}))
        ok(c.post(f"/queue/{a}/pop", params={"depth": 10}))
        assert ok(c.get("/queues", params={"prefix": prefix})) == {"queues": [], "next": None}
