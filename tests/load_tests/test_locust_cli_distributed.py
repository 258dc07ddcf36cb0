"""The load plan's own command, distributed: ``locust --master`` and two ``--worker``s.

``--headless --run-time`` ends with the master's ``quit()``, which fires its
``test_stop`` before the workers are stopped or have sent their last ledger entries;
the master used to drain and check the ledger right away and report the workers' last
pushes as extras and their last pops as lost (a FAIL for a lossless run). A real
server (SQLite), real Locust processes, the ledger the master writes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from supervise.server import ServerProcess

LOCUSTFILE = Path(__file__).resolve().parents[2] / "load_tests" / "locustfile.py"


def test_master_waits_for_every_workers_ledger(tmp_path: Path) -> None:
    out = tmp_path / "out"
    locust = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE)]
    with ServerProcess(store="sqlite", sqlite_path=tmp_path / "q.sqlite3",
                       log_path=tmp_path / "server.log") as server:  # fmt: skip
        logs = [open(tmp_path / f"worker{i}.log", "wb") for i in range(2)]
        workers = [
            subprocess.Popen([*locust, "--worker"], stdout=log, stderr=subprocess.STDOUT)
            for log in logs
        ]
        try:
            master = subprocess.run(
                [*locust, "--master", "--expect-workers", "2", "--headless", "--users", "12",
                 "--spawn-rate", "12", "--run-time", "4s", "--stop-timeout", "5",
                 "--host", server.url, "--pushpop-out", str(out)],
                capture_output=True, text=True, timeout=120,
            )  # fmt: skip
        finally:
            ended = []
            for w, log in zip(workers, logs, strict=True):
                try:
                    ended.append(w.wait(timeout=20))  # the master's quit ends them
                except subprocess.TimeoutExpired:
                    w.kill()
                log.close()
    assert master.returncode == 0, master.stderr[-3000:]
    assert ended == [0, 0], "the workers did not get the master's quit"
    ledger = json.loads((out / "ledger.json").read_text())
    assert ledger["totals"]["pushed"] > 50, ledger["totals"]
    assert ledger["status"] == "ok" and ledger["ok"], (ledger["problems"], ledger["totals"])
    assert "worker-" in (out / "counters.csv").read_text()  # the workers' buckets arrived
