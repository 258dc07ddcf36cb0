"""The workers' semantics of the contract, every runtime: idempotent push, deliveries and
max_deliveries, delayed delivery, settings, redrive, peek.

Each rule is checked through HTTP on the real app (in this process on SQLite and
PostgreSQL; ``pushpop serve`` in Dapr mode with component and direct state): the
``client`` fixture runs each test once per runtime.
"""

from __future__ import annotations

import time
import uuid

import httpx

from tests.http_helpers import err, ok


def _q() -> str:
    return f"w-{uuid.uuid4().hex[:12]}"


def _stats(c: httpx.Client, q: str) -> dict:
    return ok(c.get(f"/queue/{q}"))


def _pop(c: httpx.Client, q: str, **params: object) -> dict:
    return ok(c.post(f"/queue/{q}/pop", params=params))


def test_a_keyed_push_stores_once_and_replays_its_first_answer(client: httpx.Client) -> None:
    q = _q()
    key = {"Idempotency-Key": f"order-{uuid.uuid4()}"}
    body = {"items": [{"item": {"n": 1}}, {"item": {"n": 2}, "priority": 0}]}
    first = client.post(f"/queue/{q}/push", json=body, headers=key)
    assert ok(first)["pushed"] == 2 and "idempotent-replayed" not in first.headers
    again = client.post(f"/queue/{q}/push", json=body, headers=key)
    assert again.headers.get("idempotent-replayed") == "true"
    assert ok(again)["ids"] == first.json()["ids"] and again.json()["pushed"] == 2
    assert _stats(client, q)["depth"] == 2, "a replayed push must store nothing"
    # formatting of the body does not matter, its content does
    spaced = client.post(
        f"/queue/{q}/push",
        content=b'{ "items" : [ {"item": {"n": 1}}, {"priority": 0, "item": {"n": 2}} ] }',
        headers={**key, "content-type": "application/json"},
    )
    assert spaced.headers.get("idempotent-replayed") == "true", spaced.text
    other = client.post(f"/queue/{q}/push", json={"item": {"n": 3}}, headers=key)
    err(other, 422, "IDEMPOTENCY_KEY_REUSED")
    assert _stats(client, q)["depth"] == 2
    # the key is scoped to the queue
    elsewhere = client.post(f"/queue/{q}-b/push", json=body, headers=key)
    assert "idempotent-replayed" not in elsewhere.headers and ok(elsewhere)["pushed"] == 2
    err(
        client.post(f"/queue/{q}/push", json=body, headers={"Idempotency-Key": "k" * 256}),
        400,
        "INVALID_IDEMPOTENCY_KEY",
    )


def test_deliveries_count_and_max_deliveries_moves_poison_to_the_dead_letter_queue(
    client: httpx.Client,
) -> None:
    q = _q()
    settings = ok(client.put(f"/queue/{q}/settings", json={"max_deliveries": 2}))
    assert settings == {"queue_id": q, "max_deliveries": 2, "dead_letter_queue": f"{q}-deadletter"}
    pushed = ok(client.post(f"/queue/{q}/push", json={"item": {"job": "poison"}}))
    first = _pop(client, q, require_ack="true", ttl_seconds=30)
    assert first["items"][0]["deliveries"] == 1
    ok(client.post(f"/queue/{q}/release", json={"lock_id": first["lock_id"]}))
    second = _pop(client, q, require_ack="true", ttl_seconds=30)
    assert second["items"][0]["deliveries"] == 2
    ok(client.post(f"/queue/{q}/release", json={"lock_id": second["lock_id"]}))
    # delivered twice and back again: it moved to the dead-letter queue
    assert _pop(client, q)["items"] == []
    dead = _pop(client, f"{q}-deadletter")["items"]
    assert [d["item"] for d in dead] == [{"job": "poison"}]
    assert dead[0]["origin"] == {"queue_id": q, "id": pushed["ids"][0]}
    assert dead[0]["deliveries"] == 1, "the count restarts in the dead-letter queue"


def test_an_expiring_lock_also_dead_letters_at_max_deliveries(client: httpx.Client) -> None:
    q = _q()
    target = f"{q}-failed"
    ok(client.put(f"/queue/{q}/settings", json={"max_deliveries": 1, "dead_letter_queue": target}))
    ok(client.post(f"/queue/{q}/push", json={"item": {"x": 1}}))
    assert _pop(client, q, require_ack="true", ttl_seconds=1)["items"][0]["deliveries"] == 1
    time.sleep(1.2)
    assert _stats(client, q)["depth"] == 0  # expiry ran: nothing came back here
    assert [i["item"] for i in _pop(client, target)["items"]] == [{"x": 1}]
    # null resets a setting to its default
    reset = ok(client.put(f"/queue/{q}/settings", json={"dead_letter_queue": None}))
    assert reset == {"queue_id": q, "max_deliveries": 1, "dead_letter_queue": f"{q}-deadletter"}
    assert ok(client.get(f"/queue/{q}/settings")) == reset


