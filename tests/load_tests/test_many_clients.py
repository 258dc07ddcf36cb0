"""Many clients in a short form: S8e, 1,000 long-polling workers (1,000 connections).

The server gets ``PUSHPOP_MAX_CONNECTIONS=1500`` (its default of 1,000 would answer the
producers' pushes ``503 TOO_MANY_CONNECTIONS`` once the fleet holds them all). While the
fleet polls, the server's own process must hold 1,000+ established connections; the
run must end without an error and with every item acknowledged exactly once.
"""

from __future__ import annotations

import threading
from pathlib import Path

import psutil

from load_tests import catalog
from load_tests.harness import Harness
from load_tests.runner import run_many
from load_tests.settings import RunSettings
from supervise.server import ServerProcess


def established(pid: int) -> int:
    try:
        conns = psutil.Process(pid).net_connections(kind="tcp")
    except psutil.Error:
        return 0
    return sum(1 for c in conns if c.status == psutil.CONN_ESTABLISHED)


def test_a_thousand_long_polling_workers(tmp_path: Path) -> None:
    server = ServerProcess(
        store="sqlite", sqlite_path=tmp_path / "q.sqlite3", log_path=tmp_path / "server.log",
        env={"PUSHPOP_MAX_CONNECTIONS": "1500"},
    ).start()  # fmt: skip
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.5):
            peak[0] = max(peak[0], established(server.pid or 0))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        harness = Harness(base_url=server.url, store="sqlite", server=server)
        settings = RunSettings(duration=6.0, bucket=0.5, report=False, label="m")
        evaluation, [outcome] = run_many([catalog.VARIANTS["S8e"]], harness, tmp_path / "r",
                                         settings, title="S8e")  # fmt: skip
    finally:
        done.set()
        sampler.join()
        server.stop()
    assert peak[0] >= 1000, f"the server held at most {peak[0]} connections"
    assert outcome.summary is not None, outcome.problems
    s = outcome.summary.to_json()
    assert s["errors"]["unexpected"] == 0, s["errors"]["by_kind"]
    totals = s["ledger"]["totals"]
    assert s["ledger"]["status"] == "ok", s["ledger"]["problems"]
    assert totals["pushed"] > 150 and totals["delivered"] == totals["pushed"]
    assert s["workers"]["acked"] == totals["pushed"]
    assert not evaluation.of("S8e").problems, evaluation.of("S8e").text()
