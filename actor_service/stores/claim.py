"""One writer per database: the claim a host takes on its state store before it serves.

The embedded runtime caches each active queue's state, so two embedded hosts on one
database would deliver items twice: ``exclusive`` (embedded) admits no other host,
``shared`` (Dapr mode, where placement keeps one activation per actor) only Dapr-mode
hosts. How it is held, lost and fenced: docs/how-it-works.md, "The database claim".
"""

from __future__ import annotations

import abc
import contextlib
import fcntl
import logging
import os
import select
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

log = logging.getLogger("pushpop.claim")

Mode = Literal["exclusive", "shared"]
ROLE = {"exclusive": "embedded", "shared": "dapr"}

# pg_try_advisory_lock(int4, int4): "push" as an int, and the lock's number in it
LOCK_KEY = (0x70757368, 1)
TERMINATE_WAIT_MS = 5000  # per lost session the claim ends (pg_terminate_backend timeout)
HINT = "one embedded host per database; run several hosts in Dapr mode (--runtime dapr)"


class ClaimRefused(Exception):
    """Another host holds the database in a conflicting mode; the message names it."""


def describe_holder(host: str, pid: int, since: datetime | str, role: str) -> str:
    when = since.isoformat(timespec="seconds") if isinstance(since, datetime) else since
    return f"{role} host {host} pid {pid} since {when}"


class Claim(abc.ABC):
    """A host's claim on its database; :attr:`held` is what the stores check."""

    def __init__(self, mode: Mode) -> None:
        self.mode: Mode = mode
        self.role = ROLE[mode]
        self.holder_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.held = False
        self.fenced = False
        self.reason = "the database claim is not held yet"

    @abc.abstractmethod
    def acquire(self) -> None:
        """Take the claim now or raise :class:`ClaimRefused` naming who holds it."""

    @abc.abstractmethod
    def release(self) -> None:
        """Give the claim up (on shutdown)."""

    def describe(self) -> str:
        return f"{self.mode} claim ({self.role})"


# ---------------------------------------------------------------------- PostgreSQL
SCHEMA = [
    "SELECT pg_advisory_xact_lock(4712)",
    """CREATE TABLE IF NOT EXISTS pushpop_hosts (
        holder text PRIMARY KEY, mode text NOT NULL, host text NOT NULL, pid int NOT NULL,
        since timestamptz NOT NULL DEFAULT now(), backend_pid int NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS pushpop_claim_epoch (
        id int PRIMARY KEY CHECK (id = 1), claims bigint NOT NULL,
        exclusive_claims bigint NOT NULL, last_holder text)""",
    "INSERT INTO pushpop_claim_epoch VALUES (1, 0, 0, NULL) ON CONFLICT (id) DO NOTHING",
]

HOLDS = (
    "SELECT l.pid FROM pg_locks l WHERE l.locktype = 'advisory' AND l.classid::bigint = %s "
    "AND l.objid::bigint = %s AND l.objsubid = 2 AND l.granted AND l.database = "
    "(SELECT oid FROM pg_database WHERE datname = current_database())"
)
LIVE_HOLDERS = (
    f"SELECT h.host, h.pid, h.since, h.mode FROM pushpop_hosts h WHERE h.backend_pid IN "
    f"({HOLDS}) ORDER BY h.since"
)
VERIFY = f"SELECT EXISTS ({HOLDS} AND l.pid = %s)"


