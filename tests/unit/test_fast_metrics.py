"""The gateway's lock-free metrics scrape exactly as prometheus_client's own classes would.

``api.metrics`` keeps its per-request series as plain numbers (FastCounter,
FastHistogram); a scrape must not tell the difference: the same families in the same
order, the same samples and values, ``_created`` included.
"""

from __future__ import annotations

import random
import re

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from api.metrics import LATENCY_BUCKETS, QUEUE_TIME_BUCKETS, Metrics

CREATED = re.compile(r"^(\w+_created(?:\{.*\})?) \S+$", re.M)


def reference(observations: list[tuple[str, tuple]]) -> bytes:
    """What the metrics looked like as prometheus_client Counters and Histograms."""
    registry = CollectorRegistry()
    requests = Counter("pushpop_http_requests", "HTTP requests by route and status",
                       ["method", "route", "status"], registry=registry)  # fmt: skip
    latency = Histogram("pushpop_http_request_duration_seconds",
                        "HTTP request latency by route", ["method", "route"],
                        buckets=LATENCY_BUCKETS, registry=registry)  # fmt: skip
    pushed = Counter("pushpop_items_pushed", "Items pushed", registry=registry)
    popped = Counter("pushpop_items_popped", "Items popped", registry=registry)
    in_queue = Histogram("pushpop_time_in_queue_seconds", "Pop time minus enqueue time, per item",
                         buckets=QUEUE_TIME_BUCKETS, registry=registry)  # fmt: skip
    calls = Histogram(
        "pushpop_actor_call_duration_seconds",
        "How long a request waited for its queue's actor: coalescing, the runtime "
        "(in Dapr mode: daprd and the actor route), the turn, the save",
        ["method"], buckets=LATENCY_BUCKETS, registry=registry,
    )  # fmt: skip
    errors = Counter("pushpop_errors", "Error responses by code", ["code"], registry=registry)
    Gauge("pushpop_active_actors", "Actors active in this process",
          registry=registry).set_function(lambda: 3.0)  # fmt: skip
    for kind, args in observations:
        if kind == "request":
            method, route, status, seconds = args
            requests.labels(method, route, str(status)).inc()
            latency.labels(method, route).observe(seconds)
        elif kind == "call":
            calls.labels(args[0]).observe(args[1])
        elif kind == "pushed":
            pushed.inc(args[0])
        elif kind == "popped":
            items, now = args
            if items:
                popped.inc(len(items))
                for it in items:
                    in_queue.observe(max(0.0, now - float(it["enqueued_at"])))
        else:
            errors.labels(args[0]).inc()
    return generate_latest(registry)


def ours(observations: list[tuple[str, tuple]]) -> bytes:
    metrics = Metrics(lambda: 3.0)
    for kind, args in observations:
        if kind == "request":
            metrics.observe_request(*args)
        elif kind == "call":
            metrics.observe_actor_call(*args)
        elif kind == "pushed":
            metrics.observe_pushed(*args)
        elif kind == "popped":
            metrics.observe_popped(*args)
        else:
            metrics.errors.labels(args[0]).inc()
    return generate_latest(metrics.registry)


def without_created_values(text: bytes) -> str:
    """The exposition with each ``_created`` sample's value (a creation time) blanked."""
    return CREATED.sub(r"\1 T", text.decode())


def script(seed: int, n: int) -> list[tuple[str, tuple]]:
    rng = random.Random(seed)
    routes = ["/queue/{queue_id}/push", "/queue/{queue_id}/pop", "unmatched"]
    # bucket bounds themselves, and values around and past them
    values = [*LATENCY_BUCKETS, *QUEUE_TIME_BUCKETS, 0.0, 1e-9, 0.00051, 99999.0]
    out: list[tuple[str, tuple]] = []
    for _ in range(n):
        kind = rng.choice(["request", "call", "pushed", "popped", "error"])
        if kind == "request":
            args: tuple = (rng.choice(["POST", "GET"]), rng.choice(routes),
                           rng.choice([200, 400, 503]), rng.choice(values))  # fmt: skip
        elif kind == "call":
            args = (rng.choice(["Push", "Pop", "Stats"]), rng.choice(values) * rng.random())
        elif kind == "pushed":
            args = (rng.randint(1, 1000),)
        elif kind == "popped":
            now = 1_765_000_000.0
            items = [{"enqueued_at": now - rng.choice(values)} for _ in range(rng.randint(0, 3))]
            items += [{"enqueued_at": now + 5}]  # a clock step back: counted as 0
            args = (items, now)
        else:
            args = (rng.choice(["INVALID_ITEM", "QUEUE_FULL"]),)
        out.append((kind, args))
    return out


def test_a_fresh_registry_scrapes_the_same() -> None:
    assert without_created_values(ours([])) == without_created_values(reference([]))


def test_every_sample_matches_prometheus_clients_after_random_updates() -> None:
    for seed in range(5):
        observations = script(seed, 400)
        got, want = ours(observations), reference(observations)
        assert without_created_values(got) == without_created_values(want), seed


def test_created_series_are_there_and_hold_a_time() -> None:
    text = ours(script(1, 50)).decode()
    created = dict(m.groups() for m in re.finditer(r"^(\w+_created\S*) (\S+)$", text, re.M))
    assert "pushpop_items_pushed_created" in created
    assert any(k.startswith("pushpop_http_request_duration_seconds_created{") for k in created)
    assert all(float(v) > 1_700_000_000 for v in created.values()), created
