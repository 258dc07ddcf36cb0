"""Shared fixtures: a real PostgreSQL for the session, real servers per store.

Nothing here is faked: ``pg`` is a throwaway PostgreSQL cluster (Debian's server
binaries, installed by ``make setup``), and ``server`` is ``pushpop serve`` in a
child process, once per store, talked to over HTTP.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from actor_service.pgserver import PostgresServer
from api.testing import ServerProcess


@pytest.fixture(scope="session")
def pg() -> Iterator[PostgresServer]:
    server = PostgresServer()
    server.start()
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture(scope="session")
def servers(
    pg: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, ServerProcess]]:
    """One running server per store for the whole session (tests use unique queue ids)."""
    tmp = tmp_path_factory.mktemp("servers")
    started = {
        "sqlite": ServerProcess(
            store="sqlite", sqlite_path=tmp / "api.sqlite3", log_path=tmp / "sqlite.log"
        ).start(),
        "postgres": ServerProcess(
            store="postgres", database_url=pg.url, log_path=tmp / "postgres.log"
        ).start(),
    }
    try:
        yield started
    finally:
        for s in started.values():
            s.stop()


@pytest.fixture(params=["sqlite", "postgres"])
def server(request: pytest.FixtureRequest, servers: dict[str, ServerProcess]) -> ServerProcess:
    return servers[request.param]


@pytest.fixture
def client(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as c:
        yield c


@pytest.fixture
def qid() -> str:
    """A queue id no other test uses."""
    return f"t-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def tmp_sqlite(tmp_path: Path) -> Path:
    return tmp_path / "state.sqlite3"
