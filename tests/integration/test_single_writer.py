"""One writer per database: a second host is refused, a lost claim fences its host.

Real processes on a real PostgreSQL and a real SQLite file: two embedded hosts serving
one database from their own caches would deliver items twice.
"""

from __future__ import annotations

import re
import time
import uuid
from pathlib import Path

import httpx
import psycopg
import pytest
from http_helpers import err, ok
from server_helpers import dapr_host, pg_database

from actor_service.stores.claim import ClaimRefused, PostgresClaim
from supervise.pgserver import PostgresServer
from supervise.server import ServerProcess, wait_ready

REFUSAL = re.compile(
    r"pushpop: refusing to start: the database is held by (embedded|dapr) host \S+ pid (\d+) "
    r"since \S+; .*Dapr mode"
)


def refused(server: ServerProcess) -> re.Match[str]:
    """Start ``server``, expect exit status 3 and the one-line refusal naming the holder."""
    with pytest.raises(RuntimeError, match=r"server exited \(3\)"):
        server.start(timeout=60)
    lines = [ln for ln in server.log_path.read_text().splitlines() if "refusing" in ln]
    assert len(lines) == 1, server.log_path.read_text()[-2000:]
    m = REFUSAL.search(lines[0])
    assert m, lines[0]
    return m


def push_ids(c: httpx.Client, q: str, n: int, tag: str) -> list[str]:
    items = [{"item": {"tag": tag, "n": i}} for i in range(n)]
    return ok(c.post(f"/queue/{q}/push", json={"items": items}))["ids"]


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_second_embedded_host_is_refused(store: str, pg: PostgresServer, tmp_path: Path) -> None:
    url = pg_database(pg, f"sw_{uuid.uuid4().hex[:8]}") if store == "postgres" else None
    common = {"store": store, "database_url": url, "sqlite_path": tmp_path / "s.sqlite3"}
    with ServerProcess(**common, log_path=tmp_path / "a.log") as a:
        b = ServerProcess(**common, log_path=tmp_path / "b.log")
        m = refused(b)
        assert m.group(1) == "embedded" and int(m.group(2)) == a.pid
        # the holder is unaffected and the queue has exactly one reader
        c = httpx.Client(base_url=a.url, timeout=30)
        ids = push_ids(c, "q", 10, "a")
        got = ok(c.post("/queue/q/pop", params={"depth": 20}))["items"]
        assert [i["id"] for i in got] == ids
    # once the holder is gone, the database is free again
    with ServerProcess(**common, log_path=tmp_path / "c.log") as c2:
        assert ok(httpx.get(c2.url + "/queue/q"))["depth"] == 0


@pytest.mark.dapr
@pytest.mark.parametrize("first", ["embedded", "dapr"])
def test_embedded_and_dapr_hosts_never_share_a_database(
    first: str, pg: PostgresServer, control_plane: tuple[str, str], tmp_path: Path
) -> None:
    url = pg_database(pg, f"swd_{first}")
    embedded = ServerProcess(store="postgres", database_url=url, log_path=tmp_path / "e.log")
    dapr = dapr_host(tmp_path, f"sw-{first}", control_plane, database_url=url)
    holder, other = (embedded, dapr) if first == "embedded" else (dapr, embedded)
    holder.start(60)
    try:
        wait_ready(holder.url, 60)
        m = refused(other)
        assert m.group(1) == first
        assert ok(httpx.get(holder.url + "/queue/x", timeout=30))["depth"] == 0
    finally:
        holder.stop()


def test_dapr_hosts_may_share_a_database(pg: PostgresServer) -> None:
    """Shared claims coexist (placement keeps one activation per actor); an exclusive one
    is refused while any is held, naming every holder."""
    url = pg_database(pg, "sw_shared")
    one, two = PostgresClaim(url, "shared"), PostgresClaim(url, "shared")
    one.acquire()
    two.acquire()
    try:
        with pytest.raises(ClaimRefused, match=r"dapr host .* pid \d+ .*; dapr host"):
            PostgresClaim(url, "exclusive").acquire()
    finally:
        one.release()
        two.release()
    excl = PostgresClaim(url, "exclusive")
    excl.acquire()
    excl.release()


def _claim_pid(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name LIKE 'pushpop-embedded:%%' "
            "AND datname = current_database() ORDER BY backend_start LIMIT 1"
        ).fetchone()
    assert row, "no claim session"
    return int(row[0])


def test_host_that_loses_its_claim_to_another_stays_fenced(
    pg: PostgresServer, tmp_path: Path
) -> None:
    """The claim session of A is killed and another host claims the database before A can
    take it back: A answers 503 naming the fence for good, even after that host leaves,
    and none of A's sessions survive to commit anything."""
    url = pg_database(pg, f"sw_fence_{uuid.uuid4().hex[:6]}")
    a = ServerProcess(store="postgres", database_url=url, log_path=tmp_path / "a.log")
    with a:
        c = httpx.Client(base_url=a.url, timeout=30)
        ids = push_ids(c, "f", 3, "a")
        with psycopg.connect(url, autocommit=True) as admin:
            # hold the lock the moment A's session ends, before A's re-claim loop runs
            admin.execute("SELECT pg_terminate_backend(%s)", (_claim_pid(url),))
            other = PostgresClaim(url, "exclusive")
            deadline = time.monotonic() + 5
            while True:
                try:
                    other.acquire()
                    break
                except ClaimRefused:
                    assert time.monotonic() < deadline, "the killed claim was never released"
                    time.sleep(0.01)
            left = admin.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE "
                "'pushpop-embedded:%%' AND application_name <> %s AND datname = "
                "current_database()", (other.application_name,),
            ).fetchone()[0]  # fmt: skip
        other.release()
        assert left == 0, "A's pooled sessions outlived its claim"
        time.sleep(1.5)  # A's re-claim loop sees the epoch moved
        for _ in range(3):
            msg = err(c.post("/queue/f/push", json={"item": {"late": 1}}), 503,
                      "STORE_UNAVAILABLE")  # fmt: skip
            assert "fenced" in msg and "restart" in msg, msg
        err(c.get("/ready"), 503, "STORE_UNAVAILABLE", "fenced")
        assert c.get("/health").status_code == 200
    with ServerProcess(store="postgres", database_url=url, log_path=tmp_path / "b.log") as b:
        got = ok(httpx.post(b.url + "/queue/f/pop", params={"depth": 10}, timeout=30))["items"]
        assert [i["id"] for i in got] == ids  # nothing written by A after the fence


