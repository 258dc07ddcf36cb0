"""The load plan's commands, run as written, against a real ``pushpop serve``.

Everything here is a child process: Locust with the plan's options, the plan's analysis
and threshold scripts on the CSVs that Locust wrote, ``pushpop-bench`` against the
server with a baseline it must fail. One SQLite server serves the module (no PostgreSQL
needed); every load lasts a few seconds.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from load_tests.evaluation.codes import EXIT_ERRORS, EXIT_OK, EXIT_THRESHOLD
from supervise.ports import free_port
from supervise.server import ServerProcess

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
LOOSE = ["--p50", "10000", "--p95", "10000", "--p99", "10000"]  # a loaded CI box still passes


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("plan")
    s = ServerProcess(store="sqlite", sqlite_path=tmp / "s.sqlite3", log_path=tmp / "server.log")
    s.start()
    try:
        yield s
    finally:
        s.stop()


def run(*cmd: str | Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(c) for c in cmd], capture_output=True, text=True, cwd=ROOT, timeout=timeout
    )


@pytest.fixture(scope="module")
def locust_run(server: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The plan's headless command, verbatim but for a shorter --run-time."""
    out = tmp_path_factory.mktemp("r")
    t0 = time.monotonic()
    p = run(
        BIN / "locust", "-f", "load_tests/locustfile.py", "--headless", "--users", "10",
        "--spawn-rate", "5", "--run-time", "4s", "--csv", out / "run", "--host", server.url,
    )  # fmt: skip
    elapsed = time.monotonic() - t0
    assert p.returncode == 0, p.stderr[-3000:]
    assert "will be ignored" not in p.stderr, p.stderr[-2000:]
    assert elapsed < 40, f"--run-time 4s took {elapsed:.0f} s"
    return out / "run_stats.csv"


def test_plan_locust_command_honours_users_spawn_rate_and_run_time(locust_run: Path) -> None:
    with open(locust_run.with_name("run_stats_history.csv"), newline="") as f:
        users = [int(r["User Count"]) for r in csv.DictReader(f)]
    assert max(users) == 10  # --users, reached at --spawn-rate 5/s
    with open(locust_run, newline="") as f:
        names = {r["Name"] for r in csv.DictReader(f)}
    assert names == {"push", "pop", "Aggregated"}  # S3a alone: the default class


@pytest.mark.parametrize("script", ["analyze_results.py", "check_thresholds.py"])
def test_plan_scripts_read_a_locust_csv_and_fail_on_a_threshold(
    locust_run: Path, script: str, tmp_path: Path
) -> None:
    path = ROOT / "load_tests" / "scripts" / script
    ok = run(sys.executable, path, locust_run, *LOOSE)
    assert ok.returncode == EXIT_OK, ok.stdout + ok.stderr
    for name in ("push", "pop"):  # p50/p95/p99/error rate per endpoint
        row = rf"\brun\s+{name}\s+\d+\s+\d+\.\d+%(\s+\d+\.\d+){{3}}"
        assert re.search(row, ok.stdout), ok.stdout
    assert "VERDICT: PASS" in ok.stdout and "<= 10,000.000 ms" in ok.stdout
    # the plan's own thresholds by default, each shown with its limit
    plan = run(sys.executable, path, locust_run)
    assert plan.returncode in (EXIT_OK, EXIT_THRESHOLD), plan.stdout + plan.stderr
    for limit in ("<= 30.000 ms", "<= 50.000 ms", "<= 100.000 ms", "<= 1.00%"):
        assert limit in plan.stdout, plan.stdout
    bad = run(sys.executable, path, locust_run.with_name("run_stats_history.csv"), "--p50", "0.001")
    assert bad.returncode == EXIT_THRESHOLD, bad.stdout + bad.stderr
    assert "VERDICT: FAIL" in bad.stdout and "> limit 0.001 ms" in bad.stdout
    # a thresholds file works the same; an error-rate limit is an error (exit 1)
    strict = tmp_path / "t.json"
    strict.write_text(json.dumps({"p50_ms": 10000, "p95_ms": None, "p99_ms": None,
                                  "error_rate": -1}))  # fmt: skip
    err = run(sys.executable, path, locust_run.parent, "--thresholds", strict)
    assert err.returncode == EXIT_ERRORS, err.stdout + err.stderr


def test_web_ui_has_a_class_picker_with_s3a_and_the_shapes(server: ServerProcess) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [BIN / "locust", "-f", "load_tests/locustfile.py,load_tests/shapes.py",
         "--web-host", "127.0.0.1", "--web-port", str(port), "--host", server.url],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                page = httpx.get(f"http://127.0.0.1:{port}/", timeout=2).text
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "the web UI did not come up"
                time.sleep(0.3)
    finally:
        proc.terminate()
        proc.wait(timeout=15)
    args = json.loads(re.search(r"templateArgs = (\{.*?\})\s*</script>", page, re.S).group(1))
    assert args["show_userclass_picker"] is True
    assert args["available_user_classes"] == ["MixedWorkloadUser"]
    assert {"ConstantRateShape", "SineBurstShape"} <= set(args["available_shape_classes"])


