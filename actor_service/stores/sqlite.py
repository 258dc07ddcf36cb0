"""SQLite store: the zero-setup default, one file in the working directory.

The table mirrors Dapr's ``state.sqlite`` component (``state`` with ``key``,
``value``, ``is_binary``, ``etag``, ``expiration_time``, ``update_time``). sqlite3 is
blocking, so every statement runs on one dedicated thread: that also serialises
writers, which SQLite needs anyway, without ``database is locked`` retries.
``synchronous=FULL`` with WAL: a 2xx means the transaction reached the disk.
"""

from __future__ import annotations

import asyncio
import base64
import sqlite3
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from actor_service.errors import StoreUnavailable
from actor_service.stores.base import StateStore, Transaction, needs_binary

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

UPSERT = """
INSERT INTO state (key, value, is_binary, etag, update_time)
VALUES (?, ?, ?, ?, CURRENT_TIMESTAMP)
ON CONFLICT (key) DO UPDATE SET value = excluded.value, is_binary = excluded.is_binary,
    etag = excluded.etag, update_time = CURRENT_TIMESTAMP
"""


class SqliteStore(StateStore):
    name = "sqlite"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).resolve()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pushpop-sqlite")
        self._conn: sqlite3.Connection | None = None

    async def _run(self, fn: Any, *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, fn, *args)
        except sqlite3.OperationalError as exc:
            raise StoreUnavailable(f"sqlite: {exc}") from exc

    def _open_sync(self) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA busy_timeout=5000")
        conn.execute(SCHEMA)
        self._conn = conn

    async def open(self) -> None:
        await self._run(self._open_sync)

    async def close(self) -> None:
        if self._conn is not None:
            await self._run(self._conn.close)
            self._conn = None
        self._executor.shutdown(wait=True)

    def _get_sync(self, key: str) -> bytes | None:
        assert self._conn is not None
        row = self._conn.execute(
            "SELECT value, is_binary FROM state WHERE key = ? AND "
            "(expiration_time IS NULL OR expiration_time > CURRENT_TIMESTAMP)",
            (key,),
        ).fetchone()
        if row is None:
            return None
        value, is_binary = row
        return base64.b64decode(value) if is_binary else value.encode()

    async def get(self, key: str) -> bytes | None:
        return await self._run(self._get_sync, key)

    def _transact_sync(self, tx: Transaction) -> None:
        assert self._conn is not None
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            if tx.upserts:
                conn.executemany(UPSERT, [_row(k, v) for k, v in tx.upserts])
            if tx.deletes:
                conn.executemany("DELETE FROM state WHERE key = ?", [(k,) for k in tx.deletes])
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    async def transact(self, tx: Transaction) -> None:
        if tx:
            await self._run(self._transact_sync, tx)

    async def ping(self) -> None:
        if self._conn is None:
            raise StoreUnavailable("sqlite store is not open")
        await self._run(self._conn.execute, "SELECT 1")

    def describe(self) -> str:
        return f"sqlite file {self.path}"


def _row(key: str, value: bytes) -> tuple[str, str, bool, str]:
    etag = uuid.uuid4().hex
    if needs_binary(value):
        return key, base64.b64encode(value).decode(), True, etag
    return key, value.decode(), False, etag
