"""pgbench, the reference every throughput figure is put against: what this PostgreSQL
commits of a push's own writes, with no HTTP, actor or Python around them.

:data:`PUSH_STATEMENT` is a push's writes as the store sends them (its own statement,
never a copy); :func:`run_pgbench` runs a script, optionally paced, and parses the result.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from actor_service.stores.postgres import inline_statement
from load_tests.measure.histograms import new_histogram, record_us

PGBENCH = shutil.which("pgbench") or "/usr/bin/pgbench"

# The meta row and a segment row of the client's own queue, in the statement
# PostgresStore itself sends (one multi-row upsert in autocommit, atomic on its own).
_KEY = "'bench||QueueActor||q' || :client_id || '||{name}'"
PUSH_STATEMENT = (
    inline_statement([
        (_KEY.format(name="meta"), """'{"next_id": 1, "pri": {"1": [0, 1, 1.0]}}'"""),
        (_KEY.format(name="s:1:0"), """'{"start": 0, "items": [[1, {"payload": "xxxx"}, 1.0]]}'"""),
    ])
    + "\n"
)  # fmt: skip


@dataclass
class PgbenchResult:
    tps: float
    latency_avg_ms: float | None = None
    # paced runs (``rate``) only: from the per-transaction log, from the scheduled start
    p50_ms: float = float("nan")
    p99_ms: float = float("nan")
    output: str = ""


def run_pgbench(
    database_url: str, script: str, clients: int, seconds: float, *,
    rate: float | None = None, define: dict[str, object] | None = None,
) -> PgbenchResult:  # fmt: skip
    """Run pgbench (prepared statements, no vacuum) with the text ``script``; with
    ``rate``, paced and with latency percentiles; ``define``: ``-D`` variables."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "script.sql"
        path.write_text(script)
        args = [PGBENCH, "-n", "-M", "prepared", "-f", str(path), "-c", str(clients),
                "-j", str(min(clients, os.cpu_count() or 1)),
                "-T", str(max(1, round(seconds)))]  # fmt: skip
        for name, value in (define or {}).items():
            args += ["-D", f"{name}={value}"]
        if rate:
            args += ["-R", str(rate), "-l"]
        proc = subprocess.run(
            [*args, database_url], capture_output=True, text=True, check=False, cwd=tmp
        )
        if proc.returncode != 0:
            raise RuntimeError(f"pgbench failed: {proc.stderr[-2000:]}")
        out = proc.stdout
        tps = re.search(r"^tps = ([\d.]+)", out, re.M)
        if tps is None:
            raise RuntimeError(f"pgbench printed no tps:\n{out}")
        lat = re.search(r"latency average = ([\d.]+) ms", out)
        result = PgbenchResult(
            float(tps.group(1)), float(lat.group(1)) if lat else None, output=out
        )
        if rate:
            hist = new_histogram()
            for log in Path(tmp).glob("pgbench_log*"):
                for line in log.read_text().splitlines():
                    record_us(hist, int(line.split()[2]))  # µs
            result.p50_ms = hist.get_value_at_percentile(50) / 1000
            result.p99_ms = hist.get_value_at_percentile(99) / 1000
        return result