def test_postgres_restart_while_two_hosts_race_for_the_claim(tmp_path: Path) -> None:
    """A serves; PostgreSQL restarts; B tries to start over and over meanwhile. Whoever
    wins, the other writes nothing, and every pushed item is delivered exactly once."""
    pg = PostgresServer().start()
    try:
        a = ServerProcess(store="postgres", database_url=pg.url, log_path=tmp_path / "a.log",
                          env={"PUSHPOP_REQUEST_TIMEOUT": "3"})  # fmt: skip
        a.start()
        ca = httpx.Client(base_url=a.url, timeout=10)
        pushed = push_ids(ca, "race", 40, "before")
        delivered = [i["id"] for i in ok(ca.post("/queue/race/pop", params={"depth": 15}))["items"]]
        pg.stop()
        pg.start()
        b: ServerProcess | None = None
        deadline = time.monotonic() + 20
        a_back = False
        while time.monotonic() < deadline:
            r = ca.post("/queue/race/push", json={"item": {"tag": "a"}})
            if r.status_code == 200:
                a_back = True
                pushed.extend(r.json()["ids"])
                break
            candidate = ServerProcess(store="postgres", database_url=pg.url,
                                      log_path=tmp_path / "b.log")  # fmt: skip
            try:
                b = candidate.start()
                break
            except RuntimeError:
                continue  # refused (A holds it again, or PostgreSQL not up yet)
        assert a_back or b is not None, "neither host serves 20 s after the restart"
        winner, loser = (a, b) if a_back else (b, a)
        cw = httpx.Client(base_url=winner.url, timeout=10)
        if a_back:
            assert b is None
            refused(ServerProcess(store="postgres", database_url=pg.url,
                                  log_path=tmp_path / "b2.log"))  # fmt: skip
        else:
            for _ in range(5):  # the loser never writes again
                msg = err(ca.post("/queue/race/push", json={"item": {"tag": "late"}}), 503,
                          "STORE_UNAVAILABLE")  # fmt: skip
                r = ca.post("/queue/race/pop", params={"depth": 5})
                assert r.status_code == 503, r.text
            assert "fenced" in msg or "claim" in msg, msg
        pushed.extend(push_ids(cw, "race", 10, "after"))
        while got := ok(cw.post("/queue/race/pop", params={"depth": 7}))["items"]:
            delivered.extend(i["id"] for i in got)
        assert len(delivered) == len(set(delivered)), "an item was delivered twice"
        assert sorted(delivered) == sorted(pushed)
        for s in (winner, loser):
            if s is not None:
                s.stop()
    finally:
        pg.cleanup()


def test_sigterm_stops_the_server_while_a_call_is_stuck(pg: PostgresServer, tmp_path: Path) -> None:
    """A push waits on a table another session locked; SIGTERM still ends the server within
    its graceful timeout (and the claim is given up: the next host starts at once)."""
    import signal
    import threading

    from api.http_server import GRACEFUL_SHUTDOWN_SECONDS

    url = pg_database(pg, f"sw_term_{uuid.uuid4().hex[:6]}")
    s = ServerProcess(store="postgres", database_url=url, log_path=tmp_path / "s.log",
                      env={"PUSHPOP_REQUEST_TIMEOUT": "30"})  # fmt: skip
    s.start()
    c = httpx.Client(base_url=s.url, timeout=60)
    ok(c.post("/queue/t/push", json={"item": {"n": 0}}))
    answers: list[int] = []
    with psycopg.connect(url) as blocker:
        blocker.execute("LOCK TABLE state IN ACCESS EXCLUSIVE MODE")
        t = threading.Thread(target=lambda: answers.append(
            c.post("/queue/t/push", json={"item": {"n": 1}}).status_code))  # fmt: skip
        t.start()
        time.sleep(1.0)
        assert not answers, "the push was not held by the table lock"
        assert s.proc is not None
        start = time.monotonic()
        s.proc.send_signal(signal.SIGTERM)
        s.proc.wait(timeout=GRACEFUL_SHUTDOWN_SECONDS + 10)
        took = time.monotonic() - start
        blocker.rollback()
    t.join(30)
    assert took <= GRACEFUL_SHUTDOWN_SECONDS + 2, f"SIGTERM took {took:.1f}s"
    with ServerProcess(store="postgres", database_url=url, log_path=tmp_path / "n.log") as n:
        items = ok(httpx.post(n.url + "/queue/t/pop", params={"depth": 5}, timeout=30))["items"]
        assert items[0]["item"] == {"n": 0}
