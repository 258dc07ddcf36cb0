"""Every endpoint the server has had since 0.1 through ``pushpop_client``, sync and async,
against real servers of every runtime (embedded on SQLite and PostgreSQL, Dapr): typed
results, and one exception class per error code with the answer's status and code."""

from __future__ import annotations

import time
from typing import Any

import pytest
from pushpop_client import (
    DeadLetterResult,
    LockExpiredError,
    LockNotFoundError,
    Message,
    PopResult,
    PushpopError,
)
from pushpop_client import errors as e


def test_push_pop_lock_cycle(api: Any, q: str) -> None:
    first = api.push(q, {"n": 1}, priority=2)
    assert (first.pushed, len(first.ids), first.depth) == (1, 1, 1)
    many = api.push_many(q, [{"item": {"n": 2}, "priority": 0}, ({"n": 3},), ({"n": 4}, 2)])
    assert (many.pushed, many.depth) == (3, 4)
    assert many.ids == sorted(many.ids) and first.ids[0] < many.ids[0]

    st = api.stats(q)
    assert (st.queue_id, st.depth, st.in_flight, st.locks) == (q, 4, 0, 0)
    assert st.by_priority == {0: 1, 1: 1, 2: 2}
    assert st.oldest_enqueued_at is not None and st.oldest_enqueued_at <= time.time()

    plain = api.pop(q)
    assert isinstance(plain, PopResult) and plain.lock_id is None
    [m] = plain.items
    assert isinstance(m, Message)
    assert (m.item, m.priority, m.deliveries, m.id) == ({"n": 2}, 0, 1, many.ids[0])

    held = api.pop(q, depth=2, require_ack=True, ttl_seconds=30)
    assert [x.item["n"] for x in held.items] == [3, 1]
    assert held.lock_id and held.lock_expires_at and held.lock_expires_at > time.time() + 25
    ext = api.extend_lock(q, held.lock_id, 10)
    assert ext.lock_id == held.lock_id
    assert ext.lock_expires_at == pytest.approx(held.lock_expires_at + 10, abs=0.01)
    assert api.stats(q).in_flight == 2
    assert api.release(q, held.lock_id) == 2

    again = api.pop(q, depth=3, require_ack=True)
    assert [x.item["n"] for x in again.items] == [3, 1, 4]
    assert [x.deliveries for x in again.items] == [2, 2, 1]
    moved = api.dead_letter(q, again.lock_id)
    assert isinstance(moved, DeadLetterResult)
    assert (moved.dead_lettered, moved.dead_letter_queue) == (3, f"{q}-deadletter")
    dead = api.pop(f"{q}-deadletter", depth=10)
    assert [x.item["n"] for x in dead.items] == [3, 1, 4]

    api.push(q, {"n": 5})
    one = api.pop(q, require_ack=True)
    assert api.acknowledge(q, one.lock_id) == 1
    with pytest.raises(LockNotFoundError) as gone:
        api.acknowledge(q, one.lock_id)
    assert (gone.value.status, gone.value.code) == (404, "LOCK_NOT_FOUND")

    api.push_many(q, [({"n": 6},), ({"n": 7},)])
    assert api.purge(q) == 2
    assert api.stats(q).depth == 0
    assert api.pop(q).items == []


def test_probes(api: Any) -> None:
    assert api.health().status == "ok"
    ready = api.ready()
    assert ready.status == "ready" and ready.store in ("sqlite", "postgres")
    assert ready.runtime in ("embedded", "dapr")


@pytest.mark.parametrize(
    ("call", "cls", "status"),
    [
        (lambda c, q: c.push(q, {"n": 1}, priority=-1), e.InvalidPriorityError, 400),
        (lambda c, q: c.push(q, {"n": 1}, priority=True), e.InvalidPriorityError, 400),
        (lambda c, q: c.push_many(q, []), e.NoItemsError, 400),
        (lambda c, q: c.push(q, {"b": "x" * 70_000}), e.ItemTooLargeError, 413),
        (lambda c, q: c.pop(q, depth=0), e.InvalidDepthError, 400),
        (lambda c, q: c.pop(q, require_ack=True, ttl_seconds=0), e.InvalidTtlError, 400),
        (lambda c, q: c.pop(q + "!bad"), e.InvalidQueueIdError, 400),
        (lambda c, q: c.release(q, "no-such-lock"), e.LockNotFoundError, 404),
    ],
)
def test_errors_map_to_their_class(api: Any, q: str, call: Any, cls: type, status: int) -> None:
    with pytest.raises(cls) as raised:
        call(api, q)
    err = raised.value
    assert isinstance(err, PushpopError)
    assert err.status == status and err.code == cls.code and err.message  # type: ignore[attr-defined]


def test_lock_expired(api: Any, q: str) -> None:
    api.push(q, {"n": 1})
    held = api.pop(q, require_ack=True, ttl_seconds=1)
    time.sleep(1.2)
    with pytest.raises(LockExpiredError) as raised:
        api.acknowledge(q, held.lock_id)
    assert raised.value.status == 410
    back = api.pop(q)
    assert [m.item for m in back.items] == [{"n": 1}] and back.items[0].deliveries == 2