class PostgresClaim(Claim):
    """The advisory-lock claim, its watcher and its re-claim loop (see the module doc)."""

    def __init__(self, url: str, mode: Mode, *, check_interval: float = 1.0) -> None:
        super().__init__(mode)
        self.url = url
        self.check_interval = check_interval
        self.application_name = f"pushpop-{self.role}:{self.holder_id}"[:63]
        self.backend_pid: int | None = None
        self._conn = None  # psycopg.Connection, owned by the watcher thread once started
        self._epoch: tuple[int, int] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -------------------------------------------------------------- taking the lock
    def _connect(self):
        import psycopg

        return psycopg.connect(
            self.url,
            autocommit=True,
            connect_timeout=3,
            application_name=self.application_name,
            keepalives=1,
            keepalives_idle=5,
            keepalives_interval=2,
            keepalives_count=3,
        )

    def _try_lock(self, conn) -> bool:
        fn = "pg_try_advisory_lock" if self.mode == "exclusive" else "pg_try_advisory_lock_shared"
        return bool(conn.execute(f"SELECT {fn}(%s::int, %s::int)", LOCK_KEY).fetchone()[0])

    def _holders(self, conn) -> str:
        rows = conn.execute(LIVE_HOLDERS, LOCK_KEY).fetchall()
        if not rows:
            last = conn.execute("SELECT last_holder FROM pushpop_claim_epoch").fetchone()
            return f"another host (the last to claim it: {last[0]})" if last and last[0] else (
                "another host (it left no record)"
            )  # fmt: skip
        return "; ".join(describe_holder(h, p, s, ROLE.get(m, m)) for h, p, s, m in rows)

    def _epochs(self, conn) -> tuple[int, int]:
        row = conn.execute(
            "SELECT claims, exclusive_claims FROM pushpop_claim_epoch WHERE id = 1"
        ).fetchone()
        return int(row[0]), int(row[1])

    def _record(self, conn, *, bump: bool) -> None:
        """Who holds the claim (for refusals), and the epoch it was taken in."""
        with conn.transaction():
            conn.execute(f"DELETE FROM pushpop_hosts WHERE backend_pid NOT IN ({HOLDS})", LOCK_KEY)
            conn.execute(
                "INSERT INTO pushpop_hosts (holder, mode, host, pid, backend_pid) "
                "VALUES (%s, %s, %s, %s, pg_backend_pid()) ON CONFLICT (holder) DO UPDATE "
                "SET backend_pid = excluded.backend_pid",
                (self.holder_id, self.mode, socket.gethostname(), os.getpid()),
            )
            if bump:
                conn.execute(
                    "UPDATE pushpop_claim_epoch SET claims = claims + 1, exclusive_claims = "
                    "exclusive_claims + %s, last_holder = %s WHERE id = 1",
                    (
                        1 if self.mode == "exclusive" else 0,
                        describe_holder(
                            socket.gethostname(), os.getpid(), datetime.now(UTC), self.role
                        ),
                    ),
                )
        self._epoch = self._epochs(conn)
        self.backend_pid = int(conn.execute("SELECT pg_backend_pid()").fetchone()[0])
        # sessions of embedded hosts that lost the claim may still be open (a pool that has
        # not noticed): end them, so nothing they had in flight commits from now on. Wait
        # (up to TERMINATE_WAIT_MS each, PostgreSQL 14+) until each is gone: a signalled
        # backend in the middle of a COMMIT could otherwise still finish it after we return
        conn.execute(
            f"SELECT pg_terminate_backend(pid, {TERMINATE_WAIT_MS}) FROM pg_stat_activity "
            "WHERE datname = "
            "current_database() AND application_name LIKE 'pushpop-embedded:%%' "
            "AND application_name <> %s",
            (self.application_name,),
        )

    def acquire(self) -> None:
        import psycopg

        try:
            conn = self._connect()
        except psycopg.OperationalError as exc:
            raise ClaimRefused(f"cannot reach PostgreSQL to claim the database: {exc}") from exc
        try:
            with conn.transaction():
                for statement in SCHEMA:
                    conn.execute(statement)
            if not self._try_lock(conn):
                holders = self._holders(conn)
                raise ClaimRefused(
                    f"the database is held by {holders}; this {self.role} host cannot share "
                    f"it ({HINT})"
                )
            self._record(conn, bump=True)
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        self.held = True
        self.reason = ""
        self._thread = threading.Thread(
            target=self._watch, name="pushpop-claim-watcher", daemon=True
        )
        self._thread.start()

    # -------------------------------------------------------------- keeping it
    def _watch(self) -> None:
        """Notice a dropped claim connection at once, then take the claim back or fence."""
        while not self._stop.is_set():
            conn = self._conn
            try:
                # a FIN from a restarting server makes the socket readable at once
                select.select([conn.fileno()], [], [], self.check_interval)
                if self._stop.is_set():
                    return
                conn.execute("SELECT 1")
                continue
            except Exception as exc:  # the connection is gone: so is the lock
                if self._stop.is_set():
                    return
                name = exc.__class__.__name__
                self._lose(f"the connection holding the database claim dropped ({name})")
            with contextlib.suppress(Exception):
                conn.close()
            if not self._reclaim():
                return

    def _lose(self, why: str) -> None:
        self.held = False
        self.reason = f"{why}; not writing until this {self.role} host holds it again"
        log.warning("database claim lost: %s", self.reason)

    def _fence(self, why: str) -> None:
        self.held = False
        self.fenced = True
        self.reason = (
            f"fenced: {why}, so this host's cached queue state may be stale; it will not "
            f"write again: restart it ({HINT})"
        )
        log.error("database claim: %s", self.reason)

    def _reclaim(self) -> bool:
        """Retry until the claim is back (True) or another host had it (False, fenced)."""
        delay = 0.2
        while not self._stop.wait(delay):
            delay = min(2.0, delay * 2)
            try:
                conn = self._connect()
            except Exception:
                continue
            try:
                epochs = self._epochs(conn)
                mine = self._epoch or (0, 0)
                other_claimed = epochs[0] != mine[0] if self.mode == "exclusive" else (
                    epochs[1] != mine[1]
                )  # fmt: skip
                if other_claimed:
                    holders = self._holders(conn)
                    self._fence(f"another host claimed this database meanwhile ({holders})")
                    conn.close()
                    return False
                if not self._try_lock(conn):
                    conn.close()
                    continue  # someone holds it right now: the epoch tells on the next turn
                self._record(conn, bump=False)
            except Exception as exc:
                log.info("re-claiming the database: %s", exc)
                with contextlib.suppress(Exception):
                    conn.close()
                continue
            self._conn = conn
            self.held = True
            self.reason = ""
            log.warning("database claim regained (%s host %s)", self.role, self.holder_id)
            return True
        return False

    async def verify(self, conn) -> None:
        """Refuse a new pool connection unless this host's claim session holds the lock:
        a pool must not reconnect past a lost claim (the pool's ``configure`` hook).

        Raises a psycopg error, which the pool treats as a failed connection attempt and
        retries with back-off; anything else would cost the pool a slot for good.
        """
        import psycopg

        held = self.held and self.backend_pid is not None
        if held:
            cur = await conn.execute(VERIFY, (*LOCK_KEY, self.backend_pid))
            row = await cur.fetchone()
            held = bool(row and row[0])
        if not held:
            await conn.close()
            raise psycopg.OperationalError(
                f"not connecting: this host does not hold the database claim ({self.reason})"
            )

    def release(self) -> None:
        self._stop.set()
        conn = self._conn
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.execute("DELETE FROM pushpop_hosts WHERE holder = %s", (self.holder_id,))
            with contextlib.suppress(Exception):
                conn.close()  # ends the session, and with it the advisory lock
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=self.check_interval + 1)
        self.held = False

    def describe(self) -> str:
        return f"{super().describe()} on PostgreSQL, advisory lock {LOCK_KEY}"


