"""The HTTP contract of docs/api.md against every runtime.

Every test that takes ``client`` runs once per runtime: the real app in this process on
SQLite and on a real PostgreSQL, and ``pushpop serve`` in Dapr mode (see ``conftest.py``).
Each test uses its own queue ids, so the session's servers are shared safely.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_helpers import app_thread
from http_helpers import drain, err, lock_op, ok, pop, pop_ack, push, push_one, stats

MAX_ITEM_BYTES = 64 * 1024
MAX_PRIORITY = 2**31 - 1
QUEUE_PATHS = [
    "/queue/{queue_id}/push",
    "/queue/{queue_id}/pop",
    "/queue/{queue_id}/acknowledge",
    "/queue/{queue_id}/extend-lock",
    "/queue/{queue_id}/release",
    "/queue/{queue_id}/dead-letter",
    "/queue/{queue_id}",
]
LOCK_OPS = ["acknowledge", "extend-lock", "release", "dead-letter"]


# ---------------------------------------------------------------------- helpers
def sleep_until(t: float) -> None:
    """Sleep until wall-clock ``t`` (the server runs on this host's clock)."""
    delay = t - time.time()
    if delay > 0:
        time.sleep(delay)


def metric(text: str, name: str, labels: str = "", default: float | None = None) -> float:
    """The value of one sample (``labels`` is a substring of its label set) in Prometheus
    text; ``default`` if there is none (a labelled series appears on its first use)."""
    for line in text.splitlines():
        if line.startswith(name) and not line.startswith("#"):
            head, _, value = line.rpartition(" ")
            if head.split("{")[0] == name and labels in head:
                return float(value)
    if default is not None:
        return default
    raise AssertionError(f"no sample {name}{{{labels}}} in /metrics")


@pytest.fixture
def seeded(client: httpx.Client, qid: str) -> Iterator[dict]:
    """A queue holding two items; after the test, exactly those two must still be there."""
    pushed = push(client, qid, ({"seed": 1}, 0), ({"seed": 2}, 7))
    before = stats(client, qid)
    yield before
    after = stats(client, qid)
    assert after == before, "a rejected request changed the queue"
    assert [i["id"] for i in drain(client, qid)] == pushed["ids"]


# ---------------------------------------------------------------------- push
def test_push_single_form_defaults_to_priority_1(client: httpx.Client, qid: str) -> None:
    t0 = time.time()
    r = push_one(client, qid, {"n": 1})
    t1 = time.time()
    assert r["pushed"] == 1 and r["depth"] == 1
    assert len(r["ids"]) == 1 and isinstance(r["ids"][0], str) and r["ids"][0]
    assert stats(client, qid)["by_priority"] == {"1": 1}
    got = pop(client, qid)["items"]
    assert len(got) == 1
    assert set(got[0]) == {"id", "item", "priority", "enqueued_at", "deliveries"}
    assert got[0]["deliveries"] == 1
    assert got[0]["id"] == r["ids"][0] and got[0]["item"] == {"n": 1} and got[0]["priority"] == 1
    assert isinstance(got[0]["enqueued_at"], float)
    assert t0 - 1 <= got[0]["enqueued_at"] <= t1 + 1


def test_push_bulk_ids_unique_increasing_and_depth(client: httpx.Client, qid: str) -> None:
    first = push(client, qid, ({"n": 0}, 3), ({"n": 1}, 0), ({"n": 2}, None), ({"n": 3}, 0))
    assert first["pushed"] == 4 and first["depth"] == 4 and len(first["ids"]) == 4
    second = push_one(client, qid, {"n": 4}, priority=9)
    assert second["depth"] == 5
    third = push(client, qid, *[({"n": n}, n % 3) for n in range(5, 25)])
    assert third["pushed"] == 20 and third["depth"] == 25
    ids = first["ids"] + second["ids"] + third["ids"]
    assert len(set(ids)) == len(ids) == 25
    assert ids == sorted(ids), "ids must increase in push order"
    assert all(isinstance(i, str) for i in ids)
    if all(i.isdigit() for i in ids):
        assert [int(i) for i in ids] == sorted(int(i) for i in ids)
    # each id pops back with its own item
    by_id = {i["id"]: i["item"]["n"] for i in drain(client, qid)}
    assert by_id == {ids[n]: n for n in range(25)}


# ---------------------------------------------------------------------- pop
def test_pop_strict_priority_then_fifo(client: httpx.Client, qid: str) -> None:
    plan = [5, 1, 0, MAX_PRIORITY, 1, 5, 0, 2, 1, 0, MAX_PRIORITY, 2]
    r = push(client, qid, *[({"n": n}, p) for n, p in enumerate(plan)])
    ids = r["ids"]
    expected = sorted(range(len(plan)), key=lambda n: (plan[n], n))
    first = pop(client, qid)["items"]  # default depth 1
    assert [i["item"]["n"] for i in first] == expected[:1]
    rest = pop(client, qid, depth=100)["items"]
    got = first + rest
    assert [i["item"]["n"] for i in got] == expected
    assert [i["priority"] for i in got] == [plan[n] for n in expected]
    assert [i["id"] for i in got] == [ids[n] for n in expected]
    assert pop(client, qid, depth=5) == {"items": []}


def test_pop_interleaved_pushes_keep_priority(client: httpx.Client, qid: str) -> None:
    push(client, qid, ({"n": "a"}, 2), ({"n": "b"}, 2))
    assert [i["item"]["n"] for i in pop(client, qid)["items"]] == ["a"]
    push(client, qid, ({"n": "c"}, 1), ({"n": "d"}, 2))
    got = [i["item"]["n"] for i in pop(client, qid, depth=2)["items"]]
    assert got == ["c", "b"]
    assert [i["item"]["n"] for i in pop(client, qid, depth=10)["items"]] == ["d"]


def test_pop_empty_queue(client: httpx.Client, qid: str) -> None:
    assert pop(client, qid) == {"items": []}
    assert pop(client, qid, depth=100) == {"items": []}
    # no lock for no items
    assert pop_ack(client, qid, depth=3, ttl=10) == {"items": []}
    push_one(client, qid, {"n": 1})
    pop(client, qid)
    assert pop(client, qid) == {"items": []}
    assert pop_ack(client, qid) == {"items": []}
    s = stats(client, qid)
    assert s["locks"] == 0 and s["in_flight"] == 0


def test_pop_with_ack_returns_lock(client: httpx.Client, qid: str) -> None:
    ids = push(client, qid, *[({"n": n}, None) for n in range(4)])["ids"]
    t0 = time.time()
    r = pop_ack(client, qid, depth=2, ttl=120)
    t1 = time.time()
    assert set(r) == {"items", "lock_id", "lock_expires_at"}
    assert isinstance(r["lock_id"], str) and r["lock_id"]
    assert t0 + 120 - 1 <= r["lock_expires_at"] <= t1 + 120 + 1
    assert [i["id"] for i in r["items"]] == ids[:2]
    # default ttl is 30 s
    t0 = time.time()
    d = pop_ack(client, qid)
    t1 = time.time()
    assert t0 + 30 - 1 <= d["lock_expires_at"] <= t1 + 30 + 1
    assert d["lock_id"] != r["lock_id"]
    s = stats(client, qid)
    assert (s["depth"], s["in_flight"], s["locks"]) == (1, 3, 2)
    # locked items are not handed out again
    assert [i["id"] for i in pop(client, qid, depth=100)["items"]] == ids[3:]
    # require_ack=false is a plain pop
    push_one(client, qid, {"n": 9})
    plain = pop(client, qid, require_ack="false")
    assert set(plain) == {"items"} and plain["items"][0]["item"] == {"n": 9}


def test_several_locks_own_disjoint_items(client: httpx.Client, qid: str) -> None:
    ids = push(client, qid, *[({"n": n}, None) for n in range(6)])["ids"]
    a, b, c = (pop_ack(client, qid, depth=2, ttl=300) for _ in range(3))
    assert [i["id"] for i in a["items"]] == ids[0:2]
    assert [i["id"] for i in b["items"]] == ids[2:4]
    assert [i["id"] for i in c["items"]] == ids[4:6]
    assert len({a["lock_id"], b["lock_id"], c["lock_id"]}) == 3
    s = stats(client, qid)
    assert (s["depth"], s["in_flight"], s["locks"]) == (0, 6, 3)
    assert ok(lock_op(client, qid, "acknowledge", b["lock_id"])) == {"acknowledged": 2}
    err(lock_op(client, qid, "acknowledge", b["lock_id"]), 404, "LOCK_NOT_FOUND")
    assert ok(lock_op(client, qid, "release", a["lock_id"])) == {"released": 2}
    s = stats(client, qid)
    assert (s["depth"], s["in_flight"], s["locks"]) == (2, 2, 1)
    assert [i["id"] for i in pop(client, qid, depth=100)["items"]] == ids[0:2]
    assert ok(lock_op(client, qid, "acknowledge", c["lock_id"])) == {"acknowledged": 2}
    s = stats(client, qid)
    assert (s["depth"], s["in_flight"], s["locks"]) == (0, 0, 0)


def test_competing_consumers_get_disjoint_items(client: httpx.Client, qid: str) -> None:
    ids = push(client, qid, *[({"n": n}, None) for n in range(30)])["ids"]
    with ThreadPoolExecutor(10) as ex:
        got = list(ex.map(lambda _: pop_ack(client, qid, depth=3, ttl=300), range(12)))
    owned = [i["id"] for g in got for i in g["items"]]
    assert sorted(owned) == ids, "every item handed out exactly once"
    assert len({g["lock_id"] for g in got if g["items"]}) == 10
    assert all("lock_id" not in g for g in got if not g["items"])
    s = stats(client, qid)
    assert (s["depth"], s["in_flight"], s["locks"]) == (0, 30, 10)


# ---------------------------------------------------------------------- lock operations
@pytest.mark.parametrize("op", LOCK_OPS)
def test_lock_ops_unknown_lock_is_404(client: httpx.Client, qid: str, op: str) -> None:
    push_one(client, qid, {"n": 1})
    unknown = uuid.uuid4().hex
    err(lock_op(client, qid, op, unknown), 404, "LOCK_NOT_FOUND", unknown)
    # a lock of another queue is not a lock of this one
    other = f"{qid}-other"
    push_one(client, other, {"n": 2})
    foreign = pop_ack(client, other, ttl=300)["lock_id"]
    err(lock_op(client, qid, op, foreign), 404, "LOCK_NOT_FOUND")
    assert stats(client, qid)["depth"] == 1
    assert stats(client, other)["in_flight"] == 1


def test_acknowledge(client: httpx.Client, qid: str) -> None:
    ids = push(client, qid, *[({"n": n}, n % 2) for n in range(3)])["ids"]
    lk = pop_ack(client, qid, depth=3, ttl=300)
    assert ok(lock_op(client, qid, "acknowledge", lk["lock_id"])) == {"acknowledged": 3}
    s = stats(client, qid)
    assert (s["depth"], s["in_flight"], s["locks"]) == (0, 0, 0)
    for op in LOCK_OPS:  # acknowledged: gone for good
        err(lock_op(client, qid, op, lk["lock_id"]), 404, "LOCK_NOT_FOUND")
    assert pop(client, qid, depth=100) == {"items": []}
    assert len(ids) == 3


def test_extend_lock_moves_expiry_by_exactly_the_added_seconds(
    client: httpx.Client, qid: str
) -> None:
    push_one(client, qid, {"n": 1})
    lk = pop_ack(client, qid, ttl=60)
    exp = lk["lock_expires_at"]
    r = ok(lock_op(client, qid, "extend-lock", lk["lock_id"], additional_ttl_seconds=30))
    assert r == {"lock_id": lk["lock_id"], "lock_expires_at": exp + 30}
    r = ok(lock_op(client, qid, "extend-lock", lk["lock_id"], additional_ttl_seconds=3600))
    assert r["lock_expires_at"] == exp + 30 + 3600
    r = ok(lock_op(client, qid, "extend-lock", lk["lock_id"], additional_ttl_seconds=1))
    assert r["lock_expires_at"] == exp + 30 + 3600 + 1
    s = stats(client, qid)
    assert (s["in_flight"], s["locks"]) == (1, 1)
    assert ok(lock_op(client, qid, "acknowledge", lk["lock_id"])) == {"acknowledged": 1}


@pytest.mark.parametrize("ttl", [0, 3601, -1, "5", 1.5, True, False, None, [5], 10**20], ids=repr)
def test_extend_lock_invalid_ttl(client: httpx.Client, qid: str, ttl: Any) -> None:
    push_one(client, qid, {"n": 1})
    lk = pop_ack(client, qid, ttl=60)
    r = lock_op(client, qid, "extend-lock", lk["lock_id"], additional_ttl_seconds=ttl)
    err(r, 400, "INVALID_TTL", "additional_ttl_seconds", "3600")
    # the lock is untouched: a valid extension still adds to the original expiry
    r = ok(lock_op(client, qid, "extend-lock", lk["lock_id"], additional_ttl_seconds=2))
    assert r["lock_expires_at"] == lk["lock_expires_at"] + 2


def test_release_puts_items_back_at_the_front_in_order(client: httpx.Client, qid: str) -> None:
    ids = push(client, qid, ({"n": "a1"}, 1), ({"n": "a2"}, 1), ({"n": "a3"}, 1), ({"n": "b1"}, 0))[
        "ids"
    ]
    lk = pop_ack(client, qid, depth=3, ttl=300)
    assert [i["item"]["n"] for i in lk["items"]] == ["b1", "a1", "a2"]
    later = push(client, qid, ({"n": "a4"}, 1), ({"n": "b2"}, 0))["ids"]
    assert ok(lock_op(client, qid, "release", lk["lock_id"])) == {"released": 3}
    s = stats(client, qid)
    assert (s["depth"], s["in_flight"], s["locks"]) == (6, 0, 0)
    assert s["by_priority"] == {"0": 2, "1": 4}
    got = drain(client, qid)
    assert [i["item"]["n"] for i in got] == ["b1", "b2", "a1", "a2", "a3", "a4"]
    # the same messages come back: same ids, items, priorities and enqueue times
    assert [i["id"] for i in got] == [ids[3], later[1], ids[0], ids[1], ids[2], later[0]]
    locked = {i["id"]: i["enqueued_at"] for i in lk["items"]}
    assert {i["id"]: i["enqueued_at"] for i in got if i["id"] in locked} == locked
    for op in LOCK_OPS:
        err(lock_op(client, qid, op, lk["lock_id"]), 404, "LOCK_NOT_FOUND")


def test_release_out_of_order_keeps_fifo(client: httpx.Client, qid: str) -> None:
    ids = push(client, qid, *[({"n": n}, None) for n in range(5)])["ids"]
    one = pop_ack(client, qid, depth=1, ttl=300)
    two = pop_ack(client, qid, depth=2, ttl=300)
    assert ok(lock_op(client, qid, "release", two["lock_id"])) == {"released": 2}
    assert ok(lock_op(client, qid, "release", one["lock_id"])) == {"released": 1}
    assert [i["id"] for i in drain(client, qid)] == ids


def test_dead_letter_moves_items_in_order_with_priorities(client: httpx.Client, qid: str) -> None:
    push(client, qid, ({"n": "a"}, 2), ({"n": "b"}, 0), ({"n": "c"}, 2), ({"n": "d"}, 5))
    lk = pop_ack(client, qid, depth=3, ttl=300)
    assert [i["item"]["n"] for i in lk["items"]] == ["b", "a", "c"]
    r = ok(lock_op(client, qid, "dead-letter", lk["lock_id"]))
    dlq = f"{qid}-deadletter"
    assert r == {"dead_lettered": 3, "dead_letter_queue": dlq}
    s = stats(client, qid)
    assert (s["depth"], s["in_flight"], s["locks"], s["by_priority"]) == (1, 0, 0, {"5": 1})
    d = stats(client, dlq)
    assert d["queue_id"] == dlq
    assert (d["depth"], d["by_priority"]) == (3, {"0": 1, "2": 2})
    # an ordinary queue: pop it with a lock, release, pop again
    dl = pop_ack(client, dlq, depth=10, ttl=300)
    assert [(i["item"], i["priority"]) for i in dl["items"]] == [
        (i["item"], i["priority"]) for i in lk["items"]
    ]
    # time in the dead-letter queue counts from the move: one arrival time for the batch
    moved_at = {i["enqueued_at"] for i in dl["items"]}
    assert len(moved_at) == 1
    assert moved_at.pop() >= max(i["enqueued_at"] for i in lk["items"])
    assert ok(lock_op(client, dlq, "release", dl["lock_id"])) == {"released": 3}
    assert [i["item"]["n"] for i in drain(client, dlq)] == ["b", "a", "c"]
    for op in LOCK_OPS:
        err(lock_op(client, qid, op, lk["lock_id"]), 404, "LOCK_NOT_FOUND")
    assert [i["item"]["n"] for i in drain(client, qid)] == ["d"]


def test_dead_letter_twice_appends_in_order(client: httpx.Client, qid: str) -> None:
    push(client, qid, *[({"n": n}, None) for n in range(4)])
    first = pop_ack(client, qid, depth=2, ttl=300)
    second = pop_ack(client, qid, depth=2, ttl=300)
    ok(lock_op(client, qid, "dead-letter", first["lock_id"]))
    ok(lock_op(client, qid, "dead-letter", second["lock_id"]))
    assert [i["item"]["n"] for i in drain(client, f"{qid}-deadletter")] == [0, 1, 2, 3]


def test_expired_locks(client: httpx.Client, qid: str) -> None:
    """Expiry: items back at the front in order, in_flight drops, every lock op is 410.

    The first call after the expiry is a GET of the stats: expiry needs no other call.
    """
    xs = push(client, qid, *[({"n": f"x{n}"}, 1) for n in range(1, 5)])["ids"]
    ys = push(client, qid, ({"n": "y1"}, 0))["ids"]
    a = pop_ack(client, qid, depth=2, ttl=1)  # y1, x1
    b = pop_ack(client, qid, depth=1, ttl=1)  # x2
    c = pop_ack(client, qid, depth=1, ttl=1)  # x3
    keep = pop_ack(client, qid, depth=1, ttl=300)  # x4, not expiring
    locked = [i["item"]["n"] for i in a["items"] + b["items"] + c["items"]]
    assert locked == ["y1", "x1", "x2", "x3"]
    x5 = push(client, qid, ({"n": "x5"}, 1))["ids"]
    s = stats(client, qid)
    assert (s["depth"], s["in_flight"], s["locks"]) == (1, 5, 4)
    sleep_until(max(a["lock_expires_at"], b["lock_expires_at"], c["lock_expires_at"]) + 0.05)

    s = stats(client, qid)
    assert (s["depth"], s["in_flight"], s["locks"]) == (5, 1, 1), s
    assert s["by_priority"] == {"0": 1, "1": 4}
    assert s["oldest_enqueued_at"] == a["items"][1]["enqueued_at"]  # x1, pushed first

    for op, lock in [
        ("acknowledge", a), ("extend-lock", a), ("release", a), ("dead-letter", a),
        ("release", b), ("acknowledge", b), ("dead-letter", c), ("extend-lock", c),
    ]:  # fmt: skip
        extra = {"additional_ttl_seconds": 30} if op == "extend-lock" else {}
        r = lock_op(client, qid, op, lock["lock_id"], **extra)
        err(r, 410, "LOCK_EXPIRED", lock["lock_id"])
    assert stats(client, f"{qid}-deadletter")["depth"] == 0

    got = drain(client, qid)
    assert [i["item"]["n"] for i in got] == ["y1", "x1", "x2", "x3", "x5"]
    assert [i["id"] for i in got] == [ys[0], xs[0], xs[1], xs[2], x5[0]]
    assert ok(lock_op(client, qid, "acknowledge", keep["lock_id"])) == {"acknowledged": 1}


# ---------------------------------------------------------------------- stats and purge
def test_stats_fields(client: httpx.Client, qid: str) -> None:
    assert stats(client, qid) == {
        "queue_id": qid,
        "depth": 0,
        "by_priority": {},
        "in_flight": 0,
        "locks": 0,
        "delayed": 0,
        "oldest_enqueued_at": None,
    }
    push(client, qid, ({"n": 0}, 3))
    push(client, qid, ({"n": 1}, 0), ({"n": 2}, 0), ({"n": 3}, 12))
    s = stats(client, qid)
    assert set(s) == {"queue_id", "depth", "by_priority", "in_flight", "locks", "delayed",
                      "oldest_enqueued_at"}  # fmt: skip
    assert s["queue_id"] == qid and s["depth"] == 4
    assert s["by_priority"] == {"0": 2, "3": 1, "12": 1}
    assert all(isinstance(k, str) for k in s["by_priority"])
    assert (s["in_flight"], s["locks"]) == (0, 0)
    assert isinstance(s["oldest_enqueued_at"], float)
    lk = pop_ack(client, qid, depth=2, ttl=300)  # both priority-0 items
    s = stats(client, qid)
    assert (s["depth"], s["in_flight"], s["locks"], s["by_priority"]) == (
        2, 2, 1, {"3": 1, "12": 1}
    )  # fmt: skip
    rest = pop(client, qid, depth=10)["items"]
    assert s["oldest_enqueued_at"] == rest[0]["enqueued_at"]  # the priority-3 item, pushed first
    assert rest[0]["item"] == {"n": 0}
    assert ok(lock_op(client, qid, "release", lk["lock_id"])) == {"released": 2}
    s = stats(client, qid)
    assert s["oldest_enqueued_at"] == lk["items"][0]["enqueued_at"]
    drain(client, qid)
    s = stats(client, qid)
    assert (s["depth"], s["by_priority"], s["oldest_enqueued_at"]) == (0, {}, None)


def test_purge_removes_items_and_locks(client: httpx.Client, qid: str) -> None:
    before = push(client, qid, *[({"n": n}, n % 3) for n in range(5)])["ids"]
    lk = pop_ack(client, qid, depth=2, ttl=300)
    assert ok(client.delete(f"/queue/{qid}")) == {"purged": 5}
    s = stats(client, qid)
    assert (s["depth"], s["in_flight"], s["locks"], s["by_priority"]) == (0, 0, 0, {})
    assert s["oldest_enqueued_at"] is None
    for op in LOCK_OPS:
        err(lock_op(client, qid, op, lk["lock_id"]), 404, "LOCK_NOT_FOUND")
    assert pop(client, qid, depth=100) == {"items": []}
    assert ok(client.delete(f"/queue/{qid}")) == {"purged": 0}
    # ids stay unique within the queue across a purge
    after = push_one(client, qid, {"n": "new"})
    assert after["depth"] == 1
    assert after["ids"][0] not in before and after["ids"][0] > max(before)
    assert [i["item"] for i in drain(client, qid)] == [{"n": "new"}]


def test_purge_empty_unknown_queue(client: httpx.Client, qid: str) -> None:
    assert ok(client.delete(f"/queue/{qid}")) == {"purged": 0}


# ---------------------------------------------------------------------- queue ids
def test_queue_ids_with_punctuation_are_isolated(client: httpx.Client, qid: str) -> None:
    names = [
        f"{qid}:a.b-c_d",
        f"{qid}:a.b-c_e",
        f"{qid}:A.B-C_D",
        f"{qid}.a:b-c_d",
        f"{qid}:a.b-c_d-",
        f"{qid}:a.b-c_d-deadletter",
        ("Z" + qid)[:128].ljust(128, "_"),
    ]
    for n, name in enumerate(names):
        push(client, name, *[({"q": name, "k": k}, None) for k in range(n + 1)])
    for n, name in enumerate(names):
        s = stats(client, name)
        assert s["queue_id"] == name and s["depth"] == n + 1
        got = drain(client, name)
        assert [i["item"] for i in got] == [{"q": name, "k": k} for k in range(n + 1)]


# ---------------------------------------------------------------------- round trips
# Items are stored in segments of up to 100; a segment holding a U+0000 is stored as
# base64 on PostgreSQL (jsonb cannot hold it), the others as jsonb. Both paths are tested.
ROUND_TRIP = [
    {"unicode": "héllo wörld ✓ 😀 𝄞 مرحبا 日本語 \u200b e\u0301", "emoji": "👩‍👩‍👧‍👦"},
    {"nested": {"a": [1, {"b": [None, True, False, {"c": {}}]}, []], "d": {"e": {"f": "g"}}}},
    {"big": 10**30, "neg_big": -(10**30), "int64": 2**63 + 1, "zero": 0},
    {"date": "2024-01-01T00:00:00", "date2": "2024-01-01 00:00:00", "dur": "1h", "d": "1d"},
    {"float": 0.1, "small": 1e-7, "neg": -2.5, "one": 1.0, "ctrl": "\t\n\r\u0001\u001f"},
    {"keys with spaces": 1, "ключ": 2, "": 3, "slash": "\\/", "quote": '"'},
    {},
]
ROUND_TRIP_NUL = [
    {"nul": "a\u0000b", "only_nul": "\u0000", "big": 10**30, "date": "2024-01-01T00:00:00"},
    {"\u0000k": {"nested": ["\u0000", {"x": "é\u0000😀"}]}},
]
ROUND_TRIP_GROUPS = {"jsonb": ROUND_TRIP, "nul": ROUND_TRIP_NUL}


def assert_same_json(got: Any, sent: Any) -> None:
    """Equal values *and* types (``1`` vs ``1.0``, a date string stays a string)."""
    assert type(got) is type(sent), (got, sent)
    if isinstance(sent, dict):
        assert set(got) == set(sent)
        for k in sent:
            assert_same_json(got[k], sent[k])
    elif isinstance(sent, list):
        assert len(got) == len(sent)
        for g, s in zip(got, sent, strict=True):
            assert_same_json(g, s)
    else:
        assert got == sent


@pytest.mark.parametrize("group", ROUND_TRIP_GROUPS)
def test_items_round_trip_exactly(client: httpx.Client, qid: str, group: str) -> None:
    sent = ROUND_TRIP_GROUPS[group]
    # Park the items between fillers so that they leave the actor's cache and are read
    # back from the state store (only each priority's end segments stay cached).
    push(client, qid, *[({"fill": n}, None) for n in range(150)])
    ids = push(client, qid, *[(item, None) for item in sent])["ids"]
    push(client, qid, *[({"fill": n}, None) for n in range(150)])
    pop(client, qid, depth=100)
    pop(client, qid, depth=50)
    got = pop(client, qid, depth=len(sent))["items"]
    assert [i["id"] for i in got] == ids
    for g, s in zip(got, sent, strict=True):
        assert_same_json(g["item"], s)


def test_items_round_trip_through_a_lock_and_dead_letter(client: httpx.Client, qid: str) -> None:
    push(client, qid, *[(item, n) for n, item in enumerate(ROUND_TRIP)])
    lk = pop_ack(client, qid, depth=len(ROUND_TRIP), ttl=300)
    for g, sent in zip(lk["items"], ROUND_TRIP, strict=True):
        assert_same_json(g["item"], sent)
    ok(lock_op(client, qid, "dead-letter", lk["lock_id"]))
    got = drain(client, f"{qid}-deadletter")
    assert [i["priority"] for i in got] == list(range(len(ROUND_TRIP)))
    for g, sent in zip(got, ROUND_TRIP, strict=True):
        assert_same_json(g["item"], sent)
    # and with NUL characters (stored differently on PostgreSQL)
    push(client, qid, *[(item, None) for item in ROUND_TRIP_NUL])
    lk = pop_ack(client, qid, depth=10, ttl=300)
    ok(lock_op(client, qid, "dead-letter", lk["lock_id"]))
    got = drain(client, f"{qid}-deadletter")
    for g, sent in zip(got, ROUND_TRIP_NUL, strict=True):
        assert_same_json(g["item"], sent)


def test_single_form_round_trip_of_escaped_body(client: httpx.Client, qid: str) -> None:
    """The same item sent ASCII-escaped comes back as the same (unescaped) value."""
    item = {"s": "é\u0000😀", "date": "2024-01-01T00:00:00", "n": 10**30}
    body = json.dumps({"item": item, "priority": 4}, ensure_ascii=True).encode()
    push_ok = ok(client.post(f"/queue/{qid}/push", content=body,
                             headers={"content-type": "application/json"}))  # fmt: skip
    assert push_ok["pushed"] == 1
    got = pop(client, qid)["items"][0]
    assert_same_json(got["item"], item)
    assert got["priority"] == 4


# ---------------------------------------------------------------------- validation: push
# (an encoded slash, ``a%2Fb``, has its own test at the end: it fails today)
BAD_QUEUE_IDS = ["x" * 129, "a|b", "a%20b", "caf%C3%A9", "a*b", "a%00b", "a+b", "a%7Cb", "a,b"]


@pytest.mark.parametrize("bad", BAD_QUEUE_IDS, ids=lambda b: b[:12])
def test_invalid_queue_id(client: httpx.Client, bad: str) -> None:
    requests = [
        ("POST", f"/queue/{bad}/push", {"item": {"a": 1}}),
        ("POST", f"/queue/{bad}/pop", None),
        ("POST", f"/queue/{bad}/acknowledge", {"lock_id": "x"}),
        ("POST", f"/queue/{bad}/extend-lock", {"lock_id": "x", "additional_ttl_seconds": 5}),
        ("POST", f"/queue/{bad}/release", {"lock_id": "x"}),
        ("POST", f"/queue/{bad}/dead-letter", {"lock_id": "x"}),
        ("GET", f"/queue/{bad}", None),
        ("DELETE", f"/queue/{bad}", None),
    ]
    for method, path, body in requests:
        r = client.request(method, path, json=body)
        err(r, 400, "INVALID_QUEUE_ID", "queue_id", "128")


def test_longest_queue_id_is_accepted(client: httpx.Client) -> None:
    name = (uuid.uuid4().hex * 4)[:128]
    assert push_one(client, name, {"a": 1})["depth"] == 1
    assert stats(client, name)["queue_id"] == name
    assert ok(client.delete(f"/queue/{name}")) == {"purged": 1}


@pytest.mark.parametrize(
    "body",
    [
        {"item": [1, 2]},
        {"item": "text"},
        {"item": 42},
        {"item": 4.5},
        {"item": None},
        {"item": True},
        {"items": [{"priority": 1}]},
        {"items": [{"item": {"ok": 1}}, {"item": [1]}]},
        {"items": [{"item": {"ok": 1}}, {"item": None, "priority": 0}]},
        {"items": [{"item": {"ok": 1}}, "not an entry"]},
    ],
    ids=repr,
)
def test_invalid_item(client: httpx.Client, qid: str, seeded: dict, body: dict) -> None:
    err(client.post(f"/queue/{qid}/push", json=body), 400, "INVALID_ITEM", "item")


def _item_of_size(n: int, char: str = "x") -> dict:
    """An item whose compact UTF-8 serialization is exactly ``n`` bytes (``{"d":"..."}``)."""
    per = len(char.encode())
    assert (n - 8) % per == 0
    item = {"d": char * ((n - 8) // per)}
    assert len(json.dumps(item, separators=(",", ":"), ensure_ascii=False).encode()) == n
    return item


def test_item_size_limit(client: httpx.Client, qid: str, seeded: dict) -> None:
    other = f"{qid}-big"
    at_limit = _item_of_size(MAX_ITEM_BYTES)
    assert push_one(client, other, at_limit)["depth"] == 1
    assert push(client, other, (at_limit, 0), ({"s": 1}, 0))["depth"] == 3
    assert [i["item"] for i in drain(client, other)] == [at_limit, {"s": 1}, at_limit]
    over = _item_of_size(MAX_ITEM_BYTES + 1)
    multibyte = _item_of_size(MAX_ITEM_BYTES + 2, "é")  # 32,765 chars, 65,538 bytes
    for body in [
        {"item": over},
        {"item": over, "priority": 0},
        {"item": multibyte},
        {"items": [{"item": {"ok": 1}}, {"item": over}]},
        {"items": [{"item": at_limit}, {"item": multibyte, "priority": 3}]},
    ]:
        err(client.post(f"/queue/{qid}/push", json=body), 413, "ITEM_TOO_LARGE", "65536")


@pytest.mark.parametrize("priority", [-1, 2**31, 2**64, 1.0, 0.5, True, False, "1", [1], {}, None],
                         ids=repr)  # fmt: skip
def test_invalid_priority(client: httpx.Client, qid: str, seeded: dict, priority: Any) -> None:
    for body in [
        {"item": {"a": 1}, "priority": priority},
        {"items": [{"item": {"a": 1}, "priority": 0}, {"item": {"a": 2}, "priority": priority}]},
    ]:
        r = client.post(f"/queue/{qid}/push", json=body)
        err(r, 400, "INVALID_PRIORITY", "priority", str(MAX_PRIORITY))


def test_priority_bounds_accepted(client: httpx.Client, qid: str) -> None:
    push_one(client, qid, {"p": "max"}, priority=MAX_PRIORITY)
    push_one(client, qid, {"p": "zero"}, priority=0)
    assert stats(client, qid)["by_priority"] == {"0": 1, str(MAX_PRIORITY): 1}
    got = pop(client, qid, depth=2)["items"]
    assert [(i["item"]["p"], i["priority"]) for i in got] == [("zero", 0), ("max", MAX_PRIORITY)]


def test_too_many_items(client: httpx.Client, qid: str, seeded: dict) -> None:
    body = {"items": [{"item": {"n": n}} for n in range(1001)]}
    err(client.post(f"/queue/{qid}/push", json=body), 400, "TOO_MANY_ITEMS", "1000")


def test_thousand_items_accepted(client: httpx.Client, qid: str) -> None:
    r = push(client, qid, *[({"n": n}, None) for n in range(1000)])
    assert r["pushed"] == 1000 and r["depth"] == 1000 and len(set(r["ids"])) == 1000
    assert [i["item"]["n"] for i in drain(client, qid)] == list(range(1000))


@pytest.mark.parametrize("body", [{"items": []}, {}, {"priority": 0}, {"itemz": {"a": 1}}],
                         ids=repr)  # fmt: skip
def test_no_items(client: httpx.Client, qid: str, seeded: dict, body: dict) -> None:
    message = err(client.post(f"/queue/{qid}/push", json=body), 400, "NO_ITEMS")
    assert "item" in message


MALFORMED = [
    b'{"item": {"a": 1}',
    b'{"item": {"a": 1}} trailing',
    b"{'item': {'a': 1}}",
    b'{"item": {"a": 1},}',
    b"\xff\xfe{}",
    b'{"item": {"a": "\xc3"}}',
    b'{"item": {"a": "\xed\xa0\x80"}}',
    b'{"item": {"a": NaN}}',
    b'{"item": {"a": Infinity}}',
    b'{"item": {"a": -Infinity}}',
    b'{"item": {"a": 1e400}}',
    b'[{"item": {"a": 1}}]',
    b'"text"',
    b"42",
    b"null",
    b"true",
    b"",
    b'{"item": {"a": 1, "a": 2}}',
    b'{"item": {"a": 1}, "item": {"a": 2}}',
    b'{"items": [{"item": {"x": {"k": 1, "k": 1}}}]}',
]


@pytest.mark.parametrize("body", MALFORMED, ids=lambda b: repr(b)[:30])
def test_malformed_json_push(client: httpx.Client, qid: str, seeded: dict, body: bytes) -> None:
    r = client.post(f"/queue/{qid}/push", content=body,
                    headers={"content-type": "application/json"})  # fmt: skip
    err(r, 400, "MALFORMED_JSON")


@pytest.mark.parametrize("op", LOCK_OPS)
def test_malformed_json_lock_ops(client: httpx.Client, qid: str, op: str) -> None:
    push_one(client, qid, {"n": 1})
    lk = pop_ack(client, qid, ttl=300)
    lid = lk["lock_id"].encode()
    for body in [
        b'{"lock_id": "' + lid + b'"',
        b"\xff",
        b'["' + lid + b'"]',
        b'"' + lid + b'"',
        b"",
        b'{"lock_id": "x", "lock_id": "' + lid + b'"}',
        b'{"lock_id": "' + lid + b'", "additional_ttl_seconds": NaN}',
    ]:
        r = client.post(f"/queue/{qid}/{op}", content=body,
                        headers={"content-type": "application/json"})  # fmt: skip
        err(r, 400, "MALFORMED_JSON")
    s = stats(client, qid)
    assert (s["in_flight"], s["locks"]) == (1, 1), "a rejected request touched the lock"


@pytest.mark.parametrize("op", LOCK_OPS)
def test_lock_ops_missing_lock_id(client: httpx.Client, qid: str, op: str) -> None:
    for body in [{}, {"lock_id": 5}, {"lock_id": ""}, {"lock_id": None}]:
        r = client.post(f"/queue/{qid}/{op}", json=body)
        assert r.status_code == 400, r.text
        err(r, 400, r.json()["error"]["code"], "lock_id")


# ---------------------------------------------------------------------- validation: pop
@pytest.mark.parametrize(
    "depth", ["0", "101", "abc", "1.5", "-1", "", "1e2", "0x10", "99999999999"]
)
def test_invalid_depth(client: httpx.Client, qid: str, seeded: dict, depth: str) -> None:
    err(client.post(f"/queue/{qid}/pop", params={"depth": depth}), 400, "INVALID_DEPTH",
        "depth", "100")  # fmt: skip
    r = client.post(f"/queue/{qid}/pop", params={"depth": depth, "require_ack": "true"})
    err(r, 400, "INVALID_DEPTH", "depth", "100")


def test_depth_bounds_accepted(client: httpx.Client, qid: str) -> None:
    push(client, qid, *[({"n": n}, None) for n in range(120)])
    assert len(pop(client, qid, depth=100)["items"]) == 100
    assert len(pop(client, qid, depth=1)["items"]) == 1
    assert len(pop(client, qid, depth=100)["items"]) == 19


@pytest.mark.parametrize("ttl", ["0", "3601", "abc", "1.5", "-1", "", "true"])
def test_invalid_ttl_on_pop(client: httpx.Client, qid: str, seeded: dict, ttl: str) -> None:
    r = client.post(f"/queue/{qid}/pop", params={"require_ack": "true", "ttl_seconds": ttl})
    err(r, 400, "INVALID_TTL", "ttl_seconds", "3600")


def test_ttl_bounds_accepted(client: httpx.Client, qid: str) -> None:
    push(client, qid, ({"n": 1}, None), ({"n": 2}, None))
    lo = pop_ack(client, qid, ttl=1)
    hi = pop_ack(client, qid, ttl=3600)
    assert 3598 < hi["lock_expires_at"] - lo["lock_expires_at"] < 3600


# ---------------------------------------------------------------------- routing
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/nope"),
        ("POST", "/queue/q/frobnicate"),
        ("GET", "/queue/q/push/extra"),
        ("GET", "/queue"),
        ("POST", "/queues/q/push"),
    ],
)
def test_unknown_route_is_404_json(client: httpx.Client, method: str, path: str) -> None:
    err(client.request(method, path), 404, "NOT_FOUND")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/queue/q/push"),
        ("PUT", "/queue/q/push"),
        ("GET", "/queue/q/pop"),
        ("GET", "/queue/q/acknowledge"),
        ("DELETE", "/queue/q/release"),
        ("PUT", "/queue/q"),
        ("PATCH", "/queue/q"),
        ("POST", "/queue/q"),
        ("POST", "/health"),
        ("DELETE", "/metrics"),
    ],
)
def test_wrong_method_is_405_json(client: httpx.Client, method: str, path: str) -> None:
    err(client.request(method, path, json={}), 405, "METHOD_NOT_ALLOWED")


