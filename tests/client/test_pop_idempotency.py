"""Idempotent pops through the client: a keyed pop's retry returns the same items and
lock; the client sends a fresh key with every pop by default."""

from __future__ import annotations

import uuid
from typing import Any

from pushpop_client import Client
from server_helpers import Served


def test_keyed_pop_replays_items_and_lock(api: Any, q: str) -> None:
    api.push_many(q, [({"n": 1},), ({"n": 2},), ({"n": 3},)])
    key = uuid.uuid4().hex
    first = api.pop(q, depth=2, require_ack=True, idempotency_key=key)
    again = api.pop(q, depth=2, require_ack=True, idempotency_key=key)
    assert [m.id for m in again.items] == [m.id for m in first.items]
    assert again.lock_id == first.lock_id
    plain_key = uuid.uuid4().hex
    taken = api.pop(q, idempotency_key=plain_key)
    assert [m.item["n"] for m in taken.items] == [3]
    assert api.pop(q, idempotency_key=plain_key).items == taken.items
    assert api.stats(q).depth == 0


def test_pop_idempotency_client_sends_a_key_per_pop(server: Served, q: str) -> None:
    with Client(server.url, transport=server.transport()) as c:  # pop_idempotency is on by default
        c.push_many(q, [({"n": 1},), ({"n": 2},)])
        assert [m.item["n"] for m in c.pop(q).items] == [1]
        assert [m.item["n"] for m in c.pop(q).items] == [2]  # a fresh key: a new pop
