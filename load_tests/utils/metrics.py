"""Histograms per time bucket, the files they are written to, and the ledger.

Latencies are bucketed by completion time (latency over time, recovery) and merged
exactly across Locust workers: workers ship closed buckets encoded, the master adds them
up into ``histograms.hlog`` (HdrHistogram's interval log, tagged ``kind:name``, µs) and
``counters.csv``. Nothing here imports Locust, so the analysis reads with the same code.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from hdrh.histogram import HdrHistogram
from hdrh.log import HistogramLogReader

from load_tests.measure.histograms import new_histogram, record_us

# histogram kinds (the part of a tag before the colon)
LATENCY = "latency"  # from the intended send time (open model) -- what a client experiences
SERVICE = "service"  # from the actual send: what the server took, coordinated omission and all
QUEUE_TIME = "queue_time"  # pop time minus the item's enqueued_at
SEND_LAG = "send_lag"  # how late the generator sent versus its schedule (load-generator health)
END_TO_END = "end_to_end"  # S8 workers: push (scheduled send) -> acknowledge answered


def tag(kind: str, name: str) -> str:
    """``kind:name`` with characters the hlog format cannot carry replaced."""
    safe = "".join(c if c.isalnum() or c in "_-+.?=/:" else "_" for c in name)
    return f"{kind}:{safe}"


def split_tag(t: str) -> tuple[str, str]:
    kind, _, name = t.partition(":")
    return kind, name


# --------------------------------------------------------------------------- buckets


@dataclass
class Bucket:
    """One closed time bucket of one process: encoded histograms and counters."""

    start: float
    width: float
    source: str
    hists: dict[str, str] = field(default_factory=dict)  # tag -> HdrHistogram encoding
    counters: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": self.start,
            "width": self.width,
            "source": self.source,
            "hists": self.hists,
            "counters": self.counters,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Bucket:
        return cls(
            start=float(d["start"]),
            width=float(d["width"]),
            source=str(d["source"]),
            hists=dict(d.get("hists", {})),
            counters=dict(d.get("counters", {})),
        )


class Recorder:
    """Per-process recorder: the open bucket's histograms and counters, closed ones encoded.

    Buckets are aligned to absolute time (``floor(now / width) * width``) so that buckets
    from different workers line up and can be merged by start time. Only the open
    bucket holds live histograms (~190 KB each); closed ones are kept encoded (a few
    hundred bytes) until :meth:`drain` hands them on.
    """

    # counters that are maxima over the bucket rather than sums
    GAUGES = frozenset({"in_flight_max"})

    def __init__(
        self,
        bucket_seconds: float = 1.0,
        source: str = "local",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.bucket_seconds = bucket_seconds
        self.source = source
        self.clock = clock
        self._start: float | None = None
        self._hists: dict[str, HdrHistogram] = {}
        self._counters: Counter[str] = Counter()
        self._closed: list[Bucket] = []

    def configure(self, bucket_seconds: float, source: str) -> None:
        self.drain(final=True)
        self.bucket_seconds = bucket_seconds
        self.source = source

    def _roll(self, now: float) -> None:
        start = math.floor(now / self.bucket_seconds) * self.bucket_seconds
        if self._start is None:
            self._start = start
        elif start > self._start:
            self._close()
            self._start = start

    def _close(self) -> None:
        if self._start is None:
            return
        if self._hists or self._counters:
            self._closed.append(
                Bucket(
                    start=self._start,
                    width=self.bucket_seconds,
                    source=self.source,
                    hists={t: h.encode().decode("ascii") for t, h in self._hists.items()},
                    counters=dict(self._counters),
                )
            )
        self._hists = {}
        self._counters = Counter()

    def record(self, tag_: str, value_us: float, now: float | None = None) -> None:
        self._roll(self.clock() if now is None else now)
        hist = self._hists.get(tag_)
        if hist is None:
            hist = self._hists[tag_] = new_histogram()
        record_us(hist, value_us)

    def count(self, name: str, n: float = 1, now: float | None = None) -> None:
        self._roll(self.clock() if now is None else now)
        self._counters[name] += n

    def gauge_max(self, name: str, value: float, now: float | None = None) -> None:
        self._roll(self.clock() if now is None else now)
        if value > self._counters.get(name, float("-inf")):
            self._counters[name] = value

    def drain(self, final: bool = False, now: float | None = None) -> list[Bucket]:
        """Closed buckets since the last drain; with ``final`` also the open one."""
        self._roll(self.clock() if now is None else now)
        if final:
            self._close()
            self._start = None
        out, self._closed = self._closed, []
        return out


class HistogramSink:
    """The master's side: exact cumulative histograms plus the interval log on disk."""

    def __init__(self) -> None:
        self.cumulative: dict[str, HdrHistogram] = {}
        self.counters: Counter[str] = Counter()
        self._hlog: IO[str] | None = None
        self._counters_file: IO[str] | None = None
        self._counters_csv: Any = None

    def open(self, out_dir: Path | None) -> None:
        """Start a run: forget totals, and write files under ``out_dir`` if given."""
        self.close()
        self.cumulative = {}
        self.counters = Counter()
        if out_dir is None:
            return
        out_dir.mkdir(parents=True, exist_ok=True)
        self._hlog = open(out_dir / "histograms.hlog", "w", encoding="utf-8")
        now = time.time()
        iso = dt.datetime.fromtimestamp(now, dt.UTC).isoformat()
        self._hlog.write("#[Histogram log format version 1.2]\n")
        self._hlog.write(f"#[StartTime: {now:.3f} (seconds since epoch), {iso}]\n")
        self._hlog.write("#[BaseTime: 0.000 (seconds since epoch)]\n")
        self._hlog.write("#[values in microseconds; tags are kind:request-name]\n")
        self._hlog.write(
            '"StartTimestamp","Interval_Length","Interval_Max","Interval_Compressed_Histogram"\n'
        )
        self._counters_file = open(out_dir / "counters.csv", "w", newline="", encoding="utf-8")
        self._counters_csv = csv.writer(self._counters_file)
        self._counters_csv.writerow(
            ["bucket_start", "bucket_seconds", "source", "counter", "value"]
        )

    def add(self, buckets: Iterable[Bucket]) -> None:
        for b in buckets:
            for t, enc in b.hists.items():
                total = self.cumulative.get(t)
                if total is None:
                    total = self.cumulative[t] = new_histogram()
                total.decode_and_add(enc)
                if self._hlog:
                    interval_max_ms = HdrHistogram.decode(enc).get_max_value() / 1000.0
                    self._hlog.write(
                        f"Tag={t},{b.start:.3f},{b.width:.3f},{interval_max_ms:.3f},{enc}\n"
                    )
            for name, value in b.counters.items():
                if name in Recorder.GAUGES:
                    self.counters[name] = max(self.counters.get(name, 0), value)
                else:
                    self.counters[name] += value
                if self._counters_csv:
                    self._counters_csv.writerow([f"{b.start:.3f}", b.width, b.source, name, value])

    def flush(self) -> None:
        for f in (self._hlog, self._counters_file):
            if f:
                f.flush()

    def close(self) -> None:
        for f in (self._hlog, self._counters_file):
            if f:
                f.close()
        self._hlog = self._counters_file = None
        self._counters_csv = None


