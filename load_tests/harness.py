"""The system under test: start ``pushpop serve`` (and PostgreSQL) locally, or point at one.

Why a harness object: the fault scenarios need handles on the real processes (S7d stops
and starts *this run's* PostgreSQL, S7e restarts ``daprd``) and the resource monitor
needs their pids. ``pushpop-bench`` builds one from its options; the tests build one
from their module-scoped server and database, so both run the exact same code.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import psutil

from load_tests.warmup import probe
from supervise.server import wait_ready

log = logging.getLogger("pushpop.bench")

SIDECAR_NAMES = ("daprd", "placement", "scheduler")


@dataclass
class Harness:
    """Where the load goes, and handles on whatever this run started."""

    base_url: str
    store: str = "unknown"
    runtime: str = "embedded"
    database_url: str | None = None
    pg: object | None = None  # supervise.pgserver.PostgresServer when this run owns it
    server: object | None = None  # supervise.server.ServerProcess when this run started it
    daprd_pid: int | None = None
    runinfo_path: Path | None = None  # PUSHPOP_DAPR_RUNINFO of a server we started
    notes: list[str] = field(default_factory=list)

    # ------------------------------------------------------------------ pids
    @property
    def port(self) -> int:
        return urlparse(self.base_url).port or 80

    def server_pid(self) -> int | None:
        pid = getattr(self.server, "pid", None)
        return pid if pid else listening_pid(self.port)

    def postgres_pid(self) -> int | None:
        """The postmaster: a child of ``runuser`` when we started it as root."""
        pid = getattr(self.pg, "pid", None)
        if pid:
            with contextlib.suppress(psutil.Error):
                proc = psutil.Process(pid)
                if proc.name() != "postgres":
                    for child in proc.children():
                        if child.name() == "postgres":
                            return child.pid
                return pid
        if self.database_url:
            return listening_pid(urlparse(self.database_url).port or 5432)
        return None

    def sidecar_pids(self, name: str) -> list[int]:
        """Pids of ``daprd``/``placement``/``scheduler``: this run's when it knows them."""
        info = self.dapr_runinfo()
        pid = info.get(f"{name}_pid") if info else None
        if name == "daprd" and not pid:
            pid = self.daprd_pid
        if pid and psutil.pid_exists(pid):
            return [pid]
        return [] if info else pids_named(name)

    def dapr_runinfo(self) -> dict[str, object] | None:
        """What ``pushpop serve --runtime dapr`` wrote about its processes (it rewrites
        the file when its supervisor restarts daprd)."""
        if not self.runinfo_path or not self.runinfo_path.exists():
            return None
        with contextlib.suppress(ValueError, OSError):
            return json.loads(self.runinfo_path.read_text())
        return None

    def describe(self) -> dict[str, object]:
        return {
            "base_url": self.base_url,
            "store": self.store,
            "runtime": self.runtime,
            "managed_server": self.server is not None,
            "managed_postgres": self.pg is not None,
            "notes": self.notes,
        }

    # ------------------------------------------------------------------ health
    def wait_ready(self, timeout: float = 60.0) -> None:
        wait_ready(self.base_url, timeout)


def listening_pid(port: int) -> int | None:
    """The process listening on a loopback TCP port (needs permission to see it)."""
    with contextlib.suppress(psutil.Error, PermissionError):
        for conn in psutil.net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
                return conn.pid
    return None


def pids_named(name: str) -> list[int]:
    out = []
    for proc in psutil.process_iter(["name"]):
        if proc.info["name"] == name:
            out.append(proc.pid)
    return out


@contextlib.contextmanager
def local_harness(
    *,
    host: str | None,
    store: str,
    runtime: str,
    database_url: str | None,
    workdir: Path,
) -> Iterator[Harness]:
    """Start what is needed (PostgreSQL, then ``pushpop serve``), or target ``host``.

    With ``host``, nothing is started: the run measures that server, and S7d can only
    run if this process owns the database (it does not), so it is skipped.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    if host:
        # the server says what it runs on; the --store/--runtime defaults describe a
        # server this run would start, not this one
        info = probe(host.rstrip("/"))
        harness = Harness(
            base_url=host.rstrip("/"),
            store=str(info.get("store", "unknown")),
            runtime=str(info.get("runtime", "unknown")),
            database_url=database_url,
        )
        harness.notes.append("external server: not started by this run")
        harness.wait_ready()
        yield harness
        return

    from supervise.pgserver import PostgresServer
    from supervise.server import ServerProcess

    with contextlib.ExitStack() as stack:
        pg = None
        if store == "postgres" and not database_url:
            pg = PostgresServer()  # temporary cluster, removed on exit
            pg.start()
            stack.callback(pg.cleanup)
            database_url = pg.url
        runinfo = workdir / "dapr-runinfo.json"
        server = ServerProcess(
            store=store,
            database_url=database_url if store == "postgres" else None,
            sqlite_path=workdir / "pushpop.sqlite3" if store == "sqlite" else None,
            runtime=runtime,
            log_path=workdir / "server.log",
            env={
                "PUSHPOP_DAPR_RUNINFO": str(runinfo),
                "PUSHPOP_DAPR_RUN_DIR": str(workdir / "dapr"),
            }
            if runtime == "dapr"
            else None,
        )
        try:
            server.start(timeout=120 if runtime == "dapr" else 60)
        except Exception as exc:
            raise RuntimeError(
                f"`pushpop serve --store {store} --runtime {runtime}` did not come up: {exc}; "
                f"see {workdir / 'server.log'}"
            ) from exc
        stack.callback(server.stop)
        harness = Harness(
            base_url=server.url,
            store=store,
            runtime=runtime,
            database_url=database_url,
            pg=pg,
            server=server,
            runinfo_path=runinfo if runtime == "dapr" else None,
        )
        harness.wait_ready()
        yield harness
