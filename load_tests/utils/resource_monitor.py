"""Sample CPU and memory of the processes under test, and PostgreSQL's own statistics.

Why: on a small machine the load generator, the service, ``daprd`` and PostgreSQL share
the same cores; a latency number means little without knowing who was using the CPU.
Every row carries a unix timestamp, the clock of Locust's ``*_stats_history.csv`` and of
our histogram buckets, so the report can put them on one time axis.

Files (in the output directory):

``resources.csv``  ``timestamp, role, processes, cpu_percent, rss_bytes``
    one row per role per sample; roles are whatever the caller registers (``server``,
    ``daprd``, ``placement``, ``postgres``, ``loadgen``) plus ``system`` (the machine:
    ``cpu_percent`` is of all cores, 100 = one core fully busy, like the others) and
    ``other`` (system minus the registered roles: whatever else shares the machine).
``postgres.csv``   connections by state, commits/rollbacks, tuples, blocks, the
    ``state`` table's size and live/dead tuples (counters are cumulative; the
    analysis differentiates them).
``docker.csv``     ``docker stats`` rows, only when a ``docker`` CLI answers.

Runs as a background thread (``with ResourceMonitor(...)``) or standalone::

    python -m load_tests.utils.resource_monitor --pid server=1234 \
        --name daprd --database-url postgresql://... --out results/monitor
"""

from __future__ import annotations

import contextlib
import csv
import json
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import psutil
import typer

from load_tests.measure.cpu import process_tree

Resolver = Callable[[], list[int]]  # current pids of a role (processes come and go)

PG_ACTIVITY = """
SELECT coalesce(state, 'unknown'), count(*) FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid() GROUP BY 1
"""
PG_DATABASE = """
SELECT xact_commit, xact_rollback, tup_returned, tup_fetched, tup_inserted, tup_updated,
       tup_deleted, blks_read, blks_hit, deadlocks, temp_bytes
FROM pg_stat_database WHERE datname = current_database()
"""
PG_TABLE = """
SELECT n_live_tup, n_dead_tup, n_tup_hot_upd, pg_total_relation_size(relid), autovacuum_count
FROM pg_stat_user_tables WHERE relname = 'state'
"""
PG_COLUMNS = [
    "timestamp", "ok",
    "conn_active", "conn_idle", "conn_idle_in_tx", "conn_other", "conn_total",
    "xact_commit", "xact_rollback", "tup_returned", "tup_fetched", "tup_inserted",
    "tup_updated", "tup_deleted", "blks_read", "blks_hit", "deadlocks", "temp_bytes",
    "state_live_tup", "state_dead_tup", "state_hot_upd", "state_table_bytes", "autovacuum_count",
]  # fmt: skip


def by_name(name: str) -> Resolver:
    def resolve() -> list[int]:
        return [p.pid for p in psutil.process_iter(["name"]) if p.info["name"] == name]

    return resolve


def tree_of(pid_fn: Callable[[], int | None], exclude: tuple[str, ...] = ()) -> Resolver:
    return lambda: process_tree(pid_fn(), exclude)