# --------------------------------------------------------------------------- reading back


@dataclass
class Interval:
    tag: str
    start: float
    width: float
    hist: HdrHistogram


def read_histogram_log(path: Path) -> Iterator[Interval]:
    """Every interval of a ``histograms.hlog`` (any order; one per tag, bucket and worker)."""
    reader = HistogramLogReader(str(path), new_histogram())
    try:
        while True:
            h = reader.get_next_interval_histogram(absolute=True)
            if h is None:
                return
            start = h.get_start_time_stamp() / 1000.0
            width = (h.get_end_time_stamp() - h.get_start_time_stamp()) / 1000.0
            yield Interval(h.get_tag() or "", start, width, h)
    finally:
        reader.close()


@dataclass
class BucketSeries:
    """All buckets of a run merged across workers: ``starts`` sorted, per tag and counter."""

    width: float
    starts: list[float]
    hists: dict[str, dict[float, HdrHistogram]]
    counters: dict[str, dict[float, float]]
    totals: dict[str, HdrHistogram]

    def counter(self, name: str) -> list[float]:
        values = self.counters.get(name, {})
        return [values.get(s, 0.0) for s in self.starts]

    def total_counter(self, name: str) -> float:
        values = self.counters.get(name, {})
        if name in Recorder.GAUGES:
            return max(values.values(), default=0.0)
        return sum(values.values())

    def percentile_series(self, t: str, pct: float) -> list[float | None]:
        """Per-bucket percentile in ms (``None`` where the bucket had no sample)."""
        per = self.hists.get(t, {})
        out: list[float | None] = []
        for s in self.starts:
            h = per.get(s)
            out.append(
                h.get_value_at_percentile(pct) / 1000.0 if h and h.get_total_count() else None
            )
        return out

    def merged(self, t: str, start: float, end: float) -> HdrHistogram:
        """One histogram of the buckets of ``t`` that start in ``[start, end)``."""
        out = new_histogram()
        for s, h in self.hists.get(t, {}).items():
            if start <= s < end:
                out.add(h)
        return out

    def tags(self, kind: str) -> list[str]:
        return sorted(t for t in self.totals if split_tag(t)[0] == kind)