def test_settings_refuse_what_they_do_not_take(client: httpx.Client) -> None:
    q = _q()
    for body in (
        {"max_deliveries": 0},
        {"max_deliveries": 1001},
        {"max_deliveries": "3"},
        {"max_deliveries": True},
        {"dead_letter_queue": "has space"},
        {"dead_letter_queue": 7},
        {"max_delivery": 3},
    ):
        err(client.put(f"/queue/{q}/settings", json=body), 400, "INVALID_SETTINGS")
    defaults = ok(client.get(f"/queue/{q}/settings"))
    assert defaults == {
        "queue_id": q,
        "max_deliveries": None,
        "dead_letter_queue": f"{q}-deadletter",
    }


def test_delayed_items_stay_invisible_until_due(client: httpx.Client) -> None:
    q = _q()
    ok(client.post(f"/queue/{q}/push", json={"items": [
        {"item": {"n": "later"}, "delay_seconds": 1},
        {"item": {"n": "now"}},
    ]}))  # fmt: skip
    stats = _stats(client, q)
    assert (stats["depth"], stats["delayed"]) == (1, 1)
    assert [i["item"]["n"] for i in _pop(client, q, depth=10)["items"]] == ["now"]
    time.sleep(1.1)
    assert [i["item"]["n"] for i in _pop(client, q, depth=10)["items"]] == ["later"]
    assert _stats(client, q)["delayed"] == 0
    err(client.post(f"/queue/{q}/push", json={"item": {}, "delay_seconds": 86401}), 400,
        "INVALID_DELAY")  # fmt: skip
    err(client.post(f"/queue/{q}/push", json={"item": {}, "delay_seconds": 1.5}), 400,
        "INVALID_DELAY")  # fmt: skip
    err(client.post(f"/queue/{q}/push", json={"item": {}, "delay_seconds": None}), 400,
        "INVALID_DELAY")  # fmt: skip


def test_release_with_a_delay_brings_items_back_later_in_order(client: httpx.Client) -> None:
    q = _q()
    ok(client.post(f"/queue/{q}/push", json={"items": [{"item": {"n": i}} for i in range(3)]}))
    popped = _pop(client, q, depth=2, require_ack="true")
    bad = {"lock_id": popped["lock_id"], "delay_seconds": -1}
    err(client.post(f"/queue/{q}/release", json=bad), 400, "INVALID_DELAY")
    released = client.post(
        f"/queue/{q}/release", json={"lock_id": popped["lock_id"], "delay_seconds": 1}
    )
    assert ok(released) == {"released": 2}
    assert _stats(client, q)["delayed"] == 2
    assert [i["item"]["n"] for i in _pop(client, q, depth=10, require_ack="true")["items"]] == [2]
    time.sleep(1.1)
    back = _pop(client, q, depth=10)["items"]
    assert [(i["item"]["n"], i["deliveries"]) for i in back] == [(0, 2), (1, 2)]


def test_redrive_moves_waiting_items_in_order_with_their_origin(client: httpx.Client) -> None:
    q = _q()
    dlq = f"{q}-deadletter"
    pushed = ok(client.post(f"/queue/{dlq}/push", json={"items": [
        {"item": {"n": 1}, "priority": 2}, {"item": {"n": 2}, "priority": 0},
        {"item": {"n": 3}, "priority": 2},
    ]}))  # fmt: skip
    moved = ok(client.post(f"/queue/{dlq}/redrive", json={"limit": 2}))
    assert moved == {"moved": 2, "to": q, "remaining": 1}
    assert ok(client.post(f"/queue/{dlq}/redrive", json={})) == {"moved": 1, "to": q,
                                                                 "remaining": 0}  # fmt: skip
    items = _pop(client, q, depth=10)["items"]
    # pop order of the source: n=2 (priority 0), then n=1 and n=3, each keeping its priority
    assert [(i["item"]["n"], i["priority"]) for i in items] == [(2, 0), (1, 2), (3, 2)]
    assert [i["origin"]["id"] for i in items] == [pushed["ids"][1], pushed["ids"][0],
                                                  pushed["ids"][2]]  # fmt: skip
    assert all(i["origin"]["queue_id"] == dlq and i["deliveries"] == 1 for i in items)
    err(client.post(f"/queue/{q}/redrive", json={}), 400, "INVALID_REQUEST", "to")
    err(client.post(f"/queue/{q}/redrive", json={"to": q}), 400, "INVALID_REQUEST")
    err(client.post(f"/queue/{dlq}/redrive", json={"limit": 0}), 400, "INVALID_PARAMETER")