# ---------------------------------------------------------------------- SQLite
class SqliteClaim(Claim):
    """``flock`` on the database file and on ``{database}.claim``: released by the kernel
    when the process ends. The descriptor on the database stays open until :meth:`release`
    (after the store closed): closing any descriptor of a file drops the process's POSIX
    locks on it, SQLite's included."""

    def __init__(self, db_path: str | Path, mode: Mode) -> None:
        super().__init__(mode)
        self.db_path = Path(db_path).resolve()
        self.path = Path(str(self.db_path) + ".claim")
        self._fd: int | None = None
        self._db_fd: int | None = None

    def _refused(self, holders: str, via: str = "") -> ClaimRefused:
        return ClaimRefused(
            f"the database is held by {holders}; {via}this {self.role} host cannot share it "
            f"({HINT})"
        )

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        op = fcntl.LOCK_EX if self.mode == "exclusive" else fcntl.LOCK_SH
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, op | fcntl.LOCK_NB)
        except BlockingIOError:
            holders = self._read_holders(fd)
            os.close(fd)
            raise self._refused(holders) from None
        try:  # an empty file is an empty SQLite database: creating it here is harmless
            db_fd = os.open(self.db_path, os.O_RDONLY | os.O_CREAT, 0o644)
        except OSError:
            os.close(fd)
            raise
        try:
            fcntl.flock(db_fd, op | fcntl.LOCK_NB)
        except BlockingIOError:
            holders = flock_holders(os.fstat(db_fd))
            os.close(db_fd)
            os.close(fd)
            raise self._refused(
                holders, "it holds this file through another path (a hard link or a bind "
                "mount); "
            ) from None  # fmt: skip
        line = describe_holder(socket.gethostname(), os.getpid(), datetime.now(UTC), self.role)
        if self.mode == "exclusive":
            os.ftruncate(fd, 0)
            os.pwrite(fd, (line + "\n").encode(), 0)
        else:  # shared holders each add their line; stale ones go with the next exclusive
            os.lseek(fd, 0, os.SEEK_END)
            os.write(fd, (line + "\n").encode())
        self._fd, self._db_fd = fd, db_fd
        self.held = True
        self.reason = ""

    @staticmethod
    def _read_holders(fd: int) -> str:
        text = os.pread(fd, 4096, 0).decode(errors="replace").strip()
        lines = [ln for ln in text.splitlines() if ln.strip()]
        return "; ".join(lines[-4:]) if lines else "another host (it left no record)"

    def release(self) -> None:
        for fd in (self._db_fd, self._fd):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)  # closing the descriptor drops the flock
        self._fd = self._db_fd = None
        self.held = False

    def describe(self) -> str:
        return f"{super().describe()} on {self.db_path} (its inode) and {self.path}"


