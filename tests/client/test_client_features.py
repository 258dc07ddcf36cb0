"""The workers' features through ``pushpop_client``, sync and async, on every runtime: long
poll, delayed items and delayed release, idempotent push, per-queue settings with
automatic dead-lettering, redrive, peek and the queue list (one page, and all pages)."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import pytest
from pushpop_client import UNSET, Client, PushpopError
from pushpop_client import errors as e
from server_helpers import Served


def test_long_poll_pop_wakes_on_a_push(api: Any, server: Served, q: str) -> None:
    t0 = time.monotonic()
    assert api.pop(q, wait_seconds=1).items == []
    assert time.monotonic() - t0 >= 0.9
    timer = threading.Timer(
        0.5, lambda: Client(server.url, transport=server.transport()).push(q, {"n": 1})
    )
    timer.start()
    t0 = time.monotonic()
    got = api.pop(q, require_ack=True, wait_seconds=10)
    timer.join()
    assert [m.item for m in got.items] == [{"n": 1}] and got.lock_id
    assert 0.4 <= time.monotonic() - t0 < 5
    with pytest.raises(e.InvalidParameterError):
        api.pop(q, wait_seconds=21)


def test_delayed_push_and_delayed_release(api: Any, q: str) -> None:
    api.push(q, {"n": 1}, delay_seconds=1)
    api.push_many(q, [{"item": {"n": 2}, "delay_seconds": 0}, ({"n": 3}, 1, 1)])
    st = api.stats(q)
    assert (st.depth, st.delayed) == (1, 2)
    assert [m.item["n"] for m in api.pop(q, depth=5).items] == [2]
    time.sleep(1.1)
    held = api.pop(q, depth=5, require_ack=True)
    assert [m.item["n"] for m in held.items] == [1, 3]
    assert api.release(q, held.lock_id, delay_seconds=1) == 2
    assert api.pop(q).items == [] and api.stats(q).delayed == 2
    time.sleep(1.1)
    back = api.pop(q, depth=5)
    assert [(m.item["n"], m.deliveries) for m in back.items] == [(1, 2), (3, 2)]
    with pytest.raises(e.InvalidDelayError):
        api.push(q, {"n": 4}, delay_seconds=86401)


def test_idempotent_push_replays(api: Any, q: str) -> None:
    key = uuid.uuid4().hex
    first = api.push_many(q, [({"n": 1},), ({"n": 2},)], idempotency_key=key)
    again = api.push_many(q, [({"n": 1},), ({"n": 2},)], idempotency_key=key)
    assert not first.replayed and again.replayed
    assert again.ids == first.ids and again.pushed == 2
    assert api.stats(q).depth == 2
    with pytest.raises(e.IdempotencyKeyReusedError) as reused:
        api.push(q, {"n": 3}, idempotency_key=key)
    assert reused.value.status == 422
    with pytest.raises(e.InvalidIdempotencyKeyError):
        api.push(q, {"n": 3}, idempotency_key="x" * 256)


def test_settings_max_deliveries_and_redrive(api: Any, q: str) -> None:
    s = api.get_settings(q)
    assert (s.queue_id, s.max_deliveries, s.dead_letter_queue) == (q, None, f"{q}-deadletter")
    s = api.set_settings(q, max_deliveries=2)
    assert (s.max_deliveries, s.dead_letter_queue) == (2, f"{q}-deadletter")
    assert api.set_settings(q, dead_letter_queue=f"{q}-dlq").max_deliveries == 2
    assert api.set_settings(q, dead_letter_queue=None).dead_letter_queue == f"{q}-deadletter"
    with pytest.raises(e.InvalidSettingsError):
        api.set_settings(q, max_deliveries=0)

    api.push_many(q, [({"n": 1},), ({"n": 2},)])
    held = api.pop(q, depth=2, require_ack=True)
    assert api.dead_letter(q, held.lock_id).dead_letter_queue == f"{q}-deadletter"
    dlq = f"{q}-deadletter"
    assert [m.item["n"] for m in api.peek(dlq)] == [1, 2]
    moved = api.redrive(dlq, limit=1)
    assert (moved.moved, moved.to, moved.remaining) == (1, q, 1)
    [m] = api.pop(q).items
    assert (m.item, m.deliveries) == ({"n": 1}, 1)
    assert m.origin is not None and m.origin["queue_id"] == dlq
    assert api.set_settings(q, max_deliveries=None, dead_letter_queue=UNSET).max_deliveries is None


def test_peek_takes_nothing(api: Any, q: str) -> None:
    api.push_many(q, [({"n": i}, i % 2) for i in range(5)])
    seen = api.peek(q, limit=3)
    assert [(m.item["n"], m.priority) for m in seen] == [(0, 0), (2, 0), (4, 0)]
    assert all(m.deliveries in (0, 1) for m in seen)
    assert api.stats(q).depth == 5
    assert [m.id for m in api.pop(q, depth=3).items] == [m.id for m in seen]


def test_queue_list_pages(api: Any) -> None:
    prefix = f"l{uuid.uuid4().hex[:8]}-"
    names = [f"{prefix}{i}" for i in range(5)]
    for name in names:
        api.push(name, {"n": 1})
    held = api.pop(names[0], require_ack=True)
    page = api.queues(prefix=prefix, limit=2)
    assert [x.queue_id for x in page.queues] == names[:2] and page.next == names[1]
    first = page.queues[0]
    assert (first.depth, first.in_flight, first.locks) == (0, 1, 1)
    assert [x.queue_id for x in api.iter_queues(prefix=prefix, page_size=2)] == names
    api.acknowledge(names[0], held.lock_id)
    assert [x.queue_id for x in api.iter_queues(prefix=prefix)] == names[1:]
    with pytest.raises(PushpopError) as bad:
        api.queues(limit=0)
    assert bad.value.code == "INVALID_PARAMETER"


def test_release_after_max_deliveries_dead_letters(api: Any, q: str) -> None:
    api.set_settings(q, max_deliveries=2)
    api.push_many(q, [({"n": 1},), ({"n": 2},)])
    for _ in range(2):  # delivered twice, released twice: the second release dead-letters
        held = api.pop(q, depth=2, require_ack=True)
        api.release(q, held.lock_id)
    assert api.stats(q).depth == 0
    moved = api.pop(f"{q}-deadletter", depth=10).items
    assert [m.item["n"] for m in moved] == [1, 2]
    assert all(m.origin is not None and m.origin["queue_id"] == q for m in moved)
