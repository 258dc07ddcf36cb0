"""Prometheus metrics of the gateway, on a registry per app (tests build many apps).

The series every request updates (request counts and latency, actor call latency, items
pushed and popped, time in queue) are :class:`FastHistogram` and :class:`FastCounter`:
plain numbers that the event loop adds to, exported at scrape time in the exact shape
prometheus_client's ``Histogram`` and ``Counter`` give (names, labels, buckets,
``_created``). Those take a lock per bucket, per sum and per count, and look their
labels up on every update; a request here pays a list index and two additions.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import prometheus_client.metrics
from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

if TYPE_CHECKING:
    from actor_service.actor import TurnStats
    from api.coalescer import CoalescerStats
    from api.queue_list import QueueSnapshot

# sub-millisecond resolution: the service answers in about a millisecond
LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.002,
    0.003,
    0.005,
    0.0075,
    0.01,
    0.015,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
QUEUE_TIME_BUCKETS = (
    0.001,
    0.01,
    0.1,
    0.5,
    1,
    5,
    10,
    30,
    60,
    300,
    900,
    3600,
    4 * 3600,
    24 * 3600,
)


def _created() -> bool:
    """Whether ``_created`` series are exported (prometheus_client's own switch)."""
    return bool(getattr(prometheus_client.metrics, "_use_created", True))


class HistogramChild:
    """One label set's buckets (not cumulative: ``counts[i]`` holds ``bounds[i-1] < v <=
    bounds[i]``), sum and creation time."""

    __slots__ = ("bounds", "counts", "created", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * len(bounds)
        self.sum = 0.0
        self.created = time.time()

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value


class FastHistogram(Collector):
    """A histogram updated by one event loop (no lock), exported as prometheus_client's
    ``Histogram`` with the same name, labels and buckets would be."""

    def __init__(
        self,
        name: str,
        doc: str,
        labelnames: tuple[str, ...],
        buckets: tuple[float, ...],
        registry: CollectorRegistry,
    ) -> None:
        self.name, self.doc, self.labelnames = name, doc, labelnames
        self.bounds = (*(float(b) for b in buckets), float("inf"))
        self.children: dict[tuple[str, ...], HistogramChild] = {}
        if not labelnames:  # like prometheus_client: an unlabelled series exists at once
            self.labels()
        registry.register(self)

    def labels(self, *values: str) -> HistogramChild:
        child = self.children.get(values)
        if child is None:
            child = self.children[values] = HistogramChild(self.bounds)
        return child

    def collect(self) -> Iterator[Metric]:
        metric = Metric(self.name, self.doc, "histogram")
        created = _created()
        les = [floatToGoString(b) for b in self.bounds]
        for values, child in list(self.children.items()):
            labels = dict(zip(self.labelnames, values, strict=True))
            acc = 0.0
            for le, n in zip(les, child.counts, strict=True):
                acc += n
                metric.add_sample(f"{self.name}_bucket", {**labels, "le": le}, acc)
            metric.add_sample(f"{self.name}_count", labels, acc)
            metric.add_sample(f"{self.name}_sum", labels, child.sum)
            if created:
                metric.add_sample(f"{self.name}_created", labels, child.created)
        yield metric


class CounterChild:
    __slots__ = ("created", "value")

    def __init__(self) -> None:
        self.value = 0.0
        self.created = time.time()


class FastCounter(Collector):
    """A counter updated by one event loop (``child.value += n``), exported as
    prometheus_client's ``Counter`` would be (``_total``, ``_created``)."""

    def __init__(
        self, name: str, doc: str, labelnames: tuple[str, ...], registry: CollectorRegistry
    ) -> None:
        self.name, self.doc, self.labelnames = name, doc, labelnames
        self.children: dict[tuple[str, ...], CounterChild] = {}
        if not labelnames:
            self.labels()
        registry.register(self)

    def labels(self, *values: str) -> CounterChild:
        child = self.children.get(values)
        if child is None:
            child = self.children[values] = CounterChild()
        return child

    def inc(self, amount: float = 1) -> None:
        """Add to the unlabelled series (prometheus_client's ``Counter.inc``)."""
        self.labels().value += amount

    def collect(self) -> Iterator[Metric]:
        metric = Metric(self.name, self.doc, "counter")
        created = _created()
        for values, child in list(self.children.items()):
            labels = dict(zip(self.labelnames, values, strict=True))
            metric.add_sample(f"{self.name}_total", labels, child.value)
            if created:
                metric.add_sample(f"{self.name}_created", labels, child.created)
        yield metric


class Metrics:
    def __init__(self, active_actors: Callable[[], float]) -> None:
        self.registry = CollectorRegistry()
        self.requests = FastCounter(
            "pushpop_http_requests",
            "HTTP requests by route and status",
            ("method", "route", "status"),
            self.registry,
        )
        self.latency = FastHistogram(
            "pushpop_http_request_duration_seconds",
            "HTTP request latency by route",
            ("method", "route"),
            LATENCY_BUCKETS,
            self.registry,
        )
        self.pushed = FastCounter("pushpop_items_pushed", "Items pushed", (), self.registry)
        self.popped = FastCounter("pushpop_items_popped", "Items popped", (), self.registry)
        self.time_in_queue = FastHistogram(
            "pushpop_time_in_queue_seconds",
            "Pop time minus enqueue time, per item",
            (),
            QUEUE_TIME_BUCKETS,
            self.registry,
        )
        self.actor_calls = FastHistogram(
            "pushpop_actor_call_duration_seconds",
            "How long a request waited for its queue's actor: coalescing, the runtime "
            "(in Dapr mode: daprd and the actor route), the turn, the save",
            ("method",),
            LATENCY_BUCKETS,
            self.registry,
        )
        self.errors = Counter(
            "pushpop_errors", "Error responses by code", ["code"], registry=self.registry
        )
        gauge = Gauge(
            "pushpop_active_actors", "Actors active in this process", registry=self.registry
        )
        gauge.set_function(active_actors)
        self._by_request: dict[tuple[str, str, int], tuple[CounterChild, HistogramChild]] = {}
        self._pushed = self.pushed.labels()
        self._popped = self.popped.labels()
        self._in_queue = self.time_in_queue.labels()

    def watch_coalescer(self, stats: CoalescerStats) -> None:
        """Export how many requests shared an actor turn (read at scrape time)."""
        self.registry.register(
            _Counters(
                ("pushpop_coalesced_batches",
                 "Batch calls that carried several requests to one busy queue's actor",
                 lambda: stats.batches),
                ("pushpop_coalesced_requests",
                 "Requests that reached their queue's actor inside a Batch call",
                 lambda: stats.coalesced_requests),
            )
        )  # fmt: skip

    def watch_turns(self, stats: TurnStats) -> None:
        """Export the actors' time reading and saving state (read at scrape time)."""
        self.registry.register(
            _Counters(
                ("pushpop_actor_turns", "Actor turns that saved their state",
                 lambda: stats.turns),
                ("pushpop_actor_state_load_seconds",
                 "Time actor turns spent reading state (cache misses: the store, or daprd)",
                 lambda: stats.load_seconds),
                ("pushpop_actor_state_save_seconds",
                 "Time actor turns spent saving state (the store transaction, or daprd's)",
                 lambda: stats.save_seconds),
            )
        )  # fmt: skip

    def watch_queues(self, snapshot: Callable[[], QueueSnapshot]) -> None:
        """Export per-queue gauges of the deepest queues (api/queue_list.py refreshes the
        snapshot in the background; a scrape only formats it)."""
        self.registry.register(_QueueGauges(snapshot))

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        children = self._by_request.get(key)
        if children is None:
            children = self._by_request[key] = (
                self.requests.labels(method, route, str(status)),
                self.latency.labels(method, route),
            )
        children[0].value += 1
        children[1].observe(seconds)

    def observe_actor_call(self, method: str, seconds: float) -> None:
        self.actor_calls.labels(method).observe(seconds)

    def observe_pushed(self, n: int) -> None:
        self._pushed.value += n

    def observe_popped(self, items: list[dict], now: float) -> None:
        if not items:
            return
        self._popped.value += len(items)
        in_queue = self._in_queue
        for it in items:
            in_queue.observe(max(0.0, now - float(it["enqueued_at"])))


class _Counters(Collector):
    """Counters that a hot path keeps as plain attributes (no lock, no label lookup),
    exported when Prometheus scrapes: ``(name, help, read)`` each."""

    def __init__(self, *counters: tuple[str, str, Callable[[], float]]) -> None:
        self.counters = counters

    def collect(self) -> Iterator[CounterMetricFamily]:
        for name, doc, read in self.counters:
            yield CounterMetricFamily(name, doc, value=read())


QUEUE_GAUGES = (
    ("pushpop_queue_depth", "Items waiting in the queue (the deepest queues only)", "depth"),
    ("pushpop_queue_in_flight", "Items of the queue under a lock", "in_flight"),
    ("pushpop_queue_delayed", "Items of the queue not yet due", "delayed"),
)


class _QueueGauges(Collector):
    """``pushpop_queue_*{queue=...}`` from the last snapshot of the deepest queues; the
    oldest item's age is computed at scrape time, so it grows between refreshes."""

    def __init__(self, snapshot: Callable[[], QueueSnapshot]) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterator[GaugeMetricFamily]:
        snap = self.snapshot()
        now = time.time()
        for name, doc, field in QUEUE_GAUGES:
            family = GaugeMetricFamily(name, doc, labels=["queue"])
            for q in snap.queues:
                family.add_metric([q["queue_id"]], q[field])
            yield family
        age = GaugeMetricFamily(
            "pushpop_queue_oldest_age_seconds",
            "Seconds since the queue's oldest waiting item was pushed (0: none waits)",
            labels=["queue"],
        )
        for q in snap.queues:
            oldest = q["oldest_enqueued_at"]
            age.add_metric([q["queue_id"]], 0.0 if oldest is None else max(0.0, now - oldest))
        yield age
        if snap.taken_at is None:
            return  # not listed yet: no count rather than a false 0
        yield GaugeMetricFamily(
            "pushpop_queues",
            "Queues holding items, delayed items or locks, at the last refresh",
            value=snap.total,
        )
