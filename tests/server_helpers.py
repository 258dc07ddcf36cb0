"""Servers that tests start themselves: a database of the session's PostgreSQL cluster and
a Dapr-mode host (not started). A module, not conftest: test files import these by name,
and ``conftest`` is not one module name in a tree with a conftest per folder.
"""

from __future__ import annotations

from pathlib import Path

from supervise.pgserver import PostgresServer
from supervise.server import ServerProcess


def pg_database(pg: PostgresServer, name: str) -> str:
    """The URL of database ``name`` in ``pg``'s cluster, created if missing."""
    return pg.database(name)


def dapr_host(
    tmp: Path,
    name: str,
    control_plane: tuple[str, str] | None,
    *,
    store: str = "postgres",
    database_url: str | None = None,
    sqlite_path: Path | None = None,
    env: dict[str, str] | None = None,
) -> ServerProcess:
    """``pushpop serve --runtime dapr`` (not started); joins ``control_plane`` if given."""
    extra = {
        "PUSHPOP_DAPR_RUN_DIR": str(tmp / f"{name}-dapr"),
        "PUSHPOP_DAPR_RUNINFO": str(tmp / f"{name}-runinfo.json"),
        **(env or {}),
    }
    if control_plane:
        extra["PUSHPOP_PLACEMENT_ADDRESS"], extra["PUSHPOP_SCHEDULER_ADDRESS"] = control_plane
    return ServerProcess(
        store=store,
        database_url=database_url,
        sqlite_path=sqlite_path,
        runtime="dapr",
        log_path=tmp / f"{name}.log",
        env=extra,
    )
