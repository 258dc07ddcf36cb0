"""The servers the throughput benchmarks measure: ``pushpop serve`` in a mode, the floor
app, on databases of one throwaway PostgreSQL (``benchmarks.throughput``, ``.builds``).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import httpx

from benchmarks.floor_app import DAPR_STATE_ENV, DATABASE_URL_ENV
from supervise.pgserver import PostgresServer
from supervise.ports import free_port
from supervise.server import ServerProcess, wait_ready

ROOT = Path(__file__).resolve().parents[1]
MODES = {
    "optimised": {},
    "baseline": {"PUSHPOP_GROUP_COMMIT": "0", "PUSHPOP_COALESCE": "false"},
}


def start_postgres(attempts: int = 3) -> PostgresServer:
    """A throwaway cluster; again on another port if a concurrent test took the free one."""
    for attempt in range(attempts):
        pg = PostgresServer()
        try:
            return pg.start()
        except RuntimeError:
            pg.cleanup()
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def start_server(
    pg: PostgresServer, runtime: str, mode: str, tmp: Path, dapr_state: str, *,
    database: str | None = None, command: list[str] | None = None,
) -> ServerProcess:  # fmt: skip
    """``pushpop serve`` on a fresh database (``database``, default
    ``throughput_{runtime}_{mode}``); ``command`` serves another build instead
    (:mod:`benchmarks.builds`)."""
    env = dict(MODES[mode])
    if runtime == "dapr":
        env |= {"PUSHPOP_DAPR_RUN_DIR": str(tmp / f"dapr-{mode}"),
                "PUSHPOP_DAPR_STATE": dapr_state}  # fmt: skip
    database = database or f"throughput_{runtime}_{mode}"
    server = ServerProcess(
        store="postgres", database_url=pg.database(database, fresh=True),
        runtime=runtime, env=env, log_path=tmp / f"{runtime}-{mode}.log", command=command,
    )  # fmt: skip
    server.start(90)
    wait_ready(server.url)
    return server


def start_floor(
    database_url: str, log_path: Path, *, dapr: bool = False, dapr_state: str = "direct"
) -> ServerProcess:
    """The floor app (:mod:`benchmarks.floor_app`) in uvicorn as ``pushpop serve`` runs it:
    uvloop, httptools, no access log, one process; the project imported from this tree.

    ``dapr``: its Dapr form, ready once an actor call has gone through (placement has
    handed out its table); ``dapr_state``: where that form writes (component: through
    daprd's actor state API, as pushpop's default Dapr mode; direct: its own store). The
    bare form always writes its own store (the app reads the setting only behind daprd)."""
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "benchmarks.floor_app:app", "--app-dir",
               str(ROOT), "--loop", "uvloop", "--http", "httptools", "--no-access-log",
               "--lifespan", "on", "--log-level", "warning", "--port", str(port)]  # fmt: skip
    if dapr:
        command = [sys.executable, "-m", "benchmarks.floor_app"]
    server = ServerProcess(
        port=port, env={DATABASE_URL_ENV: database_url, "PYTHONPATH": str(ROOT),
                        DAPR_STATE_ENV: dapr_state},
        log_path=log_path, command=command,
    )  # fmt: skip
    server.start(60)
    deadline = time.monotonic() + 60
    while dapr and httpx.post(f"{server.url}/queue/probe/pop", timeout=10).status_code != 200:
        if time.monotonic() > deadline:
            server.stop()
            raise TimeoutError(f"no actor call through daprd in 60 s; see {log_path}")
        time.sleep(0.2)
    return server
