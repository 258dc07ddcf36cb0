"""The one store factory: which backend a host's settings name, and with what options.

Also the one check of ``--store``. Backends are imported when chosen, so a SQLite host
never loads psycopg; the interface (:mod:`.base`) imports none of them, so the arrows
point one way: factory -> backends -> base.
"""

from __future__ import annotations

from typing import Protocol

from actor_service.stores.base import StateStore
from actor_service.stores.claim import Claim

STORES = ("sqlite", "postgres", "memory")


class StoreSettings(Protocol):
    """What of a host's settings (``api.settings.Settings``) names and sizes its store."""

    store: str
    database_url: str | None
    sqlite_path: str
    pool_size: int
    request_timeout: float
    group_commit: int
    disk_reserve_bytes: int


def check_store(kind: str, database_url: str | None) -> None:
    """Raise ``ValueError`` (the CLI's one-line answer) unless ``--store kind`` can serve."""
    if kind not in STORES:
        raise ValueError(f"--store must be sqlite, postgres or memory, not {kind!r}")
    if kind == "postgres" and not database_url:
        raise ValueError("--store postgres needs --database-url or PUSHPOP_DATABASE_URL")


def build_store(settings: StoreSettings, claim: Claim | None = None) -> StateStore:
    """This host's own state store (not yet open): the embedded runtime's, or Dapr mode's
    with ``PUSHPOP_DAPR_STATE=direct``, so both get the same store for the same settings.
    ``claim`` is the host's claim on the database (:mod:`.claim`), which the store checks."""
    options: dict[str, object] = {}
    if settings.store == "postgres":
        options = {
            "max_size": settings.pool_size,
            "pool_timeout": min(5.0, settings.request_timeout),
            "statement_timeout": min(5.0, settings.request_timeout),
            "claim": claim,
            "group_commit": settings.group_commit,
        }
    elif settings.store == "sqlite":
        options = {
            "reserve_bytes": settings.disk_reserve_bytes,
            "group_commit": settings.group_commit,
        }
    return open_store(
        settings.store,
        database_url=settings.database_url,
        sqlite_path=settings.sqlite_path,
        **options,
    )


def open_store(
    kind: str, *, database_url: str | None = None, sqlite_path: str | None = None, **options: object
) -> StateStore:
    """Build (not yet open) the store named by ``--store``, with these backend options."""
    check_store(kind, database_url)
    if kind == "postgres":
        from actor_service.stores.postgres import PostgresStore

        assert database_url is not None  # check_store
        return PostgresStore(database_url, **options)  # type: ignore[arg-type]
    if kind == "sqlite":
        from actor_service.stores.sqlite import SqliteStore

        return SqliteStore(sqlite_path or "pushpop.sqlite3", **options)  # type: ignore[arg-type]
    from actor_service.stores.memory import MemoryStore

    return MemoryStore()


__all__ = ["STORES", "StoreSettings", "build_store", "check_store", "open_store"]
