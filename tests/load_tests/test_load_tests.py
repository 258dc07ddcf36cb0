"""The load-testing package against a real server and a real PostgreSQL.

Budget: about four minutes on two cores. One PostgreSQL and one ``pushpop serve`` are
shared by the whole module; every scenario runs for a few seconds with the burst shapes
shrunk (time scale 0.03). Locust itself only ever runs in child processes: importing it
here would monkey-patch this pytest process with gevent.
"""

from __future__ import annotations

import base64
import csv
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from load_tests import catalog
from load_tests.analysis.loading import load_run
from load_tests.analysis.measures import find_knee, littles_law, recovery_time
from load_tests.evaluation import codes as checks
from load_tests.evaluation.baseline import Baseline
from load_tests.evaluation.results import EndpointStats, RunResult
from load_tests.evaluation.verdict import evaluate
from load_tests.harness import Harness
from load_tests.measure.histograms import new_histogram, record_us
from load_tests.runner import run_many
from load_tests.schedules import Constant, Sine, Spike, Square, Steps, schedule_from_spec
from load_tests.settings import RunSettings
from load_tests.summary import RunSummary, StepResult
from load_tests.utils import queue_prepopulator as prep
from load_tests.utils.metrics import (
    HistogramSink,
    Ledger,
    Recorder,
    Remaining,
    read_histogram_log,
)
from supervise.pgserver import PostgresServer
from supervise.server import ServerProcess

pytestmark = pytest.mark.postgres

QUICK = RunSettings(duration=3.0, time_scale=0.03, bucket=0.5, report=False, label="t")


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    """One PostgreSQL and one server for the module; S7d restarts this PostgreSQL."""
    tmp = tmp_path_factory.mktemp("bench")
    pg = PostgresServer()
    pg.start()
    server = ServerProcess(store="postgres", database_url=pg.url, log_path=tmp / "server.log")
    try:
        server.start()
        yield Harness(
            base_url=server.url,
            store="postgres",
            runtime="embedded",
            database_url=pg.url,
            pg=pg,
            server=server,
        )
    finally:
        server.stop()
        pg.cleanup()


