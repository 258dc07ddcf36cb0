"""PostgreSQL store: psycopg 3 async with a connection pool, one transaction per save.

The table is Dapr's ``state.postgresql`` v1 layout (``state``: key, value jsonb,
isbinary, insertdate, updatedate, expiredate), and keys follow Dapr's actor key
format, so a queue written by the embedded runtime is read unchanged by ``daprd``
in Dapr mode. A save's upserts go out with ``executemany``, which psycopg sends in
pipeline mode: one round trip for all statements of the transaction.

Failure policy: a dead server, an exhausted pool or a statement slower than the
configured deadline all become :class:`StoreUnavailable` (HTTP 503 with
``Retry-After``); the pool checks connections as it hands them out, so service
comes back on its own when PostgreSQL does.
"""

from __future__ import annotations

import base64
import json

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from actor_service.errors import StoreUnavailable
from actor_service.stores.base import StateStore, Transaction, needs_binary, redact

TABLE = "state"

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    key text NOT NULL PRIMARY KEY,
    value jsonb NOT NULL,
    isbinary boolean NOT NULL,
    insertdate TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW(),
    updatedate TIMESTAMP WITH TIME ZONE NULL,
    expiredate TIMESTAMP WITH TIME ZONE NULL
)
"""

GET = (
    f"SELECT value::text, isbinary FROM {TABLE} WHERE key = %s "
    "AND (expiredate IS NULL OR expiredate > CURRENT_TIMESTAMP)"
)

UPSERT = f"""
INSERT INTO {TABLE} (key, value, isbinary, updatedate) VALUES (%s, %s::jsonb, %s, NULL)
ON CONFLICT (key) DO UPDATE SET value = excluded.value, isbinary = excluded.isbinary,
    updatedate = CURRENT_TIMESTAMP, expiredate = NULL
"""

DELETE = f"DELETE FROM {TABLE} WHERE key = ANY(%s)"


class PostgresStore(StateStore):
    name = "postgres"

    def __init__(
        self,
        url: str,
        *,
        min_size: int = 2,
        max_size: int = 16,
        pool_timeout: float = 5.0,
        statement_timeout: float = 5.0,
    ) -> None:
        self.url = url
        self.pool_timeout = pool_timeout
        self._pool = AsyncConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            timeout=pool_timeout,
            open=False,
            check=AsyncConnectionPool.check_connection,
            reconnect_timeout=0,  # keep trying for ever: the database may come back
            kwargs={
                "autocommit": True,
                "connect_timeout": max(1, int(pool_timeout)),
                "options": f"-c statement_timeout={int(statement_timeout * 1000)}",
            },
        )

    async def open(self) -> None:
        await self._pool.open(wait=False)
        async with self._guard():
            async with self._pool.connection() as conn:
                await conn.execute(SCHEMA)

    async def close(self) -> None:
        await self._pool.close()

    def _guard(self) -> _Guard:
        return _Guard(self)

    async def get(self, key: str) -> bytes | None:
        async with self._guard(), self._pool.connection() as conn:
            cur = await conn.execute(GET, (key,), prepare=True)
            row = await cur.fetchone()
        if row is None:
            return None
        text, isbinary = row
        if isbinary:
            return base64.b64decode(json.loads(text))
        return text.encode()

    async def transact(self, tx: Transaction) -> None:
        if not tx:
            return
        rows = [_row(k, v) for k, v in tx.upserts]
        async with self._guard(), self._pool.connection() as conn, conn.transaction():
            async with conn.cursor() as cur:
                if rows:
                    await cur.executemany(UPSERT, rows)
                if tx.deletes:
                    await cur.execute(DELETE, (tx.deletes,))

    async def ping(self) -> None:
        async with self._guard(), self._pool.connection() as conn:
            await conn.execute("SELECT 1")

    def describe(self) -> str:
        return f"postgres {redact(self.url)} (table {TABLE})"

    def pool_stats(self) -> dict[str, int]:
        return dict(self._pool.get_stats())


class _Guard:
    """Turns every way the database can fail into a 503-mapped StoreUnavailable."""

    def __init__(self, store: PostgresStore) -> None:
        self.store = store

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, exc_type: type | None, exc: BaseException | None, tb: object) -> bool:
        if exc is None:
            return False
        if isinstance(exc, PoolTimeout):
            raise StoreUnavailable(
                f"no PostgreSQL connection within {self.store.pool_timeout:g}s "
                "(database down or pool exhausted)"
            ) from exc
        if isinstance(exc, psycopg.errors.QueryCanceled):
            raise StoreUnavailable("PostgreSQL statement exceeded its deadline") from exc
        if isinstance(exc, psycopg.OperationalError):
            raise StoreUnavailable(f"PostgreSQL unavailable: {exc.__class__.__name__}") from exc
        return False


def _row(key: str, value: bytes) -> tuple[str, str, bool]:
    if needs_binary(value):
        return key, json.dumps(base64.b64encode(value).decode()), True
    return key, value.decode(), False
