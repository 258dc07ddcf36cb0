"""SIGKILL the server: every acknowledged push comes back in order; locks are never lost."""

from __future__ import annotations

import time

import httpx

from supervise.server import ServerProcess


def test_sigkill_loses_no_acknowledged_item_and_no_lock(
    own_server: ServerProcess, qid: str
) -> None:
    n = 300
    c = httpx.Client(base_url=own_server.url, timeout=30)
    pushed: list[str] = []
    for i in range(0, n, 50):  # bulk pushes
        r = c.post(
            f"/queue/{qid}/push",
            json={"items": [{"item": {"i": j}, "priority": j % 3} for j in range(i, i + 50)]},
        )
        assert r.status_code == 200
        pushed += r.json()["ids"]
    for j in range(n, n + 20):  # and single pushes
        r = c.post(f"/queue/{qid}/push", json={"item": {"i": j}, "priority": j % 3})
        assert r.status_code == 200
        pushed += r.json()["ids"]
    long_lock = c.post(
        f"/queue/{qid}/pop", params={"depth": 5, "require_ack": "true", "ttl_seconds": 600}
    ).json()
    short_lock = c.post(
        f"/queue/{qid}/pop", params={"depth": 5, "require_ack": "true", "ttl_seconds": 1}
    ).json()
    expires = short_lock["lock_expires_at"]

    own_server.kill()
    own_server.start()

    if time.time() < expires:
        time.sleep(expires - time.time() + 0.05)
    stats = c.get(f"/queue/{qid}").json()
    assert stats["locks"] == 1 and stats["in_flight"] == 5, stats
    assert stats["depth"] == n + 20 - 5
    # the expired lock is gone (410) and its items are back at the front, in order
    r = c.post(f"/queue/{qid}/acknowledge", json={"lock_id": short_lock["lock_id"]})
    assert r.status_code == 410
    # the open lock still works after the crash
    r = c.post(f"/queue/{qid}/acknowledge", json={"lock_id": long_lock["lock_id"]})
    assert r.status_code == 200 and r.json()["acknowledged"] == 5

    drained: list[dict] = []
    while True:
        items = c.post(f"/queue/{qid}/pop", params={"depth": 100}).json()["items"]
        if not items:
            break
        drained += items
    acked = {i["id"] for i in long_lock["items"]}
    expected = [i for i in pushed if i not in acked]
    assert sorted(i["id"] for i in drained) == sorted(expected)
    # strict priority, then FIFO (by id) within each priority
    order = [(i["priority"], i["id"]) for i in drained]
    assert order == sorted(order)
    c.close()