@pytest.fixture(scope="module")
def all_runs(bench: Harness, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Every public scenario, a few seconds each, against the shared server."""
    root = tmp_path_factory.mktemp("all")
    variants = catalog.resolve("all")
    # a relative results folder from a working directory outside the repository, as
    # `pushpop-bench run-all` gets by default (the load generator runs from the repo root)
    cwd = os.getcwd()
    os.chdir(root.parent)
    try:
        evaluation, outcomes = run_many(
            variants, bench, Path(root.name), QUICK, title="test run-all"
        )
    finally:
        os.chdir(cwd)
    return {"root": root, "code": evaluation.code, "by_id": {o.variant.id: o for o in outcomes}}


def summary_of(all_runs: dict[str, Any], vid: str) -> dict[str, Any]:
    """The summary as ``summary.json`` holds it: the on-disk format is what users read."""
    outcome = all_runs["by_id"][vid]
    assert outcome.summary is not None, f"{vid} left no summary: {outcome.verdict.reasons}"
    return outcome.summary.to_json()


# --------------------------------------------------------------------------- every scenario


@pytest.mark.parametrize(
    "vid", [v.id for v in catalog.VARIANTS.values() if not v.hidden and not v.extra]
)
def test_scenario_runs_headless_and_its_results_parse(all_runs: dict[str, Any], vid: str) -> None:
    """Each variant ran, sent what its schedule asked, and left a clean ledger."""
    outcome = all_runs["by_id"][vid]
    if vid == "S7e":  # embedded runtime: must say why it did not run, not fail
        assert outcome.verdict.status == "SKIP"
        assert "S7e needs --runtime dapr" in outcome.verdict.reasons[0]
        return
    s = summary_of(all_runs, vid)
    run_dir = Path(outcome.dir)
    for name in ("locust_stats.csv", "histograms.hlog", "counters.csv", "ledger.json"):
        assert (run_dir / name).stat().st_size > 0, name
    thr = s["throughput"]
    assert thr["requests"] > 0 and s["endpoints"]
    # open model: every scheduled arrival was sent (none dropped) and the count matches
    # the schedule's integral to within the schedule's granularity
    assert thr["dropped"] == 0
    assert abs(thr["scheduled"] - thr["expected_arrivals"]) <= max(
        3, 0.05 * thr["expected_arrivals"]
    )
    assert s["ledger"]["status"] == "ok", s["ledger"]["problems"]
    assert s["ledger"]["totals"]["lost"] == 0 and s["ledger"]["totals"]["duplicates"] == 0
    assert s["errors"]["unexpected"] == 0, s["errors"]["by_kind"]
    for name, ep in s["endpoints"].items():
        assert ep["latency_ms"]["p50"] > 0, name
        # from-schedule latency can only be longer than the service's own time
        assert ep["latency_ms"]["p99"] >= ep["service_ms"]["p99"] * 0.99, name


def test_validation_scenarios_count_only_exact_rejections(all_runs: dict[str, Any]) -> None:
    for vid, name in (
        ("S7a", "push:invalid-item"),
        ("S7b", "push:negative-priority"),
        ("S7c", "pop:depth-over-100"),
    ):
        ep = summary_of(all_runs, vid)["endpoints"][name]
        assert ep["requests"] > 0 and ep["failures"] == 0, (vid, ep)


def test_pop_only_scenarios_were_prepopulated_and_dry_runs_are_reported(
    all_runs: dict[str, Any],
) -> None:
    for vid in ("S2a", "S2b", "S2c"):
        pre = summary_of(all_runs, vid)["prepopulated"]
        assert [p["items_per_queue"] for p in pre.values()] == [10_000]
        assert all(p["verified"] for p in pre.values())
    # ledger saw every prepopulated id: pushed includes them
    assert summary_of(all_runs, "S2a")["ledger"]["totals"]["pushed"] >= 10_000


def test_depth_scenarios_hold_their_depth(all_runs: dict[str, Any]) -> None:
    """S5 refills what it pops, so the sampled depth stays at the prepopulated level."""
    for vid, depth in (("S5b", 1_000), ("S5c", 10_000), ("S5d", 100_000)):
        d = summary_of(all_runs, vid)["depth"]
        assert d["samples"] > 0
        assert depth - 20 <= d["mean"] <= depth + 20, (vid, d)


def test_step_ramps_report_a_knee_and_bursts_a_recovery(all_runs: dict[str, Any]) -> None:
    for vid in ("S1a", "S2a"):
        knee = summary_of(all_runs, vid)["knee"]
        assert knee is not None and len(knee["steps"]) >= 2
        assert knee["steps"][0]["rate"] == 10 and knee["steps"][-1]["rate"] == 100
    for vid in ("S6a", "S6b", "S6c"):
        bursts = summary_of(all_runs, vid)["bursts"]
        assert bursts["baseline_p99_ms"] is not None
        assert len(bursts["bursts"]) == len(catalog.VARIANTS[vid].build_schedule(None, 1).bursts())


def test_postgres_restart_is_survived_with_nothing_lost(all_runs: dict[str, Any]) -> None:
    s = summary_of(all_runs, "S7d")
    fault = s["fault"]
    assert fault and not fault.get("error") and not fault.get("skipped"), fault
    ev = fault["events"]
    assert ev["fault_start"] < ev["component_down"] < ev["back"] <= ev["service_ok"]
    assert 0 <= fault["recovery_s"] < 30
    # the outage outlasted the service's 5 s store deadline, so some requests got 503s,
    # and only those (anything else would be an unexpected error)
    assert s["errors"]["expected"] > 0, s["errors"]
    assert set(s["errors"]["by_kind"]) == {"503 STORE_UNAVAILABLE"}
    assert s["ledger"]["status"] == "ok"


def test_abandoned_locks_give_their_items_back(all_runs: dict[str, Any]) -> None:
    totals = summary_of(all_runs, "S7f")["ledger"]["totals"]
    assert totals["abandoned"] > 0
    assert totals["abandoned_not_returned"] == 0


def test_index_lists_every_variant_and_an_overall_verdict(all_runs: dict[str, Any]) -> None:
    root = all_runs["root"]
    results = json.loads((root / "results.json").read_text())
    assert {r["variant"] for r in results["variants"]} == set(all_runs["by_id"])
    last = (root / "verdict.txt").read_text().strip().splitlines()[-1]
    assert last.startswith("VERDICT: ") and f"exit code {all_runs['code']}" in last


# --------------------------------------------------------------------------- analysis


def test_analysis_matches_the_raw_histograms_of_a_real_locust_run(
    all_runs: dict[str, Any],
) -> None:
    """Percentiles in summary.json are exact: recomputed here from histograms.hlog, and the
    request counts agree with Locust's own statistics CSV."""
    run_dir = Path(all_runs["by_id"]["S3a"].dir)
    s = summary_of(all_runs, "S3a")
    merged: dict[str, Any] = {}
    for iv in read_histogram_log(run_dir / "histograms.hlog"):
        merged.setdefault(iv.tag, new_histogram()).add(iv.hist)
    locust_rows = {
        r.split(",")[1]: r.split(",")
        for r in (run_dir / "locust_stats.csv").read_text().splitlines()[1:]
    }
    for name, ep in s["endpoints"].items():
        h = merged[f"latency:{name}"]
        assert ep["requests"] == h.get_total_count() == int(locust_rows[name][2])
        assert ep["latency_ms"]["p99"] == pytest.approx(
            h.get_value_at_percentile(99) / 1000, abs=1e-3
        )
        # Locust rounds to whole ms; ours keeps microseconds
        assert ep["latency_ms"]["p50"] != int(ep["latency_ms"]["p50"])
    data = load_run(run_dir)
    assert data.series.total_counter("requests") == s["throughput"]["requests"]
    assert s["time_in_queue_ms"]["count"] == s["throughput"]["items_popped"]
    assert s["resources"]["server"]["rss_max_mb"] > 10  # the monitor found the server


def test_report_is_self_contained_html_with_readable_plots(all_runs: dict[str, Any]) -> None:
    from load_tests.report.run_page import write_run_report

    run_dir = Path(all_runs["by_id"]["S6c"].dir)
    report = write_run_report(run_dir, RunSummary.from_json(summary_of(all_runs, "S6c")))
    html = report.read_text()
    images = html.count("src='data:image/png;base64,")
    assert images >= 5
    for png in (run_dir / "plots").glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    first = html.split("src='data:image/png;base64,")[1].split("'")[0]
    assert base64.b64decode(first)[:4] == b"\x89PNG"
    assert "Bursts and recovery" in html and "Ledger" in html


def report_rows(run_dir: Path) -> dict[tuple[str, str], int]:
    """Requests per (method, name) as ``locust_report.html`` shows them (its template data)."""
    page = (run_dir / "locust_report.html").read_text()
    marker = "window.templateArgs = "
    args, _ = json.JSONDecoder().raw_decode(page, page.index(marker) + len(marker))
    return {(r["method"], r["name"]): r["num_requests"] for r in args["requests_statistics"]}


def csv_rows(run_dir: Path) -> dict[tuple[str, str], int]:
    with (run_dir / "locust_stats.csv").open() as f:
        return {(r["Type"], r["Name"]): int(r["Request Count"]) for r in csv.DictReader(f)}


def test_locust_report_rows_equal_the_csv_counts(all_runs: dict[str, Any]) -> None:
    """locust_report.html showed every endpoint row as 0 requests (the stats JSON, written
    first, had reset them) while the CSV beside it had the counts: they must agree."""
    outcome = all_runs["by_id"]["S3a"]
    rows = report_rows(outcome.dir)
    assert rows == csv_rows(outcome.dir)
    push, pop = rows[("POST", "push")], rows[("POST", "pop")]
    assert push > 0 and pop > 0 and rows[("", "Aggregated")] == push + pop
    stats = json.loads((outcome.dir / "locust_stats.json").read_text())
    assert {(e["method"], e["name"]): e["num_requests"] for e in stats} == {
        ("POST", "push"): push,
        ("POST", "pop"): pop,
    }


def test_distributed_workers_merge_histograms_exactly(bench: Harness, tmp_path: Path) -> None:
    """With two Locust workers, the master's HDR counts equal Locust's total request count."""
    settings = RunSettings(duration=3.0, bucket=0.5, workers=2, report=False, label="tw")
    evaluation, [outcome] = run_many(
        [catalog.VARIANTS["S3a"]], bench, tmp_path, settings, title="w"
    )
    assert outcome.summary is not None
    s = outcome.summary.to_json()
    assert evaluation.code in (checks.EXIT_OK, checks.EXIT_THRESHOLD)
    stats = json.loads((outcome.dir / "locust_stats.json").read_text())
    locust_total = sum(e["num_requests"] for e in stats)
    assert sum(ep["requests"] for ep in s["endpoints"].values()) == locust_total > 100
    assert report_rows(outcome.dir) == csv_rows(outcome.dir)
    assert {b for b in (outcome.dir / "counters.csv").read_text().split() if "worker-" in b}
    assert s["ledger"]["status"] == "ok"


# --------------------------------------------------------------------------- thresholds


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "load_tests.cli", *args], capture_output=True, text=True
    )


