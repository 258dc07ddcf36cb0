"""Build the store a host's settings name: the one module that knows every backend.

Backends are imported when chosen, so a SQLite host never loads psycopg; the interface
(:mod:`.base`) imports none of them, so the arrows point one way: factory -> backends
-> base.
"""

from __future__ import annotations

from actor_service.stores.base import StateStore


def open_store(
    kind: str, *, database_url: str | None = None, sqlite_path: str | None = None, **options: object
) -> StateStore:
    """Build (not yet open) the store named by the CLI's ``--store``."""
    if kind == "postgres":
        from actor_service.stores.postgres import PostgresStore

        if not database_url:
            raise ValueError("--store postgres needs --database-url (or PUSHPOP_DATABASE_URL)")
        return PostgresStore(database_url, **options)  # type: ignore[arg-type]
    if kind == "sqlite":
        from actor_service.stores.sqlite import SqliteStore

        return SqliteStore(sqlite_path or "pushpop.sqlite3", **options)  # type: ignore[arg-type]
    if kind == "memory":
        from actor_service.stores.memory import MemoryStore

        return MemoryStore()
    raise ValueError(f"unknown store {kind!r}: use sqlite, postgres or memory")


__all__ = ["open_store"]
