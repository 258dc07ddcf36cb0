"""Abort on fail: stop a run early when a threshold marked ``abort`` is already failing.

Why: a 30-minute soak whose server died after two minutes should not take 28 more to
say so (k6's ``abortOnFail``). The orchestrator watches the files the load generator
flushes every second (``counters.csv``, ``histograms.hlog``); once ``grace_s`` of load
has passed, it judges each marked threshold over the trailing ``window_s`` of complete
buckets, and the first one over its limit stops the load generator. ``abort.json``
says when and why; the verdict carries it as a problem with its own exit code (5).

Metrics that can abort: ``error_rate`` (failed / requests), ``dropped_ratio``
(dropped / scheduled arrivals) and ``p50_ms`` / ``p95_ms`` / ``p99_ms`` (from-schedule
latency over every endpoint that is not exempt, e.g. long polls).
"""

from __future__ import annotations

import contextlib
import csv
import json
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from hdrh.histogram import HdrHistogram

from load_tests.evaluation.thresholds import Thresholds
from load_tests.measure.histograms import new_histogram
from load_tests.utils.metrics import LATENCY, split_tag

ABORTABLE = ("error_rate", "dropped_ratio", "p50_ms", "p95_ms", "p99_ms")
TICK_S = 0.5
MIN_REQUESTS = 5  # a window with fewer completed requests says nothing about error rate


@dataclass(frozen=True)
class Abort:
    """Why a run was stopped: what ``abort.json`` holds."""

    threshold: str
    value: float
    limit: float
    at_s: float  # seconds into the load
    at: float  # unix time
    window_s: float
    grace_s: float

    @property
    def why(self) -> str:
        pct = self.threshold.endswith(("rate", "ratio"))
        fmt = (lambda v: f"{v:.2%}") if pct else (lambda v: f"{v:,.3f} ms")
        return (
            f"aborted {self.at_s:.1f} s into the load: {self.threshold} {fmt(self.value)} "
            f"over the last {self.window_s:g} s > abort limit {fmt(self.limit)} "
            f"(grace {self.grace_s:g} s)"
        )

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "why": self.why}


class _Tail:
    """New complete lines of a file that another process appends to."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._pos = 0
        self._partial = ""

    def lines(self) -> list[str]:
        if not self.path.exists():
            return []
        with open(self.path, encoding="utf-8") as f:
            f.seek(self._pos)
            chunk = f.read()
            self._pos = f.tell()
        text = self._partial + chunk
        *done, self._partial = text.split("\n")
        return done


class LiveWindow:
    """Per-bucket counters and latency histograms read as the load generator writes them."""

    def __init__(self, run_dir: Path, exempt: tuple[str, ...] | list[str] = ()) -> None:
        self._counters = _Tail(run_dir / "counters.csv")
        self._hlog = _Tail(run_dir / "histograms.hlog")
        self.exempt = set(exempt)
        self.counts: dict[float, dict[str, float]] = {}
        self.latency: dict[float, HdrHistogram] = {}

    def refresh(self) -> None:
        for row in csv.reader(self._counters.lines()):
            if len(row) == 5 and row[0] != "bucket_start":
                per = self.counts.setdefault(round(float(row[0]), 3), {})
                per[row[3]] = per.get(row[3], 0.0) + float(row[4])
        for line in self._hlog.lines():
            if not line.startswith("Tag="):
                continue
            tag_, start, _width, _max, enc = line[4:].split(",", 4)
            kind, name = split_tag(tag_)
            if kind != LATENCY or name in self.exempt:
                continue
            key = round(float(start), 3)
            if key not in self.latency:
                self.latency[key] = new_histogram()
            self.latency[key].decode_and_add(enc)

    def total(self, name: str, since: float, until: float) -> float:
        """Counter ``name`` summed over the buckets starting in ``[since, until)``."""
        return sum(v.get(name, 0.0) for s, v in self.counts.items() if since <= s < until)

    def value(self, metric: str, since: float, until: float) -> float | None:
        """``metric`` over the buckets starting in ``[since, until)``; None = no data."""
        if metric == "error_rate":
            requests = self.total("requests", since, until)
            failures = self.total("failures", since, until)
            return failures / requests if requests >= MIN_REQUESTS else None
        if metric == "dropped_ratio":
            scheduled = self.total("scheduled", since, until)
            return self.total("dropped", since, until) / scheduled if scheduled else None
        hist = new_histogram()
        for s, h in self.latency.items():
            if since <= s < until:
                hist.add(h)
        if not hist.get_total_count():
            return None
        pct = float(metric[1:].removesuffix("_ms"))
        return hist.get_value_at_percentile(pct) / 1000.0


class AbortWatch(threading.Thread):
    """Watch one variant's run; call ``stop`` (the load generator's end) on the first
    failing abort threshold, after writing ``abort.json``."""

    def __init__(
        self,
        run_dir: Path,
        thresholds: Thresholds,
        metrics: list[str],
        grace_s: float,
        stop: Callable[[], None],
        bucket_s: float = 1.0,
    ) -> None:
        super().__init__(name="abort-watch", daemon=True)
        unknown = set(metrics) - set(ABORTABLE)
        if unknown:
            raise ValueError(f"cannot abort on {sorted(unknown)}; abortable: {list(ABORTABLE)}")
        self.run_dir = run_dir
        self.limits = {m: getattr(thresholds, m) for m in metrics if getattr(thresholds, m)}
        self.grace_s = grace_s
        self.window_s = max(2.0, min(grace_s, 5.0))
        self.bucket_s = bucket_s
        self.live = LiveWindow(run_dir, thresholds.latency_exempt)
        self._stop_load = stop
        self.finished = threading.Event()
        self.abort: Abort | None = None

    def _started_at(self) -> float | None:
        try:
            return float(json.loads((self.run_dir / "started.json").read_text())["started_at"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def run(self) -> None:
        started = None
        while not self.finished.wait(TICK_S) and self.limits:
            started = started or self._started_at()
            if started is None or time.time() < started + self.grace_s:
                continue
            self.live.refresh()
            # whole buckets only: the last one still open is left out
            until = (time.time() // self.bucket_s) * self.bucket_s - self.bucket_s
            since = max(started, until - self.window_s)
            for metric, limit in self.limits.items():
                value = self.live.value(metric, since, until)
                if value is not None and value > limit:
                    now = time.time()
                    self.abort = Abort(metric, value, limit, round(now - started, 2), now,
                                       self.window_s, self.grace_s)  # fmt: skip
                    (self.run_dir / "abort.json").write_text(json.dumps(self.abort.to_dict()))
                    self._stop_load()
                    return

    def close(self) -> None:
        self.finished.set()
        self.join(timeout=5)


def stop_tree(pid: int, timeout: float = 5.0) -> None:
    """Terminate a process and its children (a distributed run's Locust workers)."""
    import psutil

    try:
        parent = psutil.Process(pid)
        procs = [*parent.children(recursive=True), parent]
    except psutil.Error:
        return
    for p in procs:
        with contextlib.suppress(psutil.Error):
            p.terminate()
    _, alive = psutil.wait_procs(procs, timeout=timeout)
    for p in alive:
        with contextlib.suppress(psutil.Error):
            p.kill()
