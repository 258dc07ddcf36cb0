"""Service settings: one dataclass, filled from ``PUSHPOP_*`` environment variables.

The CLI passes its options through the same names, so ``pushpop serve --port 9000``
and ``PUSHPOP_PORT=9000 pushpop serve`` are the same thing, and tests can build a
:class:`Settings` directly.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields

from actor_service.queue_layout import DEFAULT_SEGMENT_SIZE, LEGACY_SEGMENT_SIZE


@dataclass
class Settings:
    runtime: str = "embedded"  # embedded | dapr
    store: str = "sqlite"  # sqlite | postgres | memory (actor_service.stores.factory checks)
    database_url: str | None = None
    sqlite_path: str = "pushpop.sqlite3"
    host: str = "127.0.0.1"
    port: int = 8000
    app_id: str = "pushpop"
    # actor runtime
    idle_timeout: float = 60.0
    segment_size: int = DEFAULT_SEGMENT_SIZE  # items per segment row of new queues
    legacy_segment_size: int = LEGACY_SEGMENT_SIZE  # of queues whose meta does not say
    # limits (0 = unlimited)
    max_depth: int = 0
    max_locks: int = 0
    max_lock_lifetime: float = 12 * 3600.0  # seconds from a lock's creation; 0 = unlimited
    idempotency_ttl: float = 600.0  # seconds a push's Idempotency-Key is kept (at least)
    max_item_bytes: int = 64 * 1024
    # the largest push the contract allows (1000 items of 64 KiB = 62.5 MiB as stored) plus
    # 9.5 MiB of JSON around them, spaces and \u escapes; docs/security.md's nginx example
    # says the same
    max_body_bytes: int = 72 * 1024 * 1024
    # request-body bytes all requests in progress may hold at once (0 = no cap): past it,
    # 503 SERVER_BUSY before the body is read (api/body_budget.py)
    max_body_bytes_in_flight: int = 256 * 1024 * 1024
    # deadlines and pool
    request_timeout: float = 10.0
    pool_size: int = 16
    # group commit: batches of concurrent saves in flight at once (0 = one commit per save)
    group_commit: int = 2
    # merge pushes (and, apart, plain pops) that wait for a busy queue into one actor call
    coalesce: bool = True
    # answer push and pop without FastAPI's routing layers (api/asgi.py); same answers
    hot_path: bool = True
    # hostile clients: a request's head and body must arrive within read_timeout
    # (capped by request_timeout); more open connections than this get 503
    read_timeout: float = 5.0
    max_connections: int = 1000
    # open connections one client address may hold (0: half of max_connections, and no
    # limit for loopback peers, which a local proxy makes of every client)
    max_connections_per_client: int = 0
    # SQLite: space kept free next to the database, released when the disk fills so
    # that purge and acknowledge can still commit (0 = none)
    disk_reserve_bytes: int = 8 * 1024 * 1024
    # access control: a JSON list of {key, prefixes, operations}, inline or in a file
    api_keys: str = ""
    api_keys_file: str = ""
    allow_open: bool = False  # serve beyond loopback without API keys (behind a proxy)
    protect_metrics: bool = False  # /metrics needs an admin key too
    # per-queue gauges in /metrics for at most this many queues, the deepest (0 = none)
    metrics_max_queues: int = 100
    # Dapr mode: where the sidecar listens, and the tokens between app and sidecar
    dapr_http_port: int = 3500
    dapr_grpc_port: int = 50001
    dapr_api_token: str | None = None
    app_api_token: str | None = None
    # where Dapr-mode actors keep state: "component" (daprd's state store) or "direct"
    # (this host's own store, like the embedded runtime's, with group commit)
    dapr_state: str = "component"
    dapr_state_api: str = "auto"  # auto | http | grpc: how actor state reaches daprd
    dapr_sidecar: str = "launch"  # launch (placement, scheduler, daprd here) | external
    dapr_log_level: str = ""  # of the Dapr processes; default: the app's
    dapr_run_dir: str = ""  # where the Dapr processes log; default: a new temp dir
    dapr_runinfo: str = ""  # a file to write this run's ports, pids and tokens to
    placement_address: str = ""  # join this placement instead of starting one
    scheduler_address: str = ""  # join this scheduler instead of starting one
    dapr_host_ip: str = "127.0.0.1"  # the address daprd gives placement for peer calls

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        """Defaults, then ``PUSHPOP_<FIELD>`` variables, then explicit overrides."""
        values: dict[str, object] = {}
        for f in fields(cls):
            raw = os.environ.get(f"PUSHPOP_{f.name.upper()}")
            if raw is not None and raw != "":
                values[f.name] = _convert(f.type, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        # Dapr's own variables (set by the launcher, Compose, the Kubernetes injector) fill
        # what no PUSHPOP_ variable or override set
        for name, var in DAPR_VARIABLES.items():
            raw = os.environ.get(var)
            if name not in values and raw:
                values[name] = _convert(next(f.type for f in fields(cls) if f.name == name), raw)
        return cls(**values)  # type: ignore[arg-type]


DAPR_VARIABLES = {
    "dapr_http_port": "DAPR_HTTP_PORT",
    "dapr_grpc_port": "DAPR_GRPC_PORT",
    "dapr_api_token": "DAPR_API_TOKEN",
    "app_api_token": "APP_API_TOKEN",
    "dapr_host_ip": "DAPR_HOST_IP",
}


def _convert(type_name: object, raw: str) -> object:
    t = str(type_name)
    if t.startswith("bool"):
        return raw.strip().lower() in ("1", "true", "yes", "on")
    if t.startswith("int"):
        return int(raw)
    if t.startswith("float"):
        return float(raw)
    return raw
