"""Smoke test of ``python -m benchmarks.throughput``: it runs end to end and its JSON
has every field. Correctness only: no number is judged here (timed assertions on a
shared 2-core host would be flaky); the targets are the benchmark's own business.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def test_throughput_benchmark_writes_every_field(tmp_path: Path) -> None:
    out = tmp_path / "throughput.json"
    subprocess.run(
        [sys.executable, "-m", "benchmarks.throughput", "--seconds", "1",
         "--runtimes", "embedded", "--out", str(out)],
        check=True, timeout=120, capture_output=True,
    )  # fmt: skip
    result = json.loads(out.read_text())
    assert result["generator"] in ("wrk", "aiohttp")
    assert result["pgbench"]["reference_tps"] > 0
    for when in ("start", "end"):
        assert {"PostgreSQL", "pgbench", "other"} <= set(result["pgbench"][when]["cpu_us_per_tx"])
    points = result["points"]
    assert {(p["mode"], p["op"], p["queues"], p["connections"]) for p in points} == {
        (mode, op, queues, conns)
        for mode in ("optimised", "baseline")
        for op, queues, conns in (("push", 50, 16), ("push", 1, 16), ("push", 50, 1),
                                  ("pop", 50, 16), ("pop", 1, 16))
    }  # fmt: skip
    for p in points:
        assert p["runtime"] == "embedded"
        assert p["requests"] > 0 and p["errors"] == 0, p
        assert p["p50_ms"] > 0
        assert {"server", "PostgreSQL", "load generator", "other"} <= set(p["cpu_us_per_op"])
        if p["op"] == "pop":
            assert p["empty_fraction"] == 0.0, p  # the queues were filled beyond need
    names = {t["name"] for t in result["targets"]}
    assert names == {
        "embedded push 50q c=16 / pgbench", "embedded pop 50q c=16 / pgbench",
        "embedded push 1q c=16 / 50q", "embedded pop 1q c=16 / 50q",
        "embedded push c=1 (p50) / baseline",
    }  # fmt: skip
    assert all(isinstance(t["met"], bool) for t in result["targets"])
