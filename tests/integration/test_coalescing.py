"""Calls to a busy queue are coalesced (api/coalescer.py), and nobody can tell but /metrics.

Many clients hammer ONE queue on SQLite, PostgreSQL and Dapr mode, so requests go in
``Batch`` calls; every lone request's guarantee must still hold: each acknowledged push is
delivered once, in priority then FIFO order, each request gets its own answer, a refused
one leaves no trace, and one answered 503 is never stored.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from http_helpers import drain

from actor_service.stores.postgres import TABLE
from supervise.pgserver import PostgresServer
from supervise.server import ServerProcess

CLIENTS = 48


def coalesced(base_url: str) -> int:
    text = httpx.get(f"{base_url}/metrics", timeout=10).text
    m = re.search(r"^pushpop_coalesced_requests_total (\S+)$", text, re.M)
    assert m, "the coalescer's counter is missing from /metrics"
    return int(float(m.group(1)))


async def burst(
    base_url: str, calls: list[tuple[str, str, dict[str, Any]]]
) -> list[httpx.Response]:
    """All calls at once, ``CLIENTS`` connections: they pile up behind the queue's turn."""
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=60) as c:
        return await asyncio.gather(*(c.request(m, p, json=b) for m, p, b in calls))


def test_concurrent_pushes_and_pops_on_one_queue(server: ServerProcess, qid: str) -> None:
    """240 pushes (some of several items) from 48 connections, then 120 concurrent pops:
    every acknowledged item comes out once, each pop's items in priority/FIFO order, and
    the requests really were coalesced."""
    before = coalesced(server.url)
    calls = []
    for n in range(240):
        items = [{"item": {"n": n, "k": k}, "priority": n % 3} for k in range(1 + n % 4)]
        calls.append(("POST", f"/queue/{qid}/push", {"items": items}))
    replies = asyncio.run(burst(server.url, calls))
    pushed: dict[str, tuple[int, int, int]] = {}
    for (_, _, body), r in zip(calls, replies, strict=True):
        assert r.status_code == 200, r.text
        ids = r.json()["ids"]
        assert len(ids) == len(body["items"]) and ids == sorted(ids), r.text
        for i, e in zip(ids, body["items"], strict=True):
            pushed[i] = (e["priority"], e["item"]["n"], e["item"]["k"])
    assert len(pushed) == sum(len(b["items"]) for _, _, b in calls), "an id was given twice"
    assert coalesced(server.url) > before, "48 clients on one queue and nothing was coalesced"

    pops = [("POST", f"/queue/{qid}/pop?depth=3", {})] * 120
    got: list[dict[str, Any]] = []
    for r in asyncio.run(burst(server.url, pops)):
        assert r.status_code == 200, r.text
        items = r.json()["items"]
        keys = [(i["priority"], i["id"]) for i in items]
        assert keys == sorted(keys), f"one pop's items out of order: {keys}"
        got += items
    with httpx.Client(base_url=server.url, timeout=30) as c:
        got += drain(c, qid)
    delivered = [i["id"] for i in got]
    assert len(delivered) == len(set(delivered)), "an item was delivered twice"
    assert set(delivered) == set(pushed), "acknowledged items lost"
    for i in got:
        p, n, k = pushed[i["id"]]
        assert (i["priority"], i["item"]) == (p, {"n": n, "k": k})


@pytest.fixture(scope="module")
def capped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("capped")
    with ServerProcess(
        store="sqlite", sqlite_path=tmp / "q.sqlite3", env={"PUSHPOP_MAX_DEPTH": "40"}
    ) as server:
        yield server


