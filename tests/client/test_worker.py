"""The worker loop against the real app: many items through competing workers with a
handler that fails and dawdles, a handler running three times the lock's ttl (in this
process), and a worker process stopped with SIGTERM half-way (a second process: against
``pushpop serve``): nothing lost, nothing handled twice."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from asgi_helpers import AppThread
from pushpop_client import AsyncClient, AsyncWorker, Client, Message, Worker

from supervise.server import ServerProcess


def drain(c: Client, queue: str) -> list[Message]:
    out: list[Message] = []
    while got := c.pop(queue, depth=100).items:
        out.extend(got)
    return out


def push_numbers(c: Client, queue: str, n: int) -> None:
    for start in range(0, n, 500):
        c.push_many(queue, [({"n": i},) for i in range(start, min(n, start + 500))])


@pytest.mark.parametrize(
    ("store", "limit_by"), [("sqlite", "worker"), ("postgres", "worker"), ("sqlite", "server")]
)
def test_many_items_four_workers_failing_and_slow_handlers(
    store: str, limit_by: str, apps: dict[str, AppThread], q: str
) -> None:
    """2,000 items, 4 workers (2 async handlers, 2 plain ones in threads), 10 % of calls
    failing and 1 in 50 slow, 1 in 97 items always failing: each item succeeds exactly once
    or is dead-lettered after exactly 3 deliveries, by the worker's ``max_attempts`` or by
    the queue's ``max_deliveries`` setting."""
    app, total, max_attempts = apps[store], 2000, 3
    poison = {i for i in range(total) if i % 97 == 0}
    succeeded: Counter[int] = Counter()
    attempts: Counter[int] = Counter()
    last_failed: set[int] = set()
    lock = threading.Lock()
    rng = random.Random(22)

    def judge(m: Message) -> float:
        n = m.item["n"]
        with lock:
            attempts[n] += 1
            fail = n in poison or rng.random() < 0.10
            if not fail:
                succeeded[n] += 1
            elif m.deliveries >= max_attempts:
                last_failed.add(n)
        if fail:
            raise RuntimeError(f"item {n} failed on delivery {m.deliveries}")
        return 0.05 if n % 50 == 1 else 0.0

    def plain(m: Message) -> None:
        time.sleep(judge(m))

    async def coro(m: Message) -> None:
        await asyncio.sleep(judge(m))

    with Client(app.url, transport=app.transport()) as c:
        if limit_by == "server":
            c.set_settings(q, max_deliveries=max_attempts)
        push_numbers(c, q, total)
    worker_limit = max_attempts if limit_by == "worker" else None

    async def main() -> list[AsyncWorker]:
        client = AsyncClient(app.url, transport=app.async_transport())
        workers = [
            AsyncWorker(client, q, coro if i % 2 else plain, concurrency=2, ttl_seconds=30,
                        wait_seconds=1, max_attempts=worker_limit, backoff=lambda n: 0)
            for i in range(4)
        ]  # fmt: skip
        runs = [asyncio.ensure_future(w.run(handle_signals=False)) for w in workers]
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with lock:
                ended = len(succeeded) + len(last_failed)
            if ended >= total:
                break
            await asyncio.sleep(0.1)
        for w in workers:  # a graceful stop: what is being handled is still acknowledged
            w.stop()
        await asyncio.wait_for(asyncio.gather(*runs), 30)
        await client.aclose()
        return workers

    workers = asyncio.run(main())
    with Client(app.url, transport=app.transport()) as c:
        dead = Counter(m.item["n"] for m in drain(c, f"{q}-deadletter"))
        st = c.stats(q)
    assert (st.depth, st.in_flight, st.locks) == (0, 0, 0), st
    assert all(v == 1 for v in succeeded.values()), [n for n, v in succeeded.items() if v > 1]
    assert all(v == 1 for v in dead.values()), dead
    assert set(succeeded) | set(dead) == set(range(total))
    assert not set(succeeded) & set(dead)
    assert poison <= set(dead)
    assert all(attempts[n] == max_attempts for n in dead), {n: attempts[n] for n in dead}
    assert sum(w.stats.succeeded for w in workers) == total - len(dead)
    moved_by_worker = sum(w.stats.dead_lettered for w in workers)
    assert moved_by_worker == (len(dead) if limit_by == "worker" else 0)