def flock_holders(st: os.stat_result) -> str:
    """Who holds a ``flock`` on the file of ``st``, from ``/proc/locks`` (pids as this
    process's namespace sees them; 0 or absent when the holder is in another)."""
    where = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    found: list[str] = []
    with contextlib.suppress(OSError), open("/proc/locks") as locks:
        for line in locks:
            # "1: FLOCK  ADVISORY  WRITE 1234 00:2d:5678 0 EOF"; waiters have "->" after 1:
            parts = line.split()
            if len(parts) < 6 or parts[1] != "FLOCK" or parts[5] != where:
                continue
            pid = int(parts[4])
            if pid <= 0:
                continue
            role = ROLE["exclusive" if parts[3] == "WRITE" else "shared"]
            try:
                import psutil

                since = datetime.fromtimestamp(psutil.Process(pid).create_time(), UTC)
            except Exception:
                since = "(unknown)"
            found.append(describe_holder(socket.gethostname(), pid, since, role))
    return "; ".join(found[:4]) if found else "another host (not visible from this one)"


def claim_for(
    store: str, mode: Mode, *, database_url: str | None = None, sqlite_path: str | None = None
) -> Claim | None:
    """The claim a host must take for ``store`` (None for the in-memory store)."""
    if store == "postgres" and database_url:
        return PostgresClaim(database_url, mode)
    if store == "sqlite":
        return SqliteClaim(sqlite_path or "pushpop.sqlite3", mode)
    return None


def acquire_or_exit(claim: Claim | None, wait: float = 3.0) -> None:
    """Take the claim before serving; refusal is one line on stderr and exit status 3.

    A refused claim is retried for ``wait`` seconds first: a host restarted right after a
    crash (or a pod replacing a terminating one) may find its predecessor's session not yet
    torn down by PostgreSQL, which is a matter of milliseconds, not a second writer.
    """
    if claim is None:
        return
    started = time.monotonic()
    while True:
        try:
            claim.acquire()
            break
        except ClaimRefused as exc:
            if time.monotonic() - started < wait:
                time.sleep(0.1)
                continue
            import sys

            print(f"pushpop: refusing to start: {exc}", file=sys.stderr, flush=True)
            raise SystemExit(3) from None
    took = 1000 * (time.monotonic() - started)
    log.info("database claimed: %s in %.0f ms", claim.describe(), took)


@contextlib.contextmanager
def holding(claim: Claim | None) -> Iterator[Claim | None]:
    """Hold ``claim`` (see :func:`acquire_or_exit`) for the life of a server, then give
    it up, so the next host need not wait for PostgreSQL to notice this one is gone."""
    acquire_or_exit(claim)
    try:
        yield claim
    finally:
        if claim is not None:
            claim.release()


__all__ = [
    "Claim",
    "ClaimRefused",
    "PostgresClaim",
    "SqliteClaim",
    "acquire_or_exit",
    "claim_for",
    "holding",
]