def test_a_full_queue_refuses_only_the_requests_that_do_not_fit(capped: ServerProcess) -> None:
    """Max depth 40, 120 pushes of 1-3 items at once: each answer is its own (200 with
    ids, or QUEUE_FULL), exactly the accepted items are stored, the refused leave none."""
    q = f"full-{uuid.uuid4().hex[:8]}"
    calls = [
        (
            "POST",
            f"/queue/{q}/push",
            {"items": [{"item": {"n": n, "k": k}} for k in range(1 + n % 3)]},
        )
        for n in range(120)
    ]
    before = coalesced(capped.url)
    replies = asyncio.run(burst(capped.url, calls))
    accepted, refused = set(), set()
    for (_, _, body), r in zip(calls, replies, strict=True):
        n = body["items"][0]["item"]["n"]
        if r.status_code == 200:
            assert len(r.json()["ids"]) == len(body["items"])
            accepted.add(n)
        else:
            assert r.status_code == 429 and r.json()["error"]["code"] == "QUEUE_FULL", r.text
            refused.add(n)
    assert refused, "a 40-item queue took 240 items"
    assert coalesced(capped.url) > before
    with httpx.Client(base_url=capped.url, timeout=30) as c:
        stored = drain(c, q)
    assert sum(1 + n % 3 for n in accepted) == len(stored) <= 40
    assert {i["item"]["n"] for i in stored} == accepted, "a refused push left items behind"
    # a push is all or nothing: no request's items are split
    for n in accepted:
        assert sum(i["item"]["n"] == n for i in stored) == 1 + n % 3


# ---------------------------------------------------------------------- deadlines
DEADLINE = 2.0


@pytest.fixture(scope="module")
def slow_pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, str]]:
    with PostgresServer() as pg:
        url = pg.database("coalesce_deadline")
        tmp = tmp_path_factory.mktemp("slow")
        with ServerProcess(
            store="postgres", database_url=url, log_path=tmp / "server.log",
            env={"PUSHPOP_REQUEST_TIMEOUT": str(DEADLINE)},
        ) as server:  # fmt: skip
            yield server, url


def test_requests_waiting_past_their_deadline_answer_503_and_are_never_stored(
    slow_pg: tuple[ServerProcess, str],
) -> None:
    """The table is locked while 40 pushes wait for one queue: all answer 503 by their
    deadline (plus scheduling slack), and once the lock is gone none of them is stored."""
    server, url = slow_pg
    q = f"late-{uuid.uuid4().hex[:8]}"
    with httpx.Client(base_url=server.url, timeout=30) as c:  # activate it: its meta cached
        assert c.post(f"/queue/{q}/push", json={"item": {"first": True}}).status_code == 200
    locked, release = threading.Event(), threading.Event()

    def hold_lock() -> None:
        with psycopg.connect(url) as conn, conn.transaction():
            conn.execute(f"LOCK TABLE {TABLE} IN ACCESS EXCLUSIVE MODE")
            locked.set()
            release.wait(30)

    holder = threading.Thread(target=hold_lock, daemon=True)
    holder.start()
    assert locked.wait(10)
    try:
        calls = [("POST", f"/queue/{q}/push", {"item": {"n": n}}) for n in range(40)]
        start = time.monotonic()
        replies = asyncio.run(burst(server.url, calls))
        took = time.monotonic() - start
    finally:
        release.set()
        holder.join()
    codes = [r.json()["error"]["code"] if r.status_code != 200 else "OK" for r in replies]
    assert set(codes) == {"STORE_UNAVAILABLE"}, codes
    assert all(r.status_code == 503 for r in replies)
    assert took < DEADLINE + 1.5, f"40 waiting pushes answered after {took:.2f}s"
    with httpx.Client(base_url=server.url, timeout=30) as c:
        stored = drain(c, q)
    assert [i["item"] for i in stored] == [{"first": True}], "a push answered 503 was stored"


def test_coalescing_can_be_turned_off(tmp_path: Path) -> None:
    """PUSHPOP_COALESCE=false: the same burst works, one actor call per request."""
    with ServerProcess(
        store="sqlite", sqlite_path=tmp_path / "q.sqlite3", env={"PUSHPOP_COALESCE": "false"}
    ) as server:
        calls = [("POST", "/queue/off/push", {"item": {"n": n}}) for n in range(100)]
        assert all(r.status_code == 200 for r in asyncio.run(burst(server.url, calls)))
        text = httpx.get(f"{server.url}/metrics", timeout=10).text
        assert "pushpop_coalesced_requests_total" not in text
        with httpx.Client(base_url=server.url, timeout=30) as c:
            assert sorted(i["item"]["n"] for i in drain(c, "off")) == list(range(100))
