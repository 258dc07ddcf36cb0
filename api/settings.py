"""Service settings: one dataclass, filled from ``PUSHPOP_*`` environment variables.

The CLI passes its options through the same names, so ``pushpop serve --port 9000``
and ``PUSHPOP_PORT=9000 pushpop serve`` are the same thing, and tests can build a
:class:`Settings` directly.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields


@dataclass
class Settings:
    runtime: str = "embedded"  # embedded | dapr
    store: str = "sqlite"  # sqlite | postgres | memory
    database_url: str | None = None
    sqlite_path: str = "pushpop.sqlite3"
    host: str = "127.0.0.1"
    port: int = 8000
    app_id: str = "pushpop"
    # actor runtime
    idle_timeout: float = 60.0
    segment_size: int = 100
    # limits (0 = unlimited)
    max_depth: int = 0
    max_locks: int = 0
    max_lock_lifetime: float = 12 * 3600.0  # seconds from a lock's creation; 0 = unlimited
    max_item_bytes: int = 64 * 1024
    # the largest push the contract allows (1000 items of 64 KiB) plus JSON overhead
    max_body_bytes: int = 72 * 1024 * 1024
    # deadlines and pool
    request_timeout: float = 10.0
    pool_size: int = 16
    # group commit: batches of concurrent saves in flight at once (0 = one commit per save)
    group_commit: int = 2
    # hostile clients: a request's head and body must arrive within read_timeout
    # (capped by request_timeout); more open connections than this get 503
    read_timeout: float = 5.0
    max_connections: int = 1000
    # SQLite: space kept free next to the database, released when the disk fills so
    # that purge and acknowledge can still commit (0 = none)
    disk_reserve_bytes: int = 8 * 1024 * 1024
    # Dapr mode: where the sidecar listens, and the tokens between app and sidecar
    dapr_http_port: int = 3500
    dapr_api_token: str | None = None
    app_api_token: str | None = None

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        """Defaults, then ``PUSHPOP_<FIELD>`` variables, then explicit overrides."""
        values: dict[str, object] = {}
        for f in fields(cls):
            raw = os.environ.get(f"PUSHPOP_{f.name.upper()}")
            if raw is not None and raw != "":
                values[f.name] = _convert(f.type, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        s = cls(**values)  # type: ignore[arg-type]
        s.dapr_api_token = s.dapr_api_token or os.environ.get("DAPR_API_TOKEN") or None
        s.app_api_token = s.app_api_token or os.environ.get("APP_API_TOKEN") or None
        return s


def _convert(type_name: object, raw: str) -> object:
    t = str(type_name)
    if t.startswith("int"):
        return int(raw)
    if t.startswith("float"):
        return float(raw)
    return raw