# ---------------------------------------------------------------------- service endpoints
def test_health_and_ready(client: httpx.Client) -> None:
    assert ok(client.get("/health")) == {"status": "ok"}
    assert client.get("/ready").status_code == 200


def test_openapi_and_docs(client: httpx.Client) -> None:
    spec = ok(client.get("/openapi.json"))
    paths = spec["paths"]
    for p in QUEUE_PATHS[:-1]:
        assert "post" in paths[p], p
    assert {"get", "delete"} <= set(paths["/queue/{queue_id}"])
    for p in ["/health", "/ready", "/metrics"]:
        assert "get" in paths[p], p
    docs = client.get("/docs")
    assert docs.status_code == 200 and "text/html" in docs.headers["content-type"]


def test_metrics(client: httpx.Client, qid: str) -> None:
    text = client.get("/metrics").text
    pushed_before = metric(text, "pushpop_items_pushed_total")
    queued_before = metric(text, "pushpop_time_in_queue_seconds_count")
    # the per-hop timings (the actor call the gateway waits for; the turns' state I/O)
    hops = ("pushpop_actor_turns_total", "pushpop_actor_state_save_seconds_total",
            "pushpop_actor_state_load_seconds_total")  # fmt: skip
    hops_before = [metric(text, name) for name in hops]
    calls = "pushpop_actor_call_duration_seconds_count"
    calls_before = {m: metric(text, calls, f'method="{m}"', 0.0) for m in ("Push", "Pop")}

    push_one(client, qid, {"n": 0})
    push(client, qid, *[({"n": n}, None) for n in range(1, 5)])
    client.post(f"/queue/{qid}/push", json={"item": []})  # rejected: not counted
    pop(client, qid, depth=3)

    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert metric(text, "pushpop_items_pushed_total") - pushed_before == 5
    assert metric(text, "pushpop_time_in_queue_seconds_count") - queued_before == 3
    assert "pushpop_time_in_queue_seconds_bucket" in text
    assert "pushpop_http_request_duration_seconds_bucket" in text
    count = metric(text, "pushpop_http_request_duration_seconds_count",
                   'route="/queue/{queue_id}/push"')  # fmt: skip
    assert count >= 3
    assert metric(text, "pushpop_active_actors") >= 1
    turns, saved, loaded = (metric(text, n) - b for n, b in zip(hops, hops_before, strict=True))
    assert turns >= 3 and saved > 0 and loaded >= 0, (turns, saved, loaded)
    # two accepted pushes and one pop reached the actor (the rejected push did not)
    assert metric(text, calls, 'method="Push"') - calls_before["Push"] == 2
    assert metric(text, calls, 'method="Pop"') - calls_before["Pop"] == 1


