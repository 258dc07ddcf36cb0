"""A full disk under a live server: SQLite on a small tmpfs, PostgreSQL with a tmpfs tablespace.

Writes answer 507 naming the disk, the episode is logged once, ``/ready`` says why it is
not ready, purge and acknowledge work, service returns without a restart, and the database
passes its integrity check. Mounting needs root (or CAP_SYS_ADMIN): without it the tests
skip and say why.
"""

from __future__ import annotations

import contextlib
import pwd
import secrets
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from http_helpers import err, ok, pop, pop_ack, push_one

from supervise.pgserver import PostgresServer
from supervise.server import ServerProcess

# ~1 MB per push, random so that PostgreSQL's TOAST compression cannot shrink it
BULK = {"items": [{"item": {"n": i, "pad": secrets.token_urlsafe(15_000)}} for i in range(50)]}


@contextlib.contextmanager
def tmpfs(size: str, owner: str | None = None) -> Iterator[Path]:
    """A fresh tmpfs of ``size`` (``owner`` = a system user who gets it, mode 0700)."""
    where = Path(tempfile.mkdtemp(prefix="pushpop-tmpfs-"))
    where.chmod(0o755)
    options = f"size={size}"
    if owner:
        pw = pwd.getpwnam(owner)
        options += f",uid={pw.pw_uid},gid={pw.pw_gid},mode=0700"
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)],
        capture_output=True, text=True,
    )  # fmt: skip
    if done.returncode != 0:
        where.rmdir()
        reason = f"cannot mount a tmpfs here ({done.stderr.strip() or done.returncode})"
        print(f"SKIP: {reason}")
        pytest.skip(reason)
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)
        with contextlib.suppress(OSError):
            where.rmdir()


def fill(c: httpx.Client, q: str) -> httpx.Response:
    """Push ~1 MB at a time until the store refuses; that refusal."""
    for _ in range(200):
        r = c.post(f"/queue/{q}/push", json=BULK)
        if r.status_code != 200:
            return r
    raise AssertionError("the disk never filled up")


def live_through_a_full_disk(server: ServerProcess, q: str, pops: bool) -> None:
    """Everything the issue asks of a server whose disk fills up, then is freed.

    ``pops``: a pop that shortens its head segment works too (SQLite overwrites in place;
    PostgreSQL writes a new row version, which needs room, so there it is not asserted).
    """
    try:
        with httpx.Client(base_url=server.url, timeout=30) as c:
            push_one(c, f"{q}-acked", {"to": "acknowledge"})
            lock_id = pop_ack(c, f"{q}-acked")["lock_id"]
            first = fill(c, q)
            message = err(first, 507, "INSUFFICIENT_STORAGE", "disk full")
            assert "no transaction is active" not in message, message
            for _ in range(5):  # every write keeps saying so, quickly
                t = time.monotonic()
                r = c.post(f"/queue/{q}/push", json=BULK)
                err(r, 507, "INSUFFICIENT_STORAGE", "disk full")
                assert time.monotonic() - t < 2
            err(c.get("/ready"), 503, "STORE_UNAVAILABLE", "disk full")
            ok(c.get("/health"))
            # what frees space still works: a pop (SQLite), an acknowledge, a purge
            if pops:
                assert len(pop(c, q, depth=1)["items"]) == 1
            assert ok(c.post(f"/queue/{q}-acked/acknowledge", json={"lock_id": lock_id}))
            assert ok(c.delete(f"/queue/{q}"))["purged"] > 0
            wait_for_recovery(c, q)
    finally:
        server.stop()
    episode_logged_once(server.log_path)


def wait_for_recovery(c: httpx.Client, q: str, timeout: float = 30.0) -> None:
    """No restart: /ready turns 200 by itself and pushes are accepted again."""
    deadline = time.monotonic() + timeout
    while c.get("/ready").status_code != 200:
        assert time.monotonic() < deadline, c.get("/ready").text
        time.sleep(0.2)
    push_one(c, q, {"after": "recovery"})
    assert pop(c, q, depth=10)["items"][0]["item"] == {"after": "recovery"}


def episode_logged_once(log: Path) -> None:
    lines = log.read_text().splitlines()
    full = [line for line in lines if "disk full (" in line]
    back = [line for line in lines if "disk space available again" in line]
    assert len(full) == 1 and " ERROR " in full[0], full
    assert len(back) == 1, back


