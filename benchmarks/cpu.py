"""CPU seconds per process over a benchmark phase, shared by the benchmarks.

On this 2-core host the load generator, the server and PostgreSQL share the cores, so
a throughput target is also a CPU budget per request: these meters show where it goes.
Trees, not single processes: a reaped child's time lands in its parent's
``children_*`` (pgbench's backends, the server's short-lived connections), and only
this run's PostgreSQL cluster is counted (other clusters may run on the host).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import psutil

# Dapr mode: ``pushpop serve`` starts these as its children; counted apart from the app
DAPR_PROCESSES = {"daprd": "daprd", "placement": "placement+scheduler",
                  "scheduler": "placement+scheduler"}  # fmt: skip


def _cpu(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return t.user + t.system + t.children_user + t.children_system


def tree_cpu_by_name(pid: int, names: dict[str, str], default: str) -> dict[str, float]:
    """CPU seconds of ``pid`` and its descendants, by label: a process whose name is in
    ``names`` counts under that label, everything else under ``default``."""
    out = dict.fromkeys([default, *names.values()], 0.0)
    with contextlib.suppress(psutil.Error):
        root = psutil.Process(pid)
        for proc in [root, *root.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                out[names.get(proc.name(), default)] += _cpu(proc)
    return out


def tree_cpu(pid: int) -> float:
    """CPU seconds of process ``pid`` and all its descendants, exited ones included."""
    return tree_cpu_by_name(pid, {}, "all")["all"]


def host_busy() -> float:
    """CPU seconds the whole host has spent busy (all processes, all cores)."""
    t = psutil.cpu_times()  # guest time is part of user time already
    return t.user + t.nice + t.system + t.irq + t.softirq


class Meter:
    """CPU seconds per process over one phase: only this run's PostgreSQL cluster, the
    server (with ``split``, its Dapr children apart), and this process (the load
    generator) with its children (wrk, or pgbench when there is no server)."""

    def __init__(self, pg_pid: int, split: dict[str, str] | None = None) -> None:
        self.pg_pid = pg_pid
        self.split = split or {}

    def now(self, server_pid: int | None, children: str = "pgbench") -> dict[str, float]:
        t = os.times()
        out = {"PostgreSQL": tree_cpu(self.pg_pid)}
        if server_pid is not None:
            out.update(tree_cpu_by_name(server_pid, self.split, "server"))
            out["load generator"] = t.user + t.system + t.children_user + t.children_system
        else:
            out[children] = t.children_user + t.children_system
        return out

    @contextlib.contextmanager
    def measure(
        self, into: dict[str, float], server_pid: int | None, children: str = "pgbench"
    ) -> Iterator[None]:
        before = self.now(server_pid, children)
        yield
        after = self.now(server_pid, children)
        for k in before:
            into[k] = into.get(k, 0.0) + after[k] - before[k]
