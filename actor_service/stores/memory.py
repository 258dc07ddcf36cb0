"""The in-memory twin: a dict behind the same interface, for unit tests of pure logic.

It is never the evidence that a feature works (that is PostgreSQL and SQLite);
``fail`` lets a unit test make the store look down.
"""

from __future__ import annotations

from actor_service.errors import StoreUnavailable
from actor_service.stores.base import (
    META_SUFFIX,
    StateStore,
    Transaction,
    meta_range,
    meta_sort_key,
)


class MemoryStore(StateStore):
    name = "memory"

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}
        self.fail = False
        self.transactions = 0

    def _check(self) -> None:
        if self.fail:
            raise StoreUnavailable("memory store switched off by the test")

    async def get(self, key: str) -> bytes | None:
        self._check()
        return self.data.get(key)

    async def transact(self, tx: Transaction) -> None:
        self._check()
        for key, value in tx.upserts:
            self.data[key] = value
        for key in tx.deletes:
            self.data.pop(key, None)
        self.transactions += 1

    async def list_metas(
        self, app_id: str, actor_type: str, prefix: str, after: str | None, limit: int
    ) -> list[tuple[str, bytes]]:
        self._check()
        low, past, high = meta_range(app_id, actor_type, prefix, after)
        rows = sorted(
            (meta_sort_key(key), value)
            for key, value in self.data.items()
            if key.endswith(META_SUFFIX) and low <= meta_sort_key(key) < high
            and meta_sort_key(key) > past
        )  # fmt: skip
        head = len(low) - len(prefix)
        return [(sort_key[head:], value) for sort_key, value in rows[:limit]]

    async def ping(self) -> None:
        self._check()

    def describe(self) -> str:
        return "memory (lost at exit)"