def test_threshold_check_passes_and_fails_with_distinct_codes(
    all_runs: dict[str, Any], tmp_path: Path
) -> None:
    run_dir = all_runs["by_id"]["S3a"].dir
    loose = tmp_path / "loose.json"
    loose.write_text(json.dumps({"default": {"p50_ms": 10_000, "p95_ms": None, "p99_ms": None}}))
    strict = tmp_path / "strict.json"
    strict.write_text(json.dumps({"variants": {"S3a": {"p50_ms": 0.001}}}))
    ok = _cli("check", str(run_dir), "--thresholds", str(loose))
    assert ok.returncode == checks.EXIT_OK, ok.stdout + ok.stderr
    assert "VERDICT S3a: PASS" in ok.stdout
    bad = _cli("check", str(run_dir), "--thresholds", str(strict))
    assert bad.returncode == checks.EXIT_THRESHOLD, bad.stdout + bad.stderr
    assert "p50" in bad.stdout and "> limit 0.001 ms" in bad.stdout
    # an error-laden run exits 1, not 3: different people look at those
    broken = tmp_path / "broken"
    shutil.copytree(run_dir, broken)
    s = json.loads((broken / "summary.json").read_text())
    s["errors"].update(unexpected=50, unexpected_rate=0.5)
    (broken / "summary.json").write_text(json.dumps(s))
    err = _cli("check", str(broken), "--thresholds", str(loose))
    assert err.returncode == checks.EXIT_ERRORS, err.stdout