def bench(*args: str | Path, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(
        [str(BIN / "pushpop-bench"), *map(str, args)],
        capture_output=True, text=True, cwd=ROOT, timeout=timeout, env=env,
    )  # fmt: skip


def test_baseline_regression_fails_in_exit_code_console_and_html(
    server: ServerProcess, tmp_path: Path
) -> None:
    first = bench("run", "S3a", "--host", server.url, "--duration", "2s", "--no-warm",
                  "--out", tmp_path / "a")  # fmt: skip
    assert first.returncode in (EXIT_OK, EXIT_THRESHOLD), first.stdout + first.stderr
    assert "(sqlite, embedded)" in first.stdout  # what the server says, not a default
    [run_a] = (tmp_path / "a").iterdir()
    saved = bench("baseline", run_a, "--out", tmp_path / "base.json")
    assert saved.returncode == 0, saved.stdout + saved.stderr
    # a baseline three times faster than what this server just did
    data = json.loads((tmp_path / "base.json").read_text())
    for name, m in data["variants"]["S3a"]["metrics"].items():
        if name.endswith((" p50", " p95", " p99")):
            m["values"] = [v / 3 for v in m["values"]]
            m["median"] /= 3
    (tmp_path / "fast.json").write_text(json.dumps(data))

    second = bench("run", "S3a", "--host", server.url, "--duration", "2s", "--no-warm",
                   "--out", tmp_path / "b", "--baseline", tmp_path / "fast.json")  # fmt: skip
    assert second.returncode == EXIT_THRESHOLD, second.stdout + second.stderr
    assert "VERDICT S3a: FAIL" in second.stdout and "REGRESSION" in second.stdout
    assert "VERDICT: PASS" not in second.stdout
    [run_b] = (tmp_path / "b").iterdir()
    last = (run_b / "verdict.txt").read_text().strip().splitlines()[-1]
    assert last.startswith("VERDICT: FAIL") and "exit code 3" in last and "regression" in last
    index = (run_b / "index.html").read_text()
    assert "VERDICT: FAIL" in index and "REGRESSION" in index and "fast.json" in index
    report = (run_b / "S3a" / "report.html").read_text()
    assert "VERDICT S3a: FAIL" in report and "REGRESSION" in report
    assert json.loads((run_b / "results.json").read_text())["verdict"]["code"] == EXIT_THRESHOLD

    # compare: the same run against itself passes; the faster run as A fails B
    assert bench("compare", run_a, run_a).returncode == EXIT_OK
    slow = tmp_path / "slow"
    shutil.copytree(run_a, slow)
    summary_path = next(slow.glob("*/summary.json"))
    s = json.loads(summary_path.read_text())
    for ep in s["endpoints"].values():
        ep["latency_ms"] = {k: v * 3 for k, v in ep["latency_ms"].items()}
    summary_path.write_text(json.dumps(s))
    cmp = bench("compare", run_a, slow)
    assert cmp.returncode == EXIT_THRESHOLD, cmp.stdout + cmp.stderr
    assert "REGRESSION" in cmp.stdout and "FAIL" in cmp.stdout


def test_dead_host_fails_fast_in_one_line(tmp_path: Path) -> None:
    t0 = time.monotonic()
    p = bench("run", "S3a", "--host", f"http://127.0.0.1:{free_port()}", "--out", tmp_path)
    assert p.returncode == EXIT_ERRORS
    assert time.monotonic() - t0 < 30
    out = p.stdout + p.stderr
    assert "Traceback" not in out and "nothing answers at" in out
    warm = run(ROOT / "load_tests" / "scripts" / "warmup.sh", "--host",
               f"http://127.0.0.1:{free_port()}")  # fmt: skip
    assert warm.returncode == 1 and "Traceback" not in warm.stderr
    assert warm.stderr.count("\n") == 1, warm.stderr


def test_version_and_a_list_that_fits_80_columns() -> None:
    v = bench("--version")
    assert v.returncode == 0 and re.match(r"pushpop-bench \d+\.\d+", v.stdout)
    listing = subprocess.run(
        [str(BIN / "pushpop-bench"), "list"], capture_output=True, text=True, cwd=ROOT,
        env={**os.environ, "COLUMNS": "80"},
    )  # fmt: skip
    assert listing.returncode == 0
    assert max(len(line) for line in listing.stdout.splitlines()) <= 80
    assert "S3a" in listing.stdout and "MixedWorkloadUser" in listing.stdout
