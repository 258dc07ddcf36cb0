"""Wait until the service is healthy and ready, then warm it up.

Why: the first requests pay for things a steady state does not (connection pools
filling, actor activation, Python's lazy imports); measuring them would put cold-start
noise into every scenario's first seconds. The warm-up pushes and pops a few hundred
items on a throwaway queue, reports what it saw, and purges the queue.

    pushpop-bench warmup --host http://127.0.0.1:8000
    ./load_tests/scripts/warmup.sh [--host URL]      # the load plan's name for it
"""

from __future__ import annotations

import statistics
import time
import uuid
from typing import Any

import httpx

CONNECT_GRACE_S = 5.0  # a server being started answers within this; a dead host never does


class HostUnreachable(RuntimeError):
    """Nothing answers at the URL: said in one line at once instead of after a long wait."""


def probe(base_url: str, connect_grace: float = CONNECT_GRACE_S) -> dict[str, Any]:
    """What the server says about itself on ``GET /ready`` (store, runtime), once it answers.

    Refused or timed-out connections for ``connect_grace`` seconds raise
    :class:`HostUnreachable`; a server that answers but is not ready yet is left to
    :func:`wait_healthy`, which waits for it.
    """
    deadline = time.monotonic() + connect_grace
    with httpx.Client(base_url=base_url, timeout=2) as c:
        while True:
            try:
                r = c.get("/ready")
                break
            except httpx.HTTPError as exc:
                if time.monotonic() >= deadline:
                    raise HostUnreachable(
                        f"nothing answers at {base_url} ({exc.__class__.__name__} for "
                        f"{connect_grace:g} s): is the server running, and is the URL right?"
                    ) from None
                time.sleep(0.2)
    try:
        info = r.json() if r.status_code == 200 else {}
    except ValueError:
        info = {}
    return info if isinstance(info, dict) else {}


def wait_healthy(base_url: str, timeout: float = 60.0) -> float:
    """Seconds until ``/health`` and ``/ready`` both answer 200 (fails fast on a dead host)."""
    t0 = time.monotonic()
    probe(base_url)
    deadline = t0 + timeout
    last = ""
    with httpx.Client(base_url=base_url, timeout=5) as c:
        while time.monotonic() < deadline:
            try:
                if c.get("/health").status_code == 200 and c.get("/ready").status_code == 200:
                    return time.monotonic() - t0
                last = "not ready"
            except httpx.HTTPError as exc:
                last = repr(exc)
            time.sleep(0.2)
    raise TimeoutError(f"{base_url} not healthy within {timeout:g}s ({last})")


def warmup(base_url: str, requests: int = 200, timeout: float = 60.0) -> dict[str, Any]:
    ready_s = wait_healthy(base_url, timeout)
    queue = f"warmup-{uuid.uuid4().hex[:8]}"
    latencies: list[float] = []
    with httpx.Client(base_url=base_url, timeout=30) as c:
        for i in range(requests):
            t = time.perf_counter()
            if i % 2 == 0:
                r = c.post(f"/queue/{queue}/push", json={"item": {"warm": i}, "priority": i % 3})
            else:
                r = c.post(f"/queue/{queue}/pop")
            r.raise_for_status()
            latencies.append((time.perf_counter() - t) * 1000)
        c.delete(f"/queue/{queue}").raise_for_status()
    latencies.sort()
    return {
        "ready_after_s": round(ready_s, 2),
        "requests": requests,
        "median_ms": round(statistics.median(latencies), 3),
        "p99_ms": round(latencies[int(0.99 * (len(latencies) - 1))], 3),
    }
