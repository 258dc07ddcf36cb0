"""Live output: ``pushpop-bench run --live-port`` serves the running variant's metrics.

S8a runs for 8 s against a real server; while it runs, the endpoint must show the load
as it happens (requests/s near S8a's ~120, no errors, latency percentiles, the
backlog gauges), read from what the load generator flushes each second; once the
command has ended the endpoint is gone.
"""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from supervise.ports import free_port
from supervise.server import ServerProcess

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / ".venv" / "bin" / "pushpop-bench"


def gauge(text: str, name: str, **labels: str) -> float | None:
    """The sample of ``name`` with exactly ``labels`` (in whatever order they are written)."""
    for m in re.finditer(rf"^{name}\{{(.*)\}} (\S+)$", text, re.M):
        if dict(re.findall(r'(\w+)="([^"]*)"', m.group(1))) == labels:
            return float(m.group(2))
    return None


def test_live_metrics_during_a_run(tmp_path: Path) -> None:
    server = ServerProcess(
        store="sqlite", sqlite_path=tmp_path / "q.sqlite3", log_path=tmp_path / "server.log"
    ).start()
    port = free_port()
    cmd = [str(BENCH), "run", "S8a", "--host", server.url, "--duration", "8s", "--no-warm",
           "--live-port", str(port), "--out", str(tmp_path / "results")]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)  # fmt: skip
    seen: dict[str, float | None] = {}
    try:
        deadline = time.time() + 60
        while time.time() < deadline and proc.poll() is None:
            try:
                text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
            except httpx.HTTPError:
                text = ""
            rps = gauge(text, "pushpop_bench_requests_per_second", variant="S8a")
            if rps and rps > 20 and gauge(text, "pushpop_bench_elapsed_seconds", variant="S8a"):
                seen = {
                    "rps": rps,
                    "errors": gauge(text, "pushpop_bench_error_rate", variant="S8a"),
                    "p50": gauge(text, "pushpop_bench_latency_ms", variant="S8a", quantile="0.5"),
                    "p99": gauge(text, "pushpop_bench_latency_ms", variant="S8a", quantile="0.99"),
                    "backlog": gauge(
                        text, "pushpop_bench_backlog_items", variant="S8a", queues="work"
                    ),
                }
                if seen["backlog"] is not None:
                    break
            time.sleep(0.5)
        assert proc.poll() is None, "the run ended before its live metrics showed the load"
        console, _ = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
        server.stop()
    assert f"live metrics: http://127.0.0.1:{port}/metrics" in console
    assert seen["rps"] is not None and 20 < seen["rps"] < 400, seen  # S8a: ~120 req/s
    assert seen["errors"] == 0.0
    assert seen["p50"] is not None and 0 < seen["p50"] <= (seen["p99"] or 0)
    assert seen["backlog"] is not None and seen["backlog"] < 50  # a balanced fleet
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2)
