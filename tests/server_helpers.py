"""Servers that tests start themselves: a database of the session's PostgreSQL cluster,
a Dapr-mode host (not started), and the ``server`` fixture's face. A module, not
conftest: test files import these by name, and ``conftest`` is not one module name in a
tree with a conftest per folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from asgi_helpers import AppThread

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


class Remote:
    """A server over the network, with :class:`asgi_helpers.AppThread`'s client face: the
    ``server`` fixture's Dapr variants, whose daprd is a second process by nature."""

    def __init__(self, process: ServerProcess) -> None:
        self.process = process
        self.url = process.url
        self.port = process.port
        self.store = process.store

    def transport(self) -> None:
        """None: clients take the network's default."""

    def async_transport(self) -> None:
        """None: clients take the network's default."""

    def client(self, **kwargs: Any) -> httpx.Client:
        kwargs.setdefault("timeout", 30)
        return httpx.Client(base_url=self.url, **kwargs)

    def async_client(self, **kwargs: Any) -> httpx.AsyncClient:
        kwargs.setdefault("timeout", 30)
        return httpx.AsyncClient(base_url=self.url, **kwargs)


Served = AppThread | Remote