def load_bucket_series(run_dir: Path) -> BucketSeries:
    """Merge ``histograms.hlog`` and ``counters.csv`` of a run (workers' buckets added)."""
    hists: dict[str, dict[float, HdrHistogram]] = defaultdict(dict)
    totals: dict[str, HdrHistogram] = {}
    width = 0.0
    starts: set[float] = set()
    hlog = run_dir / "histograms.hlog"
    if hlog.exists():
        for iv in read_histogram_log(hlog):
            key = round(iv.start, 3)
            width = width or round(iv.width, 3)
            starts.add(key)
            per = hists[iv.tag]
            if key in per:
                per[key].add(iv.hist)
            else:
                per[key] = iv.hist
            if iv.tag not in totals:
                totals[iv.tag] = new_histogram()
            totals[iv.tag].add(iv.hist)
    counters: dict[str, dict[float, float]] = defaultdict(lambda: defaultdict(float))
    cpath = run_dir / "counters.csv"
    if cpath.exists():
        with open(cpath, newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                key = round(float(row["bucket_start"]), 3)
                width = width or float(row["bucket_seconds"])
                starts.add(key)
                name = row["counter"]
                value = float(row["value"])
                if name in Recorder.GAUGES:
                    counters[name][key] = max(counters[name][key], value)
                else:
                    counters[name][key] += value
    ordered = sorted(starts)
    if ordered and width:
        # fill gaps so that plots and recovery see empty seconds as empty, not missing
        full = []
        s = ordered[0]
        while s <= ordered[-1] + 1e-9:
            full.append(round(s, 3))
            s += width
        ordered = sorted(set(full) | set(ordered))
    return BucketSeries(
        width=width or 1.0,
        starts=ordered,
        hists=dict(hists),
        counters={k: dict(v) for k, v in counters.items()},
        totals=totals,
    )


# --------------------------------------------------------------------------- ledger


class LedgerBuffer:
    """What one process saw since it last reported: appended by users, drained to the master.

    ``final`` ids are deliveries that are over (a plain pop, or an acknowledged lock);
    ``abandoned`` ids were handed out under a lock that was left to expire, so they must
    come back; ``uncertain`` counts requests that got no definite answer (connection
    lost, killed mid-flight), which is the only excuse for an item not adding up.
    """

    def __init__(self) -> None:
        self._data: dict[str, dict[str, list[str]]] = self._empty()
        self._uncertain: Counter[str] = Counter()

    @staticmethod
    def _empty() -> dict[str, dict[str, list[str]]]:
        return {
            "pushed": defaultdict(list),
            "final": defaultdict(list),
            "abandoned": defaultdict(list),
        }

    def pushed(self, queue: str, ids: Iterable[str]) -> None:
        self._data["pushed"][queue].extend(ids)

    def final(self, queue: str, ids: Iterable[str]) -> None:
        self._data["final"][queue].extend(ids)

    def abandoned(self, queue: str, ids: Iterable[str]) -> None:
        self._data["abandoned"][queue].extend(ids)

    def uncertain(self, queue: str, what: str) -> None:
        self._uncertain[f"{queue}\t{what}"] += 1

    def drain(self) -> dict[str, Any]:
        out = {k: dict(v) for k, v in self._data.items()}
        out["uncertain"] = dict(self._uncertain)
        self._data = self._empty()
        self._uncertain = Counter()
        return out


@dataclass
class Remaining:
    """What was left in a queue at the end: counted always, listed when drained."""

    depth: int
    in_flight: int = 0
    ids: list[str] | None = None  # drained ids, or None when only counted (then purged)
    purged: int | None = None


class Ledger:
    """The master's book: every acknowledged push must be delivered once or still be there."""

    def __init__(self) -> None:
        self.pushed: dict[str, set[str]] = defaultdict(set)
        self.pushed_dupes: Counter[str] = Counter()
        self.final: dict[str, Counter[str]] = defaultdict(Counter)
        self.abandoned: dict[str, set[str]] = defaultdict(set)
        self.uncertain: Counter[str] = Counter()

    def merge(self, delta: dict[str, Any]) -> None:
        for q, ids in delta.get("pushed", {}).items():
            book = self.pushed[q]
            for i in ids:
                if i in book:
                    self.pushed_dupes[q] += 1
                book.add(i)
        for q, ids in delta.get("final", {}).items():
            self.final[q].update(ids)
        for q, ids in delta.get("abandoned", {}).items():
            self.abandoned[q].update(ids)
        for key, n in delta.get("uncertain", {}).items():
            self.uncertain[key] += n

    def queues(self) -> set[str]:
        return set(self.pushed) | set(self.final) | set(self.abandoned)

    def check(self, remaining: dict[str, Remaining]) -> dict[str, Any]:
        """Per queue: pushed = delivered + remaining, nothing twice, abandoned items back."""
        per_queue: dict[str, dict[str, Any]] = {}
        totals: Counter[str] = Counter()
        problems: list[str] = []
        for q in sorted(self.queues() | set(remaining)):
            pushed = self.pushed.get(q, set())
            final = self.final.get(q, Counter())
            rem = remaining.get(q, Remaining(depth=0))
            delivered = set(final)
            dupes = {i: n for i, n in final.items() if n > 1}
            uncertain = sum(n for k, n in self.uncertain.items() if k.split("\t")[0] == q)
            row: dict[str, Any] = {
                "pushed": len(pushed),
                "delivered": len(delivered),
                "deliveries": sum(final.values()),
                "remaining": rem.depth,
                "in_flight": rem.in_flight,
                "duplicates": len(dupes),
                "pushed_id_reused": self.pushed_dupes.get(q, 0),
                "uncertain_requests": uncertain,
            }
            if rem.ids is not None:
                left = set(rem.ids)
                dupes.update({i: 2 for i in delivered & left})
                lost = pushed - delivered - left
                extras = (delivered | left) - pushed
                not_back = self.abandoned.get(q, set()) - delivered - left
                row.update(
                    mode="ids",
                    lost=len(lost),
                    unacknowledged_extras=len(extras),
                    abandoned=len(self.abandoned.get(q, set())),
                    abandoned_not_returned=len(not_back),
                    duplicates=len(dupes),
                    sample_lost=sorted(lost)[:5],
                    sample_duplicates=sorted(dupes)[:5],
                )
            else:
                # too many to drain: counts only; extras (committed but unacknowledged)
                # would show up as a surplus, never as a loss
                expected_left = len(pushed - delivered)
                gap = expected_left - (rem.depth + rem.in_flight)
                row.update(
                    mode="counts",
                    lost=max(0, gap),
                    unacknowledged_extras=max(0, -gap),
                    abandoned=len(self.abandoned.get(q, set())),
                    abandoned_not_returned=0,
                )
            ok = (
                row["lost"] == 0
                and row["duplicates"] == 0
                and row["abandoned_not_returned"] == 0
                and row["pushed_id_reused"] == 0
            )
            if not ok and row["lost"] and uncertain and row["duplicates"] == 0:
                row["status"] = "unverifiable"
                problems.append(
                    f"{q}: {row['lost']} items unaccounted for, but {uncertain} requests got no "
                    "answer, so they may have been delivered"
                )
            elif not ok:
                row["status"] = "FAIL"
                problems.append(
                    f"{q}: lost {row['lost']}, duplicates {row['duplicates']}, "
                    f"abandoned not returned {row['abandoned_not_returned']}, "
                    f"ids reused {row['pushed_id_reused']}"
                )
            else:
                row["status"] = "ok"
            per_queue[q] = row
            for k in (
                "pushed",
                "delivered",
                "remaining",
                "lost",
                "duplicates",
                "unacknowledged_extras",
                "abandoned",
                "abandoned_not_returned",
                "uncertain_requests",
            ):
                totals[k] += int(row.get(k, 0))
        failed = any(r["status"] == "FAIL" for r in per_queue.values())
        unverifiable = any(r["status"] == "unverifiable" for r in per_queue.values())
        return {
            "ok": not failed and not unverifiable,
            "status": "FAIL" if failed else ("unverifiable" if unverifiable else "ok"),
            "totals": dict(totals),
            "problems": problems,
            "queues": per_queue,
        }
