"""Long-poll pop across Dapr hosts: a push through host B wakes a waiter on host A.

Two ``pushpop serve --runtime dapr`` hosts join one placement and one PostgreSQL
database (as in test_dapr_cluster.py). A waiter parks on A's gateway; the push goes
through B's gateway, wherever placement put the queue's actor; only the hosts'
``LISTEN``/``NOTIFY`` link (api/push_notify.py) can tell A, so a waiter that answers
within 200 ms of the push's answer proves it carries the wake-up. A SIGTERM then
answers A's waiters at once in Dapr mode too.
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from pathlib import Path

import httpx
import pytest
from http_helpers import ok
from server_helpers import dapr_host, pg_database

from supervise.pgserver import PostgresServer
from supervise.server import wait_ready

WAKE_WITHIN = 0.2  # seconds from the push's answer to the waiter's
ROUNDS = 5


def waiters(url: str) -> float:
    for line in httpx.get(url + "/metrics", timeout=10).text.splitlines():
        if line.startswith("pushpop_long_poll_waiters "):
            return float(line.split()[1])
    raise AssertionError("no pushpop_long_poll_waiters in /metrics")


async def one_round(a: httpx.AsyncClient, b: httpx.AsyncClient, q: str, n: int) -> float:
    """Park a pop on A, push through B; seconds from B's answer to A's."""
    task = asyncio.create_task(a.post(f"/queue/{q}/pop", params={"wait_seconds": 10}))
    deadline = time.monotonic() + 10
    while await asyncio.to_thread(waiters, str(a.base_url)) < 1:
        assert time.monotonic() < deadline and not task.done(), "the pop did not wait on A"
        await asyncio.sleep(0.02)
    ok(await b.post(f"/queue/{q}/push", json={"item": {"n": n}}))
    pushed = time.monotonic()
    got = ok(await asyncio.wait_for(task, 10))
    took = time.monotonic() - pushed
    assert [i["item"] for i in got["items"]] == [{"n": n}]
    return took


@pytest.mark.dapr
async def test_a_push_through_host_b_wakes_a_waiter_on_host_a(
    pg: PostgresServer, control_plane: tuple[str, str], tmp_path: Path
) -> None:
    url = pg_database(pg, "pushpop_long_poll")
    hosts = [dapr_host(tmp_path, name, control_plane, database_url=url) for name in "ab"]
    try:
        for h in hosts:
            h.start(60)
        for h in hosts:
            await asyncio.to_thread(wait_ready, h.url, 60)
        run = uuid.uuid4().hex[:8]
        async with (
            httpx.AsyncClient(base_url=hosts[0].url, timeout=30) as a,
            httpx.AsyncClient(base_url=hosts[1].url, timeout=30) as b,
        ):
            # several queues: placement puts some actors on A, some on B
            took = [await one_round(a, b, f"lp-{run}-{i}", i) for i in range(ROUNDS)]
            print(f"cross-host wake-up after a push: {[f'{t * 1000:.1f} ms' for t in took]}")
            assert max(took) < WAKE_WITHIN, took
            assert statistics.median(took) < WAKE_WITHIN / 2, took

            # SIGTERM: the waiter answers [] at once
            task = asyncio.create_task(
                a.post(f"/queue/lp-{run}-x/pop", params={"wait_seconds": 20})
            )
            while await asyncio.to_thread(waiters, hosts[0].url) < 1:
                await asyncio.sleep(0.02)
            assert hosts[0].proc is not None
            hosts[0].proc.terminate()
            started = time.monotonic()
            r = await asyncio.wait_for(task, 10)
            assert (r.status_code, r.json()) == (200, {"items": []})
            assert time.monotonic() - started < 1.0, time.monotonic() - started
    finally:
        for h in hosts:
            h.stop()
