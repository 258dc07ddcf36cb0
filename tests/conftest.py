"""Shared fixtures: a real PostgreSQL for the session, the real app per store.

Nothing here is faked: ``pg`` is a throwaway PostgreSQL cluster (Debian's server
binaries, installed by ``make setup``). ``server``/``client`` are the app ``pushpop
serve`` builds, run in this process once per store (its lifespan running, a real SQLite
file or PostgreSQL database) for tests of HTTP semantics; its Dapr variants and
``real_server`` are ``pushpop serve`` in a child process, for what needs a socket of its
own, a second process or a signal.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from asgi_helpers import AppThread
from server_helpers import Remote, Served, pg_database

from actor_service.actor import QueueActor
from actor_service.stores.claim import claim_for
from api.settings import Settings
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


@pytest.fixture(autouse=True)
def _actor_limits() -> Iterator[None]:
    """``QueueActor.limits`` is class-wide (the app sets it when built): a test that builds
    an app with limits of its own leaves the session's apps theirs."""
    limits = QueueActor.limits
    yield
    QueueActor.limits = limits


@pytest.fixture(scope="session")
def apps(
    pg: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, AppThread]]:
    """The app of ``pushpop serve`` per store, in this process for the whole session
    (tests use unique queue ids), each holding its database's claim as the server does.
    Databases of their own: one embedded host per database."""
    tmp = tmp_path_factory.mktemp("apps")
    where = {"sqlite": {"sqlite_path": str(tmp / "app.sqlite3")},
             "postgres": {"database_url": pg_database(pg, "pushpop_app")}}  # fmt: skip
    started: dict[str, AppThread] = {}
    try:
        for store, place in where.items():
            settings = Settings.from_env(store=store, **place)
            claim = claim_for(store, "exclusive", **place)
            started[store] = AppThread(settings, claim).start()
        yield started
    finally:
        for app in started.values():
            app.stop()


@pytest.fixture(scope="session")
def servers(
    pg: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, ServerProcess]]:
    """``pushpop serve`` per store in a child process for the whole session (tests use
    unique queue ids): for tests that need its socket, its process or a second process."""
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
    server.start(timeout=120)  # placement, scheduler, daprd and the app: slow on a busy host
    try:
        wait_ready(server.url, 120)
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


STORES = [
    "sqlite",
    "postgres",
    pytest.param("dapr", marks=pytest.mark.dapr),
    pytest.param("dapr-direct", marks=pytest.mark.dapr),
]


def _dapr_variant(request: pytest.FixtureRequest, name: str) -> ServerProcess:
    """Started on first use: only runs that select it pay."""
    return request.getfixturevalue("dapr_server" if name == "dapr" else "dapr_direct_server")


@pytest.fixture(params=STORES)
def server(request: pytest.FixtureRequest) -> Served:
    """The app per runtime: in this process for SQLite and PostgreSQL, over HTTP for Dapr."""
    if request.param.startswith("dapr"):
        return Remote(_dapr_variant(request, request.param))
    return request.getfixturevalue("apps")[request.param]


@pytest.fixture(params=STORES)
def real_server(request: pytest.FixtureRequest) -> ServerProcess:
    """``pushpop serve`` in a child process per runtime: for tests of its socket or process."""
    if request.param.startswith("dapr"):
        return _dapr_variant(request, request.param)
    return request.getfixturevalue("servers")[request.param]


@pytest.fixture
def client(server: Served) -> Iterator[httpx.Client]:
    with server.client() as c:
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