def test_baseline_regression_uses_medians(all_runs: dict[str, Any]) -> None:
    s = summary_of(all_runs, "S3a")
    base = Baseline.from_runs({"S3a": [RunResult.from_summary(s)] * 3})

    def slower(factor: float) -> RunResult:
        c = json.loads(json.dumps(s))
        for ep in c["endpoints"].values():
            ep["latency_ms"] = {k: v * factor for k, v in ep["latency_ms"].items()}
        return RunResult.from_summary(c)

    same = RunResult.from_summary(s)
    # one slow outlier among three runs: the median is unchanged, no regression
    ok = evaluate({"S3a": [same, same, slower(10)]}, baseline=base, margin=0.15)
    assert not ok.of("S3a").regressions
    bad = evaluate({"S3a": [slower(3), slower(3), same]}, baseline=base, margin=0.15)
    assert {c.metric.split()[-1] for c in bad.of("S3a").regressions} >= {"p50"}
    assert bad.code == checks.EXIT_THRESHOLD and bad.status == "FAIL"


def test_regression_must_leave_the_noise_band() -> None:
    """+8 % against repeats that spread +-1 % is a regression; against +-20 % it is noise."""

    def run(p99: float) -> RunResult:
        ep = EndpointStats("pop", 1000, 0, 1.0, 2.0, p99, None)
        return RunResult("X", "", {"pop": ep}, requests_per_s=50.0)

    quiet = Baseline.from_runs({"X": [run(10.0), run(10.1), run(9.9)]})
    noisy = Baseline.from_runs({"X": [run(8.0), run(10.0), run(12.0)]})
    now = [run(10.8), run(10.8), run(10.8)]
    [c] = [c for c in evaluate({"X": now}, baseline=quiet, margin=0.05).of("X").checks
           if c.metric == "pop p99"]  # fmt: skip
    assert c.regression and c.outside_noise and c.delta == pytest.approx(0.08)
    [c] = [c for c in evaluate({"X": now}, baseline=noisy, margin=0.05).of("X").checks
           if c.metric == "pop p99"]  # fmt: skip
    assert not c.regression and c.outside_noise is False


