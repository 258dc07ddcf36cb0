"""Wait until the service is healthy and ready, then warm it up.

Why: the first requests pay for things a steady state does not (connection pools
filling, actor activation, Python's lazy imports); measuring them would put cold-start
noise into every scenario's first seconds. The warm-up pushes and pops a few hundred
items on a throwaway queue, reports what it saw, and purges the queue.

    python -m load_tests.scripts.warmup --host http://127.0.0.1:8000
"""

from __future__ import annotations

import statistics
import time
import uuid
from typing import Annotated, Any

import httpx
import typer


def wait_healthy(base_url: str, timeout: float = 60.0) -> float:
    """Seconds until ``/health`` and ``/ready`` both answer 200."""
    t0 = time.monotonic()
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


app = typer.Typer(add_completion=False, help=__doc__)


@app.command()
def main(
    host: Annotated[str, typer.Option(help="base URL of the service")] = "http://127.0.0.1:8000",
    requests: Annotated[int, typer.Option(help="push/pop requests to send")] = 200,
) -> None:
    """Wait for HOST to be ready, then push/pop REQUESTS times."""
    typer.echo(warmup(host, requests))


if __name__ == "__main__":
    app()
