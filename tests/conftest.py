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
from server_helpers import pg_database

from supervise.pgserver import PostgresServer
from supervise.server import ServerProcess, wait_ready

FOLDER_MARKERS = {"unit": "unit", "integration": "integration", "dapr": "dapr",
                  "load_tests": "load_tests"}  # fmt: skip


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Each test folder is a marker (``-m unit`` runs the fast pure tests in seconds)."""
    for item in items:
        folder = Path(str(item.fspath)).parent.name
        if folder in FOLDER_MARKERS:
            item.add_marker(FOLDER_MARKERS[folder])


@pytest.fixture(scope="session")
def pg() -> Iterator[PostgresServer]:
    with PostgresServer() as server:
        yield server


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
        # its own database: one embedded host per database (tests that start their own
        # embedded hosts use pg.url or databases of their own)
        "postgres": ServerProcess(
            store="postgres",
            database_url=pg_database(pg, "pushpop_api"),
            log_path=tmp / "postgres.log",
        ).start(),
    }
    try:
        yield started
    finally:
        for s in started.values():
            s.stop()


def _dapr_server(
    pg: PostgresServer, tmp_path_factory: pytest.TempPathFactory, state: str
) -> Iterator[ServerProcess]:
    """``pushpop serve --runtime dapr --store postgres``: placement, scheduler, daprd, app.

    Its own database in the session's cluster, so that no queue is ever served by this
    server and by the embedded ``postgres`` one at once (each caches its actors' state).
    ``state``: PUSHPOP_DAPR_STATE (through daprd's state store, or the host's own store).
    """
    from supervise.dapr_processes import ensure_dapr_built

    ensure_dapr_built()
    tmp = tmp_path_factory.mktemp(f"dapr-{state}")
    server = ServerProcess(
        store="postgres",
        database_url=pg_database(pg, f"pushpop_dapr_{state}"),
        runtime="dapr",
        log_path=tmp / "dapr-server.log",
        env={"PUSHPOP_DAPR_RUN_DIR": str(tmp / "run"),
             "PUSHPOP_DAPR_RUNINFO": str(tmp / "runinfo.json"),
             "PUSHPOP_DAPR_STATE": state},
    )  # fmt: skip
    server.start(timeout=60)
    try:
        wait_ready(server.url, 60)
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def dapr_server(
    pg: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    yield from _dapr_server(pg, tmp_path_factory, "component")


@pytest.fixture(scope="session")
def dapr_direct_server(
    pg: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    yield from _dapr_server(pg, tmp_path_factory, "direct")


@pytest.fixture(
    params=[
        "sqlite",
        "postgres",
        pytest.param("dapr", marks=pytest.mark.dapr),
        pytest.param("dapr-direct", marks=pytest.mark.dapr),
    ]
)
def server(request: pytest.FixtureRequest, servers: dict[str, ServerProcess]) -> ServerProcess:
    if request.param == "dapr":  # started on first use: only runs that select it pay
        return request.getfixturevalue("dapr_server")
    if request.param == "dapr-direct":
        return request.getfixturevalue("dapr_direct_server")
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


@pytest.fixture(scope="module")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """One placement + scheduler that a module's Dapr hosts join (saves their start-up)."""
    from supervise.dapr_processes import Placement, Scheduler, ensure_dapr_built

    bin_dir = ensure_dapr_built()
    logs = tmp_path_factory.mktemp("control-plane")
    with Placement(logs, bin_dir=bin_dir) as p, Scheduler(logs, bin_dir=bin_dir) as s:
        yield p.address, s.address


@pytest.fixture(params=["sqlite", "postgres"])
def own_server(
    request: pytest.FixtureRequest, pg: PostgresServer, tmp_path: Path
) -> Iterator[ServerProcess]:
    """A server of the test's own, once per store (on a fresh database): for tests that
    SIGKILL and restart it."""
    if request.param == "postgres":
        url = pg.database(f"own_{uuid.uuid4().hex[:8]}", fresh=True)
        s = ServerProcess(store="postgres", database_url=url, log_path=tmp_path / "s.log")
    else:
        s = ServerProcess(
            store="sqlite", sqlite_path=tmp_path / "d.sqlite3", log_path=tmp_path / "s.log"
        )
    s.start()
    yield s
    s.stop()