def test_evaluate_exit_codes_on_synthetic_summaries() -> None:
    base = {
        "variant": "X",
        "endpoints": {"push": {"requests": 100, "latency_ms": {"p50": 1.0, "p99": 2.0}}},
        "throughput": {"requests_per_s": 10, "dropped_ratio": 0, "completion_ratio": 1.0},
        "errors": {"unexpected": 0, "unexpected_rate": 0.0, "by_kind": {}},
        "ledger": {"status": "ok"},
    }

    def judge(summary: dict[str, Any]) -> Any:
        return evaluate({"X": [RunResult.from_summary(summary)]}).of("X")

    assert judge(base).code == checks.EXIT_OK
    lost = {**base, "ledger": {"status": "FAIL", "problems": ["q: lost 1"]}}
    assert judge(lost).code == checks.EXIT_LEDGER
    slow = json.loads(json.dumps(base))
    slow["endpoints"]["push"]["latency_ms"]["p99"] = 500.0
    v = judge(slow)
    assert v.code == checks.EXIT_THRESHOLD and "push p99" in v.reasons[0]
    assert "limit 100.000 ms" in v.reasons[0]  # the verdict says what it checked against
    skipped = {**base, "fault": {"skipped": "S7e needs --runtime dapr"}}
    assert judge(skipped).status == "SKIP"


# --------------------------------------------------------------------------- prepopulator


def test_prepopulator_loads_exact_depths(bench: Harness) -> None:
    """2,345 items over three priorities in batches of 1000 (two full, one partial)."""
    queues = ("prep-exact-a", "prep-exact-b", "prep-exact-c")
    with httpx.Client(base_url=bench.base_url) as c:
        c.post(f"/queue/{queues[0]}/push", json={"item": {"before": 1}, "priority": 7})
        plan = prep.Plan(queues=queues, items_per_queue=2345, priorities=(0, 1, 2))
        result = prep.run(bench.base_url, plan, progress=False)
        assert result.ok, result.to_dict()
        for q in queues:
            stats = c.get(f"/queue/{q}").json()
            pre = 1 if q == queues[0] else 0
            assert stats["depth"] == 2345 + pre
            assert stats["by_priority"] == {
                "0": 782, "1": 782, "2": 781, **({"7": 1} if pre else {})
            }  # fmt: skip
            load = result.loads[q]
            assert len(load.ids) == len(set(load.ids)) == 2345
            c.delete(f"/queue/{q}")
    # the verification really compares: a queue that came out short is reported
    short = prep.QueueLoad(queue="x", pushed=10, depth_after=9, expected_by_priority={"0": 10})
    assert not short.ok


def test_prepopulator_reaches_100k_items_quickly(bench: Harness) -> None:
    plan = prep.Plan(queues=("prep-100k",), items_per_queue=100_000, priorities=(0, 1, 2))
    result = prep.run(bench.base_url, plan, progress=False, keep_ids=False)
    httpx.delete(f"{bench.base_url}/queue/prep-100k", timeout=60)
    assert result.ok
    assert result.seconds <= 10.0, f"{result.total} items took {result.seconds:.1f}s"


# --------------------------------------------------------------------------- pure parts


def test_schedules() -> None:
    steps = Steps(start=10, end=100, count=10, length_s=100)
    assert [r for _, _, r in steps.steps()][:3] == [10, 20, 30]
    assert steps.rate_at(0) == 10 and steps.rate_at(99.9) == 100 and steps.rate_at(100) is None
    sine = Sine(low=10, high=200, period_s=300)
    assert sine.rate_at(0) == pytest.approx(10) and sine.rate_at(150) == pytest.approx(200)
    assert sine.bursts() == [(75, 225)]
    sq = Square(high=200, low=10, high_s=30, low_s=30, cycles=2)
    assert (sq.rate_at(10), sq.rate_at(40), sq.rate_at(70), sq.duration) == (10, 200, 10, 150)
    spike = Spike(base=50, spike=500, base_s=240, spike_s=60, tail_s=60)
    quick = spike.scaled(0.1)
    assert quick.duration == pytest.approx(36) and quick.rate_at(25) == 500
    assert quick.bursts() == [(pytest.approx(24), pytest.approx(30))]
    for s in (steps, sine, sq, spike, Constant(rate=5, length_s=3)):
        assert schedule_from_spec(s.to_spec()) == s
    assert Constant(rate=50, length_s=10).mean_rate() == pytest.approx(50)


