"""SQLite store: the zero-setup default, one file in the working directory.

Dapr's ``state.sqlite`` table. sqlite3 blocks, so every statement runs on one dedicated
thread, which also serialises writers without ``database is locked`` retries; WAL with
``synchronous=FULL``, so a 2xx means on disk. A full disk releases a *reserve* file kept
beside the database, and until a probe finds room again only writes that take no room are
tried (:mod:`~actor_service.stores.disk_full`, docs/operations.md).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import sqlite3
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from actor_service.errors import StoreUnavailable
from actor_service.stores.base import StateStore, Transaction, meta_range, needs_binary
from actor_service.stores.batching import GroupCommitter, merge
from actor_service.stores.disk_full import DiskFullEpisode

SCHEMA = """
CREATE TABLE IF NOT EXISTS state (
    key TEXT NOT NULL PRIMARY KEY,
    value TEXT NOT NULL,
    is_binary BOOLEAN NOT NULL,
    etag TEXT NOT NULL,
    expiration_time TIMESTAMP DEFAULT NULL,
    update_time TIMESTAMP DEFAULT NULL
)
"""

# a row not expired (daprd writes ttlInSeconds as expiration_time)
LIVE = "(expiration_time IS NULL OR expiration_time > CURRENT_TIMESTAMP)"

# The meta rows by actor id (what list_metas reads): a partial index, so only one row
# per actor is in it, and its sort key is the key less "||meta" (see base.meta_sort_key).
META_ID = "substr(key, 1, length(key) - 6)"
META_ROW = "substr(key, -6) = '||meta'"
META_INDEX = f"CREATE INDEX IF NOT EXISTS state_meta_idx ON state ({META_ID}) WHERE {META_ROW}"
LIST_METAS = (
    f"SELECT {META_ID}, value, is_binary FROM state WHERE {META_ROW} "
    f"AND {META_ID} >= ? AND {META_ID} > ? AND {META_ID} < ? "
    f"AND {LIVE} ORDER BY {META_ID} LIMIT ?"
)

MIB = 1024 * 1024
GET_MANY_CHUNK = 500  # keys per statement: under SQLite's limit of bound parameters
# what a transaction that moves bytes between rows may add while the disk is full: a pop
# with ack of 100 items writes a lock row a little longer than what leaves the segment
MOVE_SLACK = 16 * 1024

UPSERT = """
INSERT INTO state (key, value, is_binary, etag, update_time)
VALUES (?, ?, ?, ?, CURRENT_TIMESTAMP)
ON CONFLICT (key) DO UPDATE SET value = excluded.value, is_binary = excluded.is_binary,
    etag = excluded.etag, update_time = CURRENT_TIMESTAMP