# ---------------------------------------------------------------------- limits
def test_queue_full(tmp_path: Path, qid: str) -> None:
    """Queues that hold at most 3 items (``PUSHPOP_MAX_DEPTH``)."""
    with app_thread(tmp_path / "s.sqlite3", max_depth=3) as app, app.client() as c:
        push(c, qid, ({"n": 1}, None), ({"n": 2}, None))
        r = c.post(f"/queue/{qid}/push", json={"items": [{"item": {"n": 3}}, {"item": {"n": 4}}]})
        err(r, 429, "QUEUE_FULL", "3")
        assert stats(c, qid)["depth"] == 2, "a refused push is all or nothing"
        assert push_one(c, qid, {"n": 3})["depth"] == 3
        err(c.post(f"/queue/{qid}/push", json={"item": {"n": 4}}), 429, "QUEUE_FULL")
        pop(c, qid)
        assert push_one(c, qid, {"n": 4})["depth"] == 3
        assert [i["item"]["n"] for i in drain(c, qid)] == [2, 3, 4]


# ---------------------------------------------------------------------- known contract gaps
def test_openapi_does_not_document_422(client: httpx.Client) -> None:
    """The service never answers 422 (docs/api.md), so its OpenAPI must not promise one."""
    spec = ok(client.get("/openapi.json"))
    documented = [
        f"{m.upper()} {p}"
        for p, ops in spec["paths"].items()
        for m, op in ops.items()
        if "422" in op.get("responses", {})
    ]
    assert documented == [], f"OpenAPI documents 422 responses never sent: {documented}"