def test_handler_running_three_ttls_keeps_its_lock(apps: dict[str, AppThread], q: str) -> None:
    """ttl 2 s, a handler of 6 s: the lock is extended, no second slot gets the item."""
    app = apps["sqlite"]
    calls: list[tuple[int, int]] = []

    def slow(m: Message) -> None:
        calls.append((m.item["n"], m.deliveries))
        time.sleep(6)

    with Client(app.url, transport=app.transport()) as c:
        c.push(q, {"n": 1})
        worker = Worker(c, q, slow, concurrency=3, ttl_seconds=2, wait_seconds=1)
        t = threading.Thread(target=worker.run, kwargs={"handle_signals": False})
        t.start()
        time.sleep(3)
        assert c.stats(q).in_flight == 1  # still held, past its first expiry
        time.sleep(3.8)
        worker.stop()
        t.join(20)
        st = c.stats(q)
    assert not t.is_alive()
    assert calls == [(1, 1)]
    assert worker.stats.succeeded == 1 and worker.stats.extended >= 4, worker.stats
    assert (st.depth, st.in_flight, st.locks) == (0, 0, 0)


WORKER_SCRIPT = textwrap.dedent(
    """
    import os, sys, time
    from pushpop_client import Client, Worker

    url, queue, out = sys.argv[1:4]
    log = open(out, "a")

    def handle(message):
        time.sleep(0.02)
        log.write(f"{message.item['n']}\\n")
        log.flush()
        os.fsync(log.fileno())

    Worker(Client(url), queue, handle, concurrency=4, ttl_seconds=60, wait_seconds=1).run()
    print("stopped", flush=True)
    """
)


def test_sigterm_mid_run_loses_nothing(
    servers: dict[str, ServerProcess], q: str, tmp_path: Path
) -> None:
    """SIGTERM to a worker process with 4 busy slots: it exits 0 at once, holding nothing;
    what it handled and what is left in the queue are the items, each exactly once."""
    url, total = servers["postgres"].url, 600
    out = tmp_path / "handled.txt"
    out.touch()
    with Client(url) as c:
        push_numbers(c, q, total)
        script = tmp_path / "worker.py"
        script.write_text(WORKER_SCRIPT)
        proc = subprocess.Popen(
            [sys.executable, str(script), url, q, str(out)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 30
            while len(out.read_text().split()) < 100 and time.monotonic() < deadline:
                assert proc.poll() is None, proc.communicate()
                time.sleep(0.05)
            os.kill(proc.pid, signal.SIGTERM)
            t0 = time.monotonic()
            stdout, stderr = proc.communicate(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 0 and "stopped" in stdout, stderr
        assert time.monotonic() - t0 < 5
        st = c.stats(q)
        assert (st.in_flight, st.locks) == (0, 0), st
        left = Counter(m.item["n"] for m in drain(c, q))
    handled = Counter(int(x) for x in out.read_text().split())
    assert 100 <= sum(handled.values()) < total
    assert all(v == 1 for v in handled.values()), [n for n, v in handled.items() if v > 1]
    assert all(v == 1 for v in left.values())
    assert not set(handled) & set(left)
    assert set(handled) | set(left) == set(range(total))


def test_failure_is_released_with_the_backoff_delay(apps: dict[str, AppThread], q: str) -> None:
    """The first delivery fails: the item comes back after backoff(1) = 1 s, not at once."""
    app = apps["sqlite"]
    seen: list[tuple[int, float]] = []

    def flaky(m: Message) -> None:
        seen.append((m.deliveries, time.monotonic()))
        if m.deliveries == 1:
            raise ValueError("first time fails")

    with Client(app.url, transport=app.transport()) as c:
        c.push(q, {"n": 1})
        worker = Worker(c, q, flaky, concurrency=2, wait_seconds=1, backoff=lambda n: n)
        t = threading.Thread(target=worker.run, kwargs={"handle_signals": False})
        t.start()
        deadline = time.monotonic() + 10
        while len(seen) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        worker.stop()
        t.join(10)
        st = c.stats(q)
    assert [d for d, _ in seen] == [1, 2]
    assert seen[1][1] - seen[0][1] >= 0.95
    assert (worker.stats.failed, worker.stats.released, worker.stats.succeeded) == (1, 1, 1)
    assert (st.depth, st.in_flight, st.delayed) == (0, 0, 0)