def test_peek_shows_the_next_items_without_taking_or_counting(client: httpx.Client) -> None:
    q = _q()
    ok(client.post(f"/queue/{q}/push", json={"items": [
        {"item": {"n": 1}, "priority": 1}, {"item": {"n": 0}, "priority": 0},
        {"item": {"n": 2}, "priority": 1},
    ]}))  # fmt: skip
    before = _stats(client, q)
    peeked = ok(client.get(f"/queue/{q}/items", params={"limit": 2}))["items"]
    assert [i["item"]["n"] for i in peeked] == [0, 1]
    assert all(i["deliveries"] == 0 for i in peeked)
    assert _stats(client, q) == before
    popped = _pop(client, q, depth=3)["items"]
    assert [i["id"] for i in popped[:2]] == [i["id"] for i in peeked]
    assert all(i["deliveries"] == 1 for i in popped)
    err(client.get(f"/queue/{q}/items", params={"limit": 101}), 400, "INVALID_PARAMETER")


def test_a_keyed_pop_answers_its_retry_with_the_same_items_and_lock(client: httpx.Client) -> None:
    q = _q()
    key = {"Idempotency-Key": f"pop-{uuid.uuid4()}"}
    # an empty pop is not remembered: its retry pops afresh
    assert ok(client.post(f"/queue/{q}/pop", headers=key))["items"] == []
    ok(client.post(f"/queue/{q}/push", json={"items": [{"item": {"n": i}} for i in range(4)]}))
    params = {"depth": 2, "require_ack": "true", "ttl_seconds": 60}
    first = client.post(f"/queue/{q}/pop", params=params, headers=key)
    assert [i["item"]["n"] for i in ok(first)["items"]] == [0, 1]
    again = client.post(f"/queue/{q}/pop", params=params, headers=key)
    assert again.headers.get("idempotent-replayed") == "true"
    assert ok(again) == first.json(), "the same items, the same lock"
    assert _stats(client, q)["depth"] == 2 and _stats(client, q)["locks"] == 1
    err(client.post(f"/queue/{q}/pop", params={"depth": 3}, headers=key), 422,
        "IDEMPOTENCY_KEY_REUSED")  # fmt: skip
    # a plain keyed pop: the items are gone after the first answer, the retry still has them
    plain = {"Idempotency-Key": f"plain-{uuid.uuid4()}"}
    taken = ok(client.post(f"/queue/{q}/pop", headers=plain))["items"]
    assert ok(client.post(f"/queue/{q}/pop", headers=plain))["items"] == taken
    assert _stats(client, q)["depth"] == 1


def test_a_long_queue_id_needs_a_named_dead_letter_queue(client: httpx.Client) -> None:
    """``{id}-deadletter`` of a 120-character id would be 131 characters: no queue could
    be reached there, so max_deliveries asks for a dead_letter_queue, and dead-letter goes
    to the one named."""
    q = "L" * 108 + uuid.uuid4().hex[:12]
    err(client.put(f"/queue/{q}/settings", json={"max_deliveries": 2}), 400,
        "INVALID_SETTINGS", "dead_letter_queue")  # fmt: skip
    err(client.post(f"/queue/{q}/dead-letter", json={"lock_id": "x"}), 404, "LOCK_NOT_FOUND")
    ok(client.post(f"/queue/{q}/push", json={"item": {"n": 1}}))
    lock = _pop(client, q, require_ack="true")["lock_id"]
    err(client.post(f"/queue/{q}/dead-letter", json={"lock_id": lock}), 400, "INVALID_QUEUE_ID")
    assert _stats(client, q)["in_flight"] == 1, "a refused dead-letter moves nothing"
    target = f"dlq-{uuid.uuid4().hex[:8]}"
    ok(client.put(f"/queue/{q}/settings", json={"max_deliveries": 2, "dead_letter_queue": target}))
    moved = ok(client.post(f"/queue/{q}/dead-letter", json={"lock_id": lock}))
    assert moved == {"dead_lettered": 1, "dead_letter_queue": target}
    assert [i["item"] for i in _pop(client, target)["items"]] == [{"n": 1}]
