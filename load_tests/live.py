"""Live output: the running variant's load-generator metrics on a Prometheus endpoint.

Why: a long run should be watchable while it runs (k6's and Locust's users rely on it),
from the same numbers the verdict will use. The orchestrator tails the files the load
generator flushes every second (``counters.csv``, ``histograms.hlog``, ``depth.csv``;
the same reader as abort on fail, :class:`~load_tests.abort.LiveWindow`) and serves,
per variant, over the last few complete seconds: requests/s, error rate, latency
percentiles (from the scheduled send, long polls left out), and the backlog (the
latest sampled depth of the run's queues, dead-letter queues apart).

    pushpop-bench run S8a --duration 10m --live-port 9646   # then GET :9646/metrics
"""

from __future__ import annotations

import csv
import json
import threading
import time
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Gauge, start_http_server

from load_tests.abort import LiveWindow
from load_tests.evaluation.thresholds import Thresholds

WINDOW_S = 5.0
QUANTILES = (("0.5", "p50_ms"), ("0.95", "p95_ms"), ("0.99", "p99_ms"))
DEADLETTER_SUFFIX = "-deadletter"


def backlog(run_dir: Path) -> tuple[float, float] | None:
    """Waiting items over the work queues and over the dead-letter queues, from the
    latest sample of each queue in ``depth.csv``."""
    path = run_dir / "depth.csv"
    if not path.exists():
        return None
    latest: dict[str, float] = {}
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if row.get("depth") not in (None, ""):
                latest[row["queue"]] = float(row["depth"])
    work = sum(v for q, v in latest.items() if not q.endswith(DEADLETTER_SUFFIX))
    return work, sum(v for q, v in latest.items() if q.endswith(DEADLETTER_SUFFIX))


class LiveExporter:
    """One HTTP endpoint for a whole ``pushpop-bench`` invocation; :meth:`watch` points it
    at the variant that runs now."""

    def __init__(self, port: int, addr: str = "127.0.0.1", interval: float = 1.0) -> None:
        self.registry = CollectorRegistry()
        label = ["variant"]
        self.rps = Gauge("pushpop_bench_requests_per_second", "requests completed per second",
                         label, registry=self.registry)  # fmt: skip
        self.errors = Gauge("pushpop_bench_error_rate", "failed / completed requests",
                            label, registry=self.registry)  # fmt: skip
        self.latency = Gauge("pushpop_bench_latency_ms", "latency from the scheduled send",
                             [*label, "quantile"], registry=self.registry)  # fmt: skip
        self.depth = Gauge("pushpop_bench_backlog_items", "items waiting in the run's queues",
                           [*label, "queues"], registry=self.registry)  # fmt: skip
        self.elapsed = Gauge("pushpop_bench_elapsed_seconds", "seconds since the load started",
                             label, registry=self.registry)  # fmt: skip
        self.window_s = WINDOW_S
        self.interval = interval
        self._server, self._thread = start_http_server(port, addr, registry=self.registry)
        self.port = self._server.server_port
        self._lock = threading.Lock()
        self._current: tuple[str, Path, LiveWindow, float] | None = None
        self._stop = threading.Event()
        self._loop = threading.Thread(target=self._run, name="live-exporter", daemon=True)
        self._loop.start()

    def watch(
        self, variant: str, run_dir: Path, thresholds: Thresholds, bucket_s: float = 1.0
    ) -> None:
        """From now on, serve the metrics of ``variant`` (its files are in ``run_dir``)."""
        live = LiveWindow(run_dir, thresholds.latency_exempt)
        with self._lock:
            self._current = (variant, run_dir, live, bucket_s)

    def _started_at(self, run_dir: Path) -> float | None:
        try:
            return float(json.loads((run_dir / "started.json").read_text())["started_at"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def update(self) -> dict[str, Any] | None:
        """Read what the load generator flushed and set the gauges; what was set."""
        with self._lock:
            current = self._current
        if current is None:
            return None
        variant, run_dir, live, bucket = current
        started = self._started_at(run_dir)
        if started is None:
            return None
        live.refresh()
        until = time.time() // bucket * bucket  # the open bucket is left out
        since = max(started, until - self.window_s)
        values: dict[str, Any] = {"elapsed": time.time() - started}
        span = until - since
        if span > 0:
            values["rps"] = live.total("requests", since, until) / span
        values["error_rate"] = live.value("error_rate", since, until)
        for _, metric in QUANTILES:
            values[metric] = live.value(metric, since, until)
        values["backlog"] = backlog(run_dir)
        self.elapsed.labels(variant).set(values["elapsed"])
        if "rps" in values:
            self.rps.labels(variant).set(values["rps"])
        if values["error_rate"] is not None:
            self.errors.labels(variant).set(values["error_rate"])
        for q, metric in QUANTILES:
            if values[metric] is not None:
                self.latency.labels(variant, q).set(values[metric])
        if values["backlog"] is not None:
            self.depth.labels(variant, "work").set(values["backlog"][0])
            self.depth.labels(variant, "dead-letter").set(values["backlog"][1])
        return values

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.update()
            except Exception:  # a half-written line: the next tick reads it whole
                continue

    def close(self) -> None:
        self._stop.set()
        self._loop.join(timeout=5)
        self._server.shutdown()
        self._server.server_close()