class ResourceMonitor:
    """Background sampler; ``add_role`` may be called while it runs (e.g. the load generator)."""

    def __init__(
        self,
        out_dir: Path,
        roles: dict[str, Resolver] | None = None,
        database_url: str | None = None,
        interval: float = 1.0,
        docker: bool | None = None,
    ) -> None:
        self.out_dir = out_dir
        self.roles: dict[str, Resolver] = dict(roles or {})
        self.database_url = database_url
        self.interval = interval
        self.docker = docker if docker is not None else _docker_available()
        self._procs: dict[int, psutil.Process] = {}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._pg_conn: Any = None
        self.samples = 0

    def add_role(self, role: str, resolver: Resolver) -> None:
        with self._lock:
            self.roles[role] = resolver

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> ResourceMonitor:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        psutil.cpu_percent(None)  # prime the system-wide counter
        self._threads = [threading.Thread(target=self._run, name="resource-monitor", daemon=True)]
        if self.docker:
            self._threads.append(
                threading.Thread(target=self._run_docker, name="docker-stats", daemon=True)
            )
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=10)
        if self._pg_conn is not None:
            with contextlib.suppress(Exception):
                self._pg_conn.close()

    def __enter__(self) -> ResourceMonitor:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ sampling
    def _run(self) -> None:
        with (
            open(self.out_dir / "resources.csv", "w", newline="") as rf,
            open(self.out_dir / "postgres.csv", "w", newline="") as pf,
        ):
            rw = csv.writer(rf)
            rw.writerow(["timestamp", "role", "processes", "cpu_percent", "rss_bytes"])
            pw = csv.writer(pf)
            pw.writerow(PG_COLUMNS)
            while True:
                now = time.time()
                for row in self.sample_processes(now):
                    rw.writerow(row)
                if self.database_url:
                    pw.writerow(self.sample_postgres(now))
                rf.flush()
                pf.flush()
                self.samples += 1
                if self._stop.wait(max(0.0, self.interval - (time.time() - now))):
                    break

    def sample_processes(self, now: float) -> list[list[Any]]:
        rows: list[list[Any]] = []
        with self._lock:
            roles = dict(self.roles)
        seen: set[int] = set()
        for role, resolve in roles.items():
            cpu = 0.0
            rss = 0
            n = 0
            try:
                pids = resolve()
            except Exception:
                pids = []
            for pid in pids:
                if pid in seen:
                    continue  # a process belongs to the first role that claims it
                seen.add(pid)
                proc = self._procs.get(pid)
                try:
                    if proc is None:
                        proc = self._procs[pid] = psutil.Process(pid)
                        proc.cpu_percent(None)  # first call primes; counts from now on
                    with proc.oneshot():
                        cpu += proc.cpu_percent(None)
                        rss += proc.memory_info().rss
                    n += 1
                except psutil.Error:
                    self._procs.pop(pid, None)
            rows.append([f"{now:.3f}", role, n, round(cpu, 1), rss])
        vm = psutil.virtual_memory()
        total_cpu = psutil.cpu_percent(None) * (psutil.cpu_count() or 1)
        ours = sum(r[3] for r in rows)
        rows.append([f"{now:.3f}", "system", psutil.cpu_count(), round(total_cpu, 1), vm.used])
        # whatever else runs on the machine competes for the same cores: show it
        rows.append([f"{now:.3f}", "other", 0, round(max(0.0, total_cpu - ours), 1), 0])
        return rows

    def sample_postgres(self, now: float) -> list[Any]:
        """One row; ``ok`` = 0 while the database does not answer (e.g. during S7d)."""
        import psycopg

        try:
            if self._pg_conn is None or self._pg_conn.closed:
                self._pg_conn = psycopg.connect(
                    self.database_url, autocommit=True, connect_timeout=1
                )
            conn = self._pg_conn
            states = dict(conn.execute(PG_ACTIVITY).fetchall())
            db = conn.execute(PG_DATABASE).fetchone() or (None,) * 11
            table = conn.execute(PG_TABLE).fetchone() or (None,) * 5
        except Exception:
            with contextlib.suppress(Exception):
                if self._pg_conn is not None:
                    self._pg_conn.close()
            self._pg_conn = None
            return [f"{now:.3f}", 0] + [""] * (len(PG_COLUMNS) - 2)
        active = states.pop("active", 0)
        idle = states.pop("idle", 0)
        idle_tx = states.pop("idle in transaction", 0) + states.pop(
            "idle in transaction (aborted)", 0
        )
        other = sum(states.values())
        total = active + idle + idle_tx + other
        return [f"{now:.3f}", 1, active, idle, idle_tx, other, total, *db, *table]

    def _run_docker(self) -> None:
        with open(self.out_dir / "docker.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["timestamp", "name", "cpu_percent", "mem_usage", "mem_percent", "net_io"])
            while not self._stop.is_set():
                now = time.time()
                for row in docker_stats():
                    w.writerow([f"{now:.3f}", *row])
                f.flush()
                self._stop.wait(self.interval)


def _docker_available() -> bool:
    if not shutil.which("docker"):
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=5).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def docker_stats() -> list[list[str]]:
    """``docker stats --no-stream`` as rows (empty when docker is absent or fails)."""
    try:
        proc = subprocess.run(
            ["docker", "stats", "--no-stream", "--format", "{{json .}}"],
            capture_output=True,
            text=True,
            timeout=15,
        )
    except (OSError, subprocess.SubprocessError):
        return []
    rows = []
    for line in proc.stdout.splitlines():
        with contextlib.suppress(ValueError):
            d = json.loads(line)
            rows.append(
                [
                    d.get("Name", ""),
                    d.get("CPUPerc", "").rstrip("%"),
                    d.get("MemUsage", ""),
                    d.get("MemPerc", "").rstrip("%"),
                    d.get("NetIO", ""),
                ]
            )
    return rows


app = typer.Typer(add_completion=False, help=__doc__)


@app.command()
def main(
    out: Annotated[Path, typer.Option(help="directory for resources.csv / postgres.csv")],
    pid: Annotated[list[str], typer.Option(help="ROLE=PID: that process and its children")] = [],  # noqa: B006
    name: Annotated[list[str], typer.Option(help="processes by name, e.g. daprd")] = [],  # noqa: B006
    database_url: Annotated[str | None, typer.Option(help="PostgreSQL to query")] = None,
    interval: Annotated[float, typer.Option(help="seconds between samples")] = 1.0,
    duration: Annotated[float, typer.Option(help="stop after this many seconds (0 = Ctrl-C)")] = 0,
) -> None:
    """Sample until DURATION is over or Ctrl-C."""
    roles: dict[str, Resolver] = {}
    for spec in pid:
        role, _, value = spec.partition("=")
        roles[role] = tree_of(lambda v=int(value): v)
    for n in name:
        roles[n] = by_name(n)
    mon = ResourceMonitor(out, roles, database_url=database_url, interval=interval).start()
    try:
        deadline = time.time() + duration if duration else None
        while deadline is None or time.time() < deadline:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        mon.stop()
    typer.echo(f"{mon.samples} samples in {out}")


if __name__ == "__main__":
    app()
