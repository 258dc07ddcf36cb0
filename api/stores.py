"""Which state store a host opens, and with what pool and batching, from its settings.

Used by the embedded runtime and by Dapr mode's direct state (``PUSHPOP_DAPR_STATE``),
so both get the same store for the same settings.
"""

from __future__ import annotations

from actor_service.stores.base import StateStore
from actor_service.stores.claim import Claim
from api.settings import Settings


def build_store(settings: Settings, claim: Claim | None = None) -> StateStore:
    """This host's own state store (not yet open): the embedded runtime's, or Dapr mode's
    with ``PUSHPOP_DAPR_STATE=direct``. ``claim`` is the host's claim on the database,
    taken before serving (:mod:`actor_service.stores.claim`), which the store checks."""
    from actor_service.stores.factory import open_store

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


__all__ = ["build_store"]