def sqlite_server(mnt: Path, reserve_mb: int) -> ServerProcess:
    """A started server on ``mnt/state.sqlite3`` with a reserve of ``reserve_mb``."""
    return ServerProcess(
        sqlite_path=mnt / "state.sqlite3", log_path=mnt.parent / f"{mnt.name}.log",
        log_level="info", env={"PUSHPOP_DISK_RESERVE_BYTES": str(reserve_mb * 1024 * 1024)},
    ).start()  # fmt: skip


def test_sqlite_on_a_full_tmpfs(qid: str) -> None:
    with tmpfs("24m") as mnt:
        db = mnt / "state.sqlite3"
        server = sqlite_server(mnt, reserve_mb=6)
        live_through_a_full_disk(server, qid, pops=True)
        with sqlite3.connect(db) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]


@pytest.fixture
def small_tablespace_db(pg: PostgresServer, qid: str) -> Iterator[str]:
    """A database whose tables live in a 16 MB tmpfs tablespace (its WAL does not)."""
    import psycopg

    admin = pg.url.rsplit("/", 1)[0] + "/postgres"
    name = qid.replace("-", "_")
    with tmpfs("16m", owner="postgres") as mnt, psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE TABLESPACE {name} LOCATION '{mnt}'")
        conn.execute(f"CREATE DATABASE {name} TABLESPACE {name}")
        try:
            yield pg.url.rsplit("/", 1)[0] + "/" + name
        finally:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            conn.execute(f"DROP TABLESPACE IF EXISTS {name}")


def test_postgres_with_a_full_tablespace(
    small_tablespace_db: str, qid: str, tmp_path: Path
) -> None:
    server = ServerProcess(
        store="postgres", database_url=small_tablespace_db,
        log_path=tmp_path / "pg-server.log", log_level="info",
    ).start()  # fmt: skip
    live_through_a_full_disk(server, qid, pops=False)


def test_sqlite_episode_ends_on_a_small_volume_and_pop_with_ack_works(qid: str) -> None:
    """Issue 27: on a 20 MB volume with the default 8 MB reserve, an operator frees space
    (the filler shrinks, the queue is purged) and writes resume within seconds, with no
    restart: the WAL is truncated and the rule asks for a reserve plus some headroom,
    not two reserves. During the episode pop with ack works (it moves items into a lock
    row, taking no room), as a plain pop does."""
    with tmpfs("20m") as mnt:
        db = mnt / "state.sqlite3"
        server = sqlite_server(mnt, reserve_mb=8)
        try:
            with httpx.Client(base_url=server.url, timeout=30) as c:
                for n in range(3):
                    push_one(c, f"{qid}-work", {"n": n})
                filler = mnt / "filler"
                filler.write_bytes(b"\0" * (5 * 1024 * 1024))
                err(fill(c, qid), 507, "INSUFFICIENT_STORAGE", "disk full")
                # at-least-once consumers keep going during the episode
                got = pop_ack(c, f"{qid}-work", depth=2)
                assert [i["item"]["n"] for i in got["items"]] == [0, 1]
                ok(c.post(f"/queue/{qid}-work/acknowledge", json={"lock_id": got["lock_id"]}))
                err(c.post(f"/queue/{qid}/push", json=BULK), 507, "INSUFFICIENT_STORAGE")
                # the operator frees some of the volume: 1 MB of the filler stays
                filler.write_bytes(b"\0" * (1024 * 1024))
                assert ok(c.delete(f"/queue/{qid}"))["purged"] > 0
                start = time.monotonic()
                wait_for_recovery(c, qid, timeout=10)
                took = time.monotonic() - start
                print(f"writes resumed {took:.1f}s after space was freed")
                assert took < 5, f"writes resumed only after {took:.1f}s"
                wal = Path(f"{db}-wal")
                assert not wal.exists() or wal.stat().st_size < 1024 * 1024, wal.stat()
                assert pop(c, f"{qid}-work")["items"][0]["item"] == {"n": 2}
        finally:
            server.stop()
        episode_logged_once(server.log_path)
        with sqlite3.connect(db) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
