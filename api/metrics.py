"""Prometheus metrics of the gateway, on a registry per app (tests build many apps)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

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


class Metrics:
    def __init__(self, active_actors: Callable[[], float]) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "pushpop_http_requests",
            "HTTP requests by route and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "pushpop_http_request_duration_seconds",
            "HTTP request latency by route",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.pushed = Counter("pushpop_items_pushed", "Items pushed", registry=self.registry)
        self.popped = Counter("pushpop_items_popped", "Items popped", registry=self.registry)
        self.time_in_queue = Histogram(
            "pushpop_time_in_queue_seconds",
            "Pop time minus enqueue time, per item",
            buckets=QUEUE_TIME_BUCKETS,
            registry=self.registry,
        )
        self.actor_calls = Histogram(
            "pushpop_actor_call_duration_seconds",
            "How long a request waited for its queue's actor: coalescing, the runtime "
            "(in Dapr mode: daprd and the actor route), the turn, the save",
            ["method"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.errors = Counter(
            "pushpop_errors", "Error responses by code", ["code"], registry=self.registry
        )
        gauge = Gauge(
            "pushpop_active_actors", "Actors active in this process", registry=self.registry
        )
        gauge.set_function(active_actors)
        self._by_request: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._by_method: dict[str, Any] = {}

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
        # labelled children cached: ``labels()`` costs ~5 µs a request, the lookup here ~0.1
        key = (method, route, status)
        children = self._by_request.get(key)
        if children is None:
            children = self._by_request[key] = (
                self.requests.labels(method, route, str(status)),
                self.latency.labels(method, route),
            )
        children[0].inc()
        children[1].observe(seconds)

    def observe_actor_call(self, method: str, seconds: float) -> None:
        child = self._by_method.get(method)
        if child is None:
            child = self._by_method[method] = self.actor_calls.labels(method)
        child.observe(seconds)

    def observe_popped(self, items: list[dict], now: float) -> None:
        if not items:
            return
        self.popped.inc(len(items))
        for it in items:
            self.time_in_queue.observe(max(0.0, now - float(it["enqueued_at"])))


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
