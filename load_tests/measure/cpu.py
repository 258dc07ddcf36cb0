"""CPU seconds per process tree over a phase: where a request's CPU budget goes.

On a small host the load generator, the server, daprd and PostgreSQL share the cores,
so a throughput target is also a CPU budget per request. Trees, not single processes:
a reaped child's time lands in its parent's ``children_*``, and only this run's
PostgreSQL cluster is counted (other clusters may run on the host).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import psutil

# Dapr mode: ``pushpop serve`` starts these as its children; counted apart from the app
DAPR_PROCESSES = {"daprd": "daprd", "placement": "placement+scheduler",
                  "scheduler": "placement+scheduler"}  # fmt: skip


def processes(pid: int | None) -> list[psutil.Process]:
    """``pid`` and its descendants now (none when it is gone)."""
    if not pid:
        return []
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def process_tree(pid: int | None, exclude: tuple[str, ...] = ()) -> list[int]:
    """The pids of ``pid`` and its descendants, minus processes named in ``exclude``."""
    out = []
    for p in processes(pid):
        with contextlib.suppress(psutil.Error):
            if p.name() not in exclude:
                out.append(p.pid)
    return out


def _cpu(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return t.user + t.system + t.children_user + t.children_system


def tree_cpu_by_name(pid: int, names: dict[str, str], default: str) -> dict[str, float]:
    """CPU seconds of ``pid`` and its descendants, by label: a process whose name is in
    ``names`` counts under that label, everything else under ``default``."""
    out = dict.fromkeys([default, *names.values()], 0.0)
    for proc in processes(pid):
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
        """Add each process's CPU seconds over the ``with`` block to ``into``."""
        before = self.now(server_pid, children)
        yield
        after = self.now(server_pid, children)
        for k in before:
            into[k] = into.get(k, 0.0) + after[k] - before[k]


def per_op(cpu: dict[str, float], operations: float) -> dict[str, float]:
    """CPU seconds per process over a phase -> CPU-µs per operation."""
    return {k: v / max(1, operations) * 1e6 for k, v in cpu.items()}
