"""Abort on fail: ``pushpop-bench run --abort error_rate`` against a server stopped mid-run.

The run is asked for 60 s of load; the server is stopped a few seconds in. The command
must end within the grace period plus 5 s of that, with exit code 5, an ``abort.json``
and a verdict that name the threshold, and a JUnit file (validated against the Jenkins
JUnit schema) whose failed test case says the same. A real server in its own process,
a real Locust child: the abort path is the one users get.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import xmlschema

from load_tests.evaluation.codes import EXIT_ABORT
from supervise.server import ServerProcess

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / ".venv" / "bin" / "pushpop-bench"
XSD = Path(__file__).parent / "data" / "junit-4.xsd"
GRACE_S = 3.0


def test_abort_threshold_stops_a_failing_run_early(tmp_path: Path) -> None:
    server = ServerProcess(
        store="sqlite", sqlite_path=tmp_path / "q.sqlite3", log_path=tmp_path / "server.log"
    ).start()
    out, junit = tmp_path / "results", tmp_path / "junit.xml"
    cmd = [str(BENCH), "run", "S3a", "--host", server.url, "--duration", "60s", "--no-warm",
           "--abort", "error_rate", "--abort-grace", f"{GRACE_S:g}s", "--out", str(out),
           "--junit", str(junit)]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)  # fmt: skip
    try:
        deadline = time.time() + 60
        while not list(out.glob("*/S3a/started.json")):  # the load has started
            assert time.time() < deadline and proc.poll() is None, "the run never started"
            time.sleep(0.1)
        time.sleep(GRACE_S + 1)
        assert proc.poll() is None  # healthy so far: no abort
    finally:
        stopped = time.time()
        server.stop()
    console, _ = proc.communicate(timeout=60)
    took = time.time() - stopped
    assert proc.returncode == EXIT_ABORT, console
    assert took <= GRACE_S + 5, f"ended {took:.1f} s after the server stopped"
    run_dir = next(out.glob("*/S3a"))
    abort = json.loads((run_dir / "abort.json").read_text())
    assert abort["threshold"] == "error_rate" and abort["value"] > abort["limit"] == 0.01
    assert abort["at"] - stopped < GRACE_S + 3
    assert abort["at_s"] < 30  # far from the 60 s asked for
    verdict = (run_dir / "verdict.txt").read_text()
    assert "aborted" in verdict and "error_rate" in verdict
    assert "exit code 5" in console
    schema = xmlschema.XMLSchema(str(XSD))
    schema.validate(str(junit))
    cases = schema.to_dict(str(junit))["testsuite"][0]["testcase"]
    failed = [c["failure"][0]["@message"] for c in cases if c.get("failure")]
    assert any("aborted" in m and "error_rate" in m for m in failed), failed
