"""SIGKILL the server under keyed pushes, automatic dead-lettering and redrive: the crash
ledger pattern. Every key's items are stored exactly once, and no item is lost or
duplicated while max_deliveries and redrive move items between queues."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter

import httpx

from supervise.server import ServerProcess

TTL = 3  # seconds a test lock lives: a lock orphaned by a crash ends soon


def _until_ok(c: httpx.Client, method: str, url: str, **kw: object) -> httpx.Response:
    """Retry through a crash and a restart; a 4xx is an answer, not an outage."""
    deadline = time.monotonic() + 60
    while True:
        try:
            r = c.request(method, url, **kw)  # type: ignore[arg-type]
            if r.status_code < 500:
                return r
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"{method} {url} did not succeed within 60 s")
        time.sleep(0.05)


def _killer(server: ServerProcess, stop: threading.Event, times: int) -> None:
    for _ in range(times):
        if stop.wait(0.7):
            return
        server.kill()
        server.start()


def _drain(c: httpx.Client, q: str) -> list[dict]:
    out: list[dict] = []
    while items := c.post(f"/queue/{q}/pop", params={"depth": 100}).json()["items"]:
        out += items
    return out


def test_keyed_pushes_retried_through_sigkills_are_stored_exactly_once(
    own_server: ServerProcess,
) -> None:
    q = f"crash-{uuid.uuid4().hex[:8]}"
    done: list[str] = []
    stop = threading.Event()

    def producer(n: int) -> None:
        with httpx.Client(base_url=own_server.url, timeout=5) as c:
            for i in range(n):
                key = f"{threading.get_ident()}-{i}"
                body = {"items": [{"item": {"key": key, "part": p}} for p in range(3)]}
                r = _until_ok(c, "POST", f"/queue/{q}/push", json=body,
                              headers={"Idempotency-Key": key})  # fmt: skip
                assert r.status_code == 200, r.text
                done.append(key)

    killer = threading.Thread(target=_killer, args=(own_server, stop, 4))
    producers = [threading.Thread(target=producer, args=(150,)) for _ in range(4)]
    killer.start()
    for t in producers:
        t.start()
    for t in producers:
        t.join()
    stop.set()
    killer.join()
    with httpx.Client(base_url=own_server.url, timeout=30) as c:
        stored = Counter((i["item"]["key"], i["item"]["part"]) for i in _drain(c, q))
    assert len(done) == 600
    twice = [k for k, n in stored.items() if n > 1]
    assert not twice, f"{len(twice)} items stored twice, e.g. {twice[:3]}"
    assert set(stored) == {(k, p) for k in done for p in range(3)}


def test_max_deliveries_and_redrive_through_sigkills_lose_and_duplicate_nothing(
    own_server: ServerProcess,
) -> None:
    q = f"poison-{uuid.uuid4().hex[:8]}"
    dlq = f"{q}-deadletter"
    n = 200
    with httpx.Client(base_url=own_server.url, timeout=5) as c:
        _until_ok(c, "PUT", f"/queue/{q}/settings", json={"max_deliveries": 2})
        body = {"items": [{"item": {"n": i}} for i in range(n)]}
        assert _until_ok(c, "POST", f"/queue/{q}/push", json=body).status_code == 200
        stop = threading.Event()
        killer = threading.Thread(target=_killer, args=(own_server, stop, 4))
        killer.start()
        # a consumer that fails every item: each is delivered twice, then dead-lettered;
        # then everything is redriven back, and the cycle repeats, crashes throughout
        deadline = time.monotonic() + 30
        while killer.is_alive() and time.monotonic() < deadline:
            params = {"depth": 20, "require_ack": "true", "ttl_seconds": TTL}
            r = _until_ok(c, "POST", f"/queue/{q}/pop", params=params)
            lock = r.json().get("lock_id")
            if lock:
                _until_ok(c, "POST", f"/queue/{q}/release", json={"lock_id": lock})
            else:
                _until_ok(c, "POST", f"/queue/{dlq}/redrive", json={"limit": 50})
        stop.set()
        killer.join()
    with httpx.Client(base_url=own_server.url, timeout=30) as c:
        # a pop or a release whose answer a crash swallowed leaves a lock nobody holds:
        # its items come back when it expires
        assert c.get(f"/queue/{dlq}").json()["locks"] == 0
        if c.get(f"/queue/{q}").json()["locks"]:
            time.sleep(TTL + 0.5)
        _until_ok(c, "PUT", f"/queue/{q}/settings", json={"max_deliveries": None})
        # draining one queue can flush the other's outbox into it (a redrive, a dead
        # letter): drain both until a whole pass finds nothing
        items: list[dict] = []
        while got := _drain(c, q) + _drain(c, dlq):
            items += got
    counts = Counter(i["item"]["n"] for i in items)
    assert sorted(counts) == list(range(n)), f"lost: {sorted(set(range(n)) - set(counts))}"
    assert max(counts.values()) == 1, f"duplicated: {[k for k, v in counts.items() if v > 1]}"