def test_knee_is_the_last_sustained_step() -> None:
    def step(rate: float, achieved: float, p99: float) -> StepResult:
        return StepResult(rate, achieved, p99, 0.0, 0, 0.0)

    knee = find_knee([step(10, 10, 3), step(20, 20, 4), step(30, 24, 300), step(40, 40, 5)])
    assert knee.knee_rps == 20 and "at 30" in knee.reason
    assert find_knee([step(10, 10, 3), step(20, 20, 4)]).knee_rps == 20
    assert find_knee([step(10, 5, 3)]).knee_rps is None


def test_recovery_time() -> None:
    starts = [float(i) for i in range(10)]
    p99: list[float | None] = [5, 5, 50, 80, 60, 30, 9, 6, 5, 5]
    # burst ends at t=4; the line is max(2*5, 5+5) = 10 ms; p99 <= 10 from t=6 on
    assert recovery_time(starts, p99, 4.0, 5.0, width=1.0) == 2.0
    assert recovery_time(starts, [5.0] * 10, 4.0, 5.0, width=1.0) == 0.0
    assert recovery_time(starts, [50.0] * 10, 4.0, 5.0, width=1.0) is None


def test_littles_law() -> None:
    r = littles_law(mean_depth=10, arrival_per_s=50, mean_wait_s=0.2)
    assert r["lambda_W"] == 10 and r["ratio"] == 1


def test_worker_buckets_merge_into_exact_percentiles() -> None:
    """Two 'workers' record halves of the same data; the sink's p99 equals the whole's."""
    values = [(i * 37) % 5000 + 100 for i in range(2000)]
    whole = new_histogram()
    for v in values:
        record_us(whole, v)
    sink = HistogramSink()
    sink.open(None)
    for w, part in enumerate((values[::2], values[1::2])):
        rec = Recorder(bucket_seconds=1.0, source=f"worker-{w}", clock=lambda: 1000.0)
        for i, v in enumerate(part):
            rec.record("latency:push", v, now=1000.0 + i % 3)
            rec.count("requests", 1, now=1000.0 + i % 3)
        sink.add(rec.drain(final=True, now=1003.0))
    merged = sink.cumulative["latency:push"]
    assert merged.get_total_count() == len(values) == sink.counters["requests"]
    for p in (50, 99, 99.9):
        assert merged.get_value_at_percentile(p) == whole.get_value_at_percentile(p)


def test_ledger_finds_loss_duplicates_and_unreturned_locks() -> None:
    ledger = Ledger()
    ledger.merge({"pushed": {"q": ["1", "2", "3", "4"]}, "final": {"q": ["1", "2", "2"]}})
    ledger.merge({"abandoned": {"q": ["4"]}})
    report = ledger.check({"q": Remaining(depth=0, ids=[])})
    row = report["queues"]["q"]
    assert report["status"] == "FAIL"
    assert (row["lost"], row["duplicates"], row["abandoned_not_returned"]) == (2, 1, 1)
    good = Ledger()
    good.merge({"pushed": {"q": ["1", "2"]}, "final": {"q": ["1"]}, "abandoned": {"q": ["2"]}})
    assert good.check({"q": Remaining(depth=1, ids=["2"])})["status"] == "ok"
    counted = Ledger()
    counted.merge({"pushed": {"q": [str(i) for i in range(10)]}, "final": {"q": ["0"]}})
    assert counted.check({"q": Remaining(depth=9)})["status"] == "ok"
    assert counted.check({"q": Remaining(depth=8)})["status"] == "FAIL"


def test_this_process_never_imported_locust() -> None:
    """gevent's monkey-patching would leak into every other test of the session."""
    assert "locust" not in sys.modules
    if "gevent.monkey" in sys.modules:
        import gevent.monkey

        assert not gevent.monkey.is_module_patched("socket")
