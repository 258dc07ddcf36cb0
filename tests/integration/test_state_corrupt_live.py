"""Rows corrupted in the real database: that queue answers STATE_CORRUPT, nothing else stops.

The server is stopped, rows are changed directly in PostgreSQL or SQLite (as a bad
restore or a hand edit would), and the server is started again: ``/health``, ``/ready``,
every other queue and SIGTERM must keep working, however broken the rows.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from http_helpers import err, ok
from server_helpers import dapr_host, pg_database

from supervise.pgserver import PostgresServer
from supervise.server import ServerProcess, wait_ready

ENV = {"PUSHPOP_SEGMENT_SIZE": "4"}


def key(q: str, name: str) -> str:
    return f"pushpop||QueueActor||{q}||{name}"


def rewrite(store: str, where: str, k: str, change: Callable[[Any], Any] | None) -> None:
    """Apply ``change`` to row ``k``'s JSON value (``None``: delete the row)."""
    if store == "sqlite":
        with sqlite3.connect(where) as conn:
            if change is None:
                n = conn.execute("DELETE FROM state WHERE key = ?", (k,)).rowcount
            else:
                (value,) = conn.execute("SELECT value FROM state WHERE key = ?", (k,)).fetchone()
                n = conn.execute("UPDATE state SET value = ? WHERE key = ?",
                                 (json.dumps(change(json.loads(value))), k)).rowcount  # fmt: skip
    else:
        with psycopg.connect(where) as conn:
            if change is None:
                n = conn.execute("DELETE FROM state WHERE key = %s", (k,)).rowcount
            else:
                (value,) = conn.execute("SELECT value FROM state WHERE key = %s", (k,)).fetchone()
                n = conn.execute("UPDATE state SET value = %s::jsonb WHERE key = %s",
                                 (json.dumps(change(value)), k)).rowcount  # fmt: skip
    assert n == 1, f"row {k} not found"


def head_past_tail(meta: dict) -> dict:
    _, tail, enq = meta["pri"]["1"]
    meta["pri"]["1"] = [tail + 2, tail, enq]
    return meta


def tail_rolled_back(meta: dict) -> dict:
    """Meta as an older copy had it: the last segment's items lie past its tail."""
    head, _, enq = meta["pri"]["1"]
    meta["pri"]["1"] = [head, 8, enq]
    meta["next_id"] = 9
    return meta


def exercise(host: ServerProcess, store: str, where: str, restart: Callable[[], None]) -> None:
    tag = uuid.uuid4().hex[:6]
    seg, head, lock, back, fine = (f"{n}-{tag}" for n in ("seg", "head", "lock", "back", "fine"))
    c = httpx.Client(base_url=host.url, timeout=30)
    for q in (seg, head, lock, back, fine):
        ok(c.post(f"/queue/{q}/push", json={"items": [{"item": {"n": n}} for n in range(9)]}))
    lock_id = ok(c.post(f"/queue/{lock}/pop", params={"depth": 2, "require_ack": "true",
                                                       "ttl_seconds": 600}))["lock_id"]  # fmt: skip
    host.stop()
    rewrite(store, where, key(seg, "s:1:0"), None)
    rewrite(store, where, key(head, "meta"), head_past_tail)
    rewrite(store, where, key(lock, f"l:{lock_id}"), None)
    rewrite(store, where, key(back, "meta"), tail_rolled_back)
    restart()
    c = httpx.Client(base_url=host.url, timeout=30)
    calls = [
        (seg, lambda: c.post(f"/queue/{seg}/pop", params={"depth": 20}), "s:1:0"),
        (head, lambda: c.post(f"/queue/{head}/pop", params={"depth": 1}), "meta"),
        (lock, lambda: c.post(f"/queue/{lock}/release", json={"lock_id": lock_id}), f"l:{lock_id}"),
        # a push must not overwrite the items past the tail (segment size 4: s:1:2 holds 8)
        (back, lambda: c.post(f"/queue/{back}/push", json={"item": {"n": 99}}), "s:1:2"),
    ]
    for q, call, row in calls:
        for _ in range(2):  # and again: the failure is not cached into something else
            start = time.monotonic()
            r = call()
            took = time.monotonic() - start
            msg = err(r, 500, "STATE_CORRUPT", repr(q))
            assert took < 1.0, f"{q}: {took:.2f}s"
            assert c.get("/health").status_code == 200
            assert c.get("/ready").status_code == 200, "one bad queue made the host unready"
        assert row in host.log_path.read_text(), f"no log line names {row}: {msg}"
    got = ok(c.post(f"/queue/{fine}/pop", params={"depth": 20}))["items"]
    assert [i["item"]["n"] for i in got] == list(range(9))
    # the explicit admin repair keeps what can be read, says what was lost, and the queue
    # serves again (a STATE_CORRUPT is never "fixed" silently by a plain call)
    kept = {seg: list(range(4, 9)), head: list(range(9)), lock: list(range(2, 9)),
            back: list(range(9))}  # fmt: skip
    for q, want in kept.items():
        report = ok(c.post(f"/queue/{q}/repair"))
        assert report["repaired"] and report["items_kept"] == len(want), report
        got = ok(c.post(f"/queue/{q}/pop", params={"depth": 20}))["items"]
        assert [i["item"]["n"] for i in got] == want, (q, report)
    assert "repaired by an admin" in host.log_path.read_text()
    errors = [ln for ln in host.log_path.read_text().splitlines() if "STATE_CORRUPT queue=" in ln]
    assert len(errors) == 8, errors  # one ERROR line per failed call
    assert all(" ERROR " in ln for ln in errors), errors


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_corrupt_rows_in_embedded_mode(store: str, pg: PostgresServer, tmp_path: Path) -> None:
    url = pg_database(pg, f"corrupt_{uuid.uuid4().hex[:8]}") if store == "postgres" else None
    path = tmp_path / "state.sqlite3"
    host = ServerProcess(store=store, database_url=url, sqlite_path=path, env=ENV,
                         log_path=tmp_path / "host.log", log_level="info")  # fmt: skip
    host.start()
    try:
        exercise(host, store, url or str(path), host.start)
    finally:
        host.stop()


@pytest.mark.dapr
def test_corrupt_rows_in_dapr_mode(
    pg: PostgresServer, control_plane: tuple[str, str], tmp_path: Path
) -> None:
    url = pg_database(pg, "corrupt_dapr")
    host = dapr_host(tmp_path, "corrupt", control_plane, database_url=url,
                     env={**ENV, "PUSHPOP_LOG_LEVEL": "info"})  # fmt: skip
    host.log_level = "info"

    def start() -> None:
        host.start(60)
        wait_ready(host.url, 60)

    start()
    try:
        exercise(host, "postgres", url, start)
    finally:
        host.stop()
