"""Every listener of Dapr mode's control plane is on loopback, checked from the sockets.

The launcher tells placement and the scheduler to listen on 127.0.0.1, health and metrics
included; Dapr 1.18.2 parsed ``--healthz-listen-address`` and bound its health server on
every interface anyway (``*:PORT`` in ``ss``, answering from the machine's external
address; placement's serves its placement tables there too). The build patches that
(tools/dapr-build/overlay). The test lists each process's listening sockets.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

import httpx
import psutil

from supervise.dapr_processes import Placement, Scheduler, ensure_dapr_built


def listening(pid: int) -> list[tuple[str, int]]:
    conns = psutil.Process(pid).net_connections("inet")
    return sorted({(c.laddr.ip, c.laddr.port) for c in conns if c.status == psutil.CONN_LISTEN})


def test_placement_and_scheduler_listen_on_loopback_only(tmp_path: Path) -> None:
    bin_dir = ensure_dapr_built()
    with Placement(tmp_path, bin_dir=bin_dir) as p, Scheduler(tmp_path, bin_dir=bin_dir) as s:
        for proc in (p, s):
            assert proc.pid is not None
            sockets = listening(proc.pid)
            ports = {port for _, port in sockets}
            name = type(proc).__name__
            # the health, metrics and gRPC listeners are all there (the list is real) ...
            assert {proc.healthz_port, proc.metrics_port, proc.port} <= ports, (name, sockets)
            # ... and not one of them listens beyond loopback
            wide = [(ip, port) for ip, port in sockets if not ipaddress.ip_address(ip).is_loopback]
            assert not wide, f"{name} listens beyond loopback: {wide} (all: {sockets})"
            assert httpx.get(proc.health_url(), timeout=5).status_code == 200