"""


class SqliteStore(StateStore):
    name = "sqlite"

    def __init__(
        self, path: str | Path, reserve_bytes: int = 0, group_commit: int = 1, schema: bool = True
    ) -> None:
        self.path = Path(path).resolve()
        # False: the file is daprd's (Dapr mode's queue listing reads it): open creates
        # nothing, so it cannot race daprd's migrations; list_metas adds only its index,
        # once the table exists
        self.schema = schema
        self._meta_index = False
        self.reserve_bytes = reserve_bytes
        self.reserve_path = self.path.with_name(self.path.name + ".reserve")
        self.disk = DiskFullEpisode(f"sqlite {self.path}")
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pushpop-sqlite")
        self._conn: sqlite3.Connection | None = None
        # one writer thread: one batch in flight at most, whatever group_commit says
        self.committer = (
            GroupCommitter(self.write_many, max_in_flight=1) if group_commit > 0 else None
        )

    async def _run(self, fn: Any, *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, fn, *args)
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode == sqlite3.SQLITE_FULL:  # type: ignore[attr-defined]
                with contextlib.suppress(FileNotFoundError):
                    self.reserve_path.unlink()  # room for the writes that free space
                raise self.disk.enter(str(exc)) from exc
            raise StoreUnavailable(f"sqlite: {exc}") from exc

    def _open_sync(self) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        if self.schema:
            conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA busy_timeout=5000")
        if self.schema:
            conn.execute(SCHEMA)
            conn.execute(META_INDEX)
            self._meta_index = True
        self._conn = conn

    async def open(self) -> None:
        await self._run(self._open_sync)
        if not await self._run(self._reserve_sync):
            self.disk.enter(f"no room for the {self.reserve_bytes}-byte reserve at start")

    async def close(self) -> None:
        if self.committer is not None:
            await self.committer.close()
        if self._conn is not None:
            await self._run(self._conn.close)
            self._conn = None
        self._executor.shutdown(wait=True)

    def _get_sync(self, key: str) -> bytes | None:
        assert self._conn is not None
        row = self._conn.execute(
            f"SELECT value, is_binary FROM state WHERE key = ? AND {LIVE}", (key,)
        ).fetchone()
        return None if row is None else _value(*row)

    async def get(self, key: str) -> bytes | None:
        return await self._run(self._get_sync, key)

    def _get_many_sync(self, keys: Sequence[str]) -> dict[str, bytes]:
        assert self._conn is not None
        out: dict[str, bytes] = {}
        for i in range(0, len(keys), GET_MANY_CHUNK):
            chunk = list(keys[i : i + GET_MANY_CHUNK])
            rows = self._conn.execute(
                f"SELECT key, value, is_binary FROM state WHERE key IN "
                f"({', '.join('?' * len(chunk))}) AND {LIVE}",
                chunk,
            ).fetchall()
            out.update((key, _value(value, is_binary)) for key, value, is_binary in rows)
        return out

    async def get_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        return await self._run(self._get_many_sync, keys) if keys else {}

    def _list_metas_sync(
        self, app_id: str, actor_type: str, prefix: str, after: str | None, limit: int
    ) -> list[tuple[str, bytes]]:
        assert self._conn is not None
        if not self._meta_index:
            found = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'state'"
            if self._conn.execute(found).fetchone() is None:
                return []  # daprd has not made its table yet: nothing is stored
            self._conn.execute(META_INDEX)
            self._meta_index = True
        low, past, high = meta_range(app_id, actor_type, prefix, after)
        rows = self._conn.execute(LIST_METAS, (low, past, high, limit)).fetchall()
        head = len(low) - len(prefix)
        return [(sort_key[head:], _value(value, is_binary)) for sort_key, value, is_binary in rows]

    async def list_metas(
        self, app_id: str, actor_type: str, prefix: str, after: str | None, limit: int
    ) -> list[tuple[str, bytes]]:
        return await self._run(self._list_metas_sync, app_id, actor_type, prefix, after, limit)

    def _transact_sync(self, txs: Sequence[Transaction]) -> None:
        assert self._conn is not None
        conn = self._conn
        upserts, deletes = merge(txs)
        conn.execute("BEGIN IMMEDIATE")
        try:
            if upserts:
                conn.executemany(UPSERT, [_row(k, v) for k, v in upserts.items()])
            if deletes:
                conn.executemany("DELETE FROM state WHERE key = ?", [(k,) for k in deletes])
            conn.execute("COMMIT")
        except BaseException:
            # SQLite may have rolled back already (SQLITE_FULL does): a second ROLLBACK
            # would fail and replace the real error with "no transaction is active"
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    async def transact(self, tx: Transaction) -> None:
        if not tx:
            return
        if self.committer is not None and not self.disk.active:
            await self.committer.transact(tx)
        else:
            await self._transact_one(tx)

    async def write_many(self, txs: Sequence[Transaction]) -> None:
        """One ``BEGIN IMMEDIATE ... COMMIT`` for a group commit's batch: one fsync."""
        if len(txs) == 1:
            await self._transact_one(txs[0])
            return
        if self.disk.active:
            raise self.disk.error()  # the committer retries each alone, the path below
        await self._run(self._transact_sync, txs)

    async def _transact_one(self, tx: Transaction) -> None:
        if not self.disk.active:
            await self._run(self._transact_sync, (tx,))
            return
        if not await self._run(self._frees_space_sync, tx) and not await self._recovered():
            raise self.disk.error()  # only what frees space is tried while the disk is full
        await self._run(self._free_space_sync, tx)
        await self._recovered()

    async def ping(self) -> None:
        if self._conn is None:
            raise StoreUnavailable("sqlite store is not open")
        await self._run(self._conn.execute, "SELECT 1")
        if self.disk.active and not await self._recovered():
            raise self.disk.error()
        if self.reserve_bytes and not self.reserve_path.exists():
            await self._run(self._reserve_sync)  # given back after an episode, if it fits

    def _frees_space_sync(self, tx: Transaction) -> bool:
        """Takes no room: something shrinks or goes (a row deleted, a value overwritten
        by a shorter one) and the transaction writes at most :data:`MOVE_SLACK` bytes
        more than it removes. So a pop shortening its head segment, an acknowledge, a
        purge, and a pop with ack moving items from a segment into a lock row pass; a
        push (nothing shrinks) or a keyed push deleting two expired keys (it grows) not."""
        assert self._conn is not None
        keys = [key for key, _ in tx.upserts] + list(tx.deletes)
        marks = ",".join("?" * len(keys))
        stored = dict(
            self._conn.execute(
                f"SELECT key, length(CAST(value AS BLOB)) FROM state WHERE key IN ({marks})", keys
            ).fetchall()
        )
        written = {key: len(_row(key, value)[1].encode()) for key, value in tx.upserts}
        shrinks = any(stored.get(k, 0) > 0 for k in tx.deletes) or any(
            n < stored.get(k, -1) for k, n in written.items()
        )
        growth = sum(n - stored.get(k, 0) for k, n in written.items()) - sum(
            stored.get(k, 0) for k in tx.deletes if k not in written
        )
        return shrinks and growth <= MOVE_SLACK

    def _free_space_sync(self, tx: Transaction) -> None:
        """A deleting transaction on a full disk.

        First the WAL is checkpointed into the database (which grows into the released
        reserve) and restarted, so the delete reuses the WAL file instead of growing it.
        Then secure_delete is relaxed for it: Debian builds SQLite with secure_delete on,
        which zeroes every freed page *through the WAL*, so a purge would need as much
        free space as it deletes; FAST only zeroes what costs no extra page writes.
        """
        assert self._conn is not None
        self._checkpoint_sync("RESTART")  # the WAL's blocks are reused: no allocation
        before = self._conn.execute("PRAGMA secure_delete").fetchone()[0]
        self._conn.execute("PRAGMA secure_delete=FAST")
        try:
            self._transact_sync((tx,))
        finally:
            self._conn.execute(f"PRAGMA secure_delete={int(before)}")

    def _checkpoint_sync(self, mode: str) -> bool:
        """Copy the whole WAL into the database; True when it completed. ``RESTART``
        keeps the WAL file to write over; ``TRUNCATE`` gives its space back too."""
        assert self._conn is not None
        try:
            busy, frames, done = self._conn.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
        except sqlite3.Error:
            return False
        return not busy and frames == done

    async def _recovered(self) -> bool:
        """Probe (at most once a second) whether the disk-full episode is over."""
        if not self.disk.probe_due() or not await self._run(self._make_room_sync):
            return False
        self.disk.leave()
        return True

    def _make_room_sync(self) -> bool:
        """Over when the WAL is checkpointed and truncated (else its few MB are never given
        back) and the database's free pages plus the file system's free space
        hold the reserve plus some headroom: an eighth of the volume, between 1 MB and
        one reserve (a purge frees pages inside the file, which never shrinks: they
        count; two reserves might never fit beside the database on a small volume). The
        reserve is taken back if it fits; if not, :meth:`ping` retries until an operator
        frees space on the volume."""
        assert self._conn is not None
        if not self._checkpoint_sync("TRUNCATE"):
            return False
        page_size = self._conn.execute("PRAGMA page_size").fetchone()[0]
        free_pages = self._conn.execute("PRAGMA freelist_count").fetchone()[0]
        fs = os.statvfs(self.path.parent)
        room = free_pages * page_size + fs.f_bavail * fs.f_frsize
        headroom = max(MIB, min(self.reserve_bytes, fs.f_blocks * fs.f_frsize // 8))
        if room < self.reserve_bytes + headroom:
            return False
        self._reserve_sync()
        return True

    def _reserve_sync(self) -> bool:
        if not self.reserve_bytes:
            return True
        try:
            fd = os.open(self.reserve_path, os.O_WRONLY | os.O_CREAT, 0o600)
            try:
                os.posix_fallocate(fd, 0, self.reserve_bytes)
            finally:
                os.close(fd)
        except OSError:
            with contextlib.suppress(OSError):
                self.reserve_path.unlink()
            return False
        return True

    def describe(self) -> str:
        return f"sqlite file {self.path}"


def _value(text: str, is_binary: int) -> bytes:
    """A stored value as read back: base64 text when binary."""
    return base64.b64decode(text) if is_binary else text.encode()


def _row(key: str, value: bytes) -> tuple[str, str, bool, str]:
    etag = uuid.uuid4().hex
    if needs_binary(value):
        return key, base64.b64encode(value).decode(), True, etag
    return key, value.decode(), False, etag