def test_dead_letter_queue_of_a_longest_id_is_reachable(client: httpx.Client) -> None:
    """A 128-char queue dead-letters into ``{id}-deadletter`` (139 chars): it must be poppable
    (or the dead-letter refused with the items left under the lock), never stranded."""
    name = (uuid.uuid4().hex * 4)[:128]
    push_one(client, name, {"n": 1})
    lk = pop_ack(client, name, ttl=300)
    r = lock_op(client, name, "dead-letter", lk["lock_id"])
    if r.status_code != 200:  # refused: the items must still be under the lock
        assert 400 <= r.status_code < 500
        assert stats(client, name)["in_flight"] == 1
        return
    dlq = r.json()["dead_letter_queue"]
    got = client.post(f"/queue/{dlq}/pop", params={"depth": 10})
    assert got.status_code == 200, (
        f"dead-lettered items were moved to {dlq!r} ({len(dlq)} chars), which the API refuses "
        f"to serve: {got.status_code} {got.text}"
    )
    assert [i["item"] for i in got.json()["items"]] == [{"n": 1}]


def test_encoded_slash_in_queue_id_is_invalid_queue_id(client: httpx.Client) -> None:
    """``a%2Fb`` is a queue id with a ``/``: 400 INVALID_QUEUE_ID, not a 404 for the route."""
    for method, path in [("POST", "/queue/a%2Fb/push"), ("GET", "/queue/a%2Fb"),
                         ("POST", "/queue/%2F/pop")]:  # fmt: skip
        r = client.request(method, path, json={"item": {"a": 1}})
        err(r, 400, "INVALID_QUEUE_ID", "queue_id")


def test_float_numbers_round_trip_by_value(client: httpx.Client, qid: str) -> None:
    """A number in exponent form comes back as the same JSON number, whatever the store.

    PostgreSQL's jsonb keeps the exact decimal value but writes it without an exponent
    (``6.02e+23`` -> ``602000000000000000000000``), so a Python client may see an int
    where it sent a float: the same JSON number (documented in docs/operations.md). Compared
    as decimals, nothing may change.
    """
    sent = {"avogadro": 6.02e23, "e16": 1e16, "huge": 1.5e300, "tiny": 5e-324}
    push(client, qid, *[({"fill": n}, None) for n in range(150)])
    push_one(client, qid, sent)
    push(client, qid, *[({"fill": n}, None) for n in range(150)])
    pop(client, qid, depth=100)
    pop(client, qid, depth=50)
    got = pop(client, qid)["items"][0]["item"]
    as_decimal = lambda v: json.loads(  # noqa: E731
        json.dumps(v), parse_float=Decimal, parse_int=Decimal
    )
    assert as_decimal(got) == as_decimal(sent)
