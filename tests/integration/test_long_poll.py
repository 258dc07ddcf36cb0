"""Long-poll pop (``wait_seconds``): the contract's rules on SQLite files and PostgreSQL.

The HTTP semantics run in-process (the real app and store through
``httpx.ASGITransport``, its lifespan started and stopped by the test); what needs a
socket runs against a real ``pushpop serve``: a client that hangs up mid-wait takes
nothing, a SIGTERM answers the waiters at once, and a thousand idle waiters cost the
server's process next to no CPU (psutil, the server's own CPU time).
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from http_helpers import err, ok

from api.app import create_app
from api.asgi import PushpopApp
from api.push_notify import NOTE_BYTES, NOTE_INTERVAL, PushNotifier
from api.settings import Settings
from api.waiters import WaiterRegistry
from supervise.pgserver import PostgresServer
from supervise.server import ServerProcess

PROMPT = 0.5  # seconds: "at once" and "soon after the push" in these tests


@pytest.fixture(params=["sqlite", "postgres"])
async def app(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[PushpopApp]:
    """The real app on a real store, lifespan running."""
    if request.param == "sqlite":
        settings = Settings(store="sqlite", sqlite_path=str(tmp_path / "lp.sqlite3"))
    else:
        pg: PostgresServer = request.getfixturevalue("pg")
        url = pg.database(f"lp_{uuid.uuid4().hex[:8]}")
        settings = Settings(store="postgres", database_url=url)
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: PushpopApp) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t", timeout=30) as c:
        yield c


@pytest.fixture
def qid() -> str:
    return f"lp-{uuid.uuid4().hex[:10]}"


async def until(check: Callable[[], bool], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def waiting(app: PushpopApp) -> int:
    registry: WaiterRegistry = app.state.waiters
    return registry.count


def long_poll(c: httpx.AsyncClient, q: str, wait: int = 5, **params: Any) -> asyncio.Task:
    return asyncio.create_task(c.post(f"/queue/{q}/pop", params={"wait_seconds": wait, **params}))


def pops(app: PushpopApp) -> float:
    """Pop calls the gateway made to actors so far."""
    count = app.state.metrics.registry.get_sample_value(
        "pushpop_actor_call_duration_seconds_count", {"method": "Pop"}
    )
    return count or 0.0


async def park(app: PushpopApp, c: httpx.AsyncClient, q: str, n: int) -> list[asyncio.Task]:
    """``n`` long polls on ``q``, each waiting before the next starts (arrival order)."""
    tasks = []
    for i in range(n):
        tasks.append(long_poll(c, q, 10))
        await until(lambda i=i: waiting(app) == i + 1)
    return tasks


async def push(c: httpx.AsyncClient, q: str, *items: dict) -> dict:
    body = {"items": [{"item": i} for i in items]}
    return ok(await c.post(f"/queue/{q}/push", json=body))


async def test_answers_at_once_when_items_wait(client: httpx.AsyncClient, qid: str) -> None:
    await push(client, qid, {"n": 1})
    started = time.monotonic()
    got = ok(await client.post(f"/queue/{qid}/pop", params={"wait_seconds": 20}))
    assert time.monotonic() - started < PROMPT
    assert [i["item"] for i in got["items"]] == [{"n": 1}]
    assert "next_at" not in got


async def test_waits_then_answers_a_push(
    app: PushpopApp, client: httpx.AsyncClient, qid: str
) -> None:
    task = long_poll(client, qid, 10)
    await until(lambda: waiting(app) == 1)
    await asyncio.sleep(0.2)
    assert not task.done()  # nothing to pop: it waits
    pushed_at = time.monotonic()
    await push(client, qid, {"n": 2})
    got = ok(await asyncio.wait_for(task, PROMPT))
    assert time.monotonic() - pushed_at < PROMPT
    assert [i["item"] for i in got["items"]] == [{"n": 2}]
    assert waiting(app) == 0


async def test_times_out_with_nothing(app: PushpopApp, client: httpx.AsyncClient, qid: str) -> None:
    started = time.monotonic()
    got = ok(await client.post(f"/queue/{qid}/pop", params={"wait_seconds": 1}))
    took = time.monotonic() - started
    assert got == {"items": []}
    assert 0.95 <= took < 1.0 + PROMPT
    assert waiting(app) == 0


async def test_waiters_are_served_in_arrival_order(
    app: PushpopApp, client: httpx.AsyncClient, qid: str
) -> None:
    tasks = await park(app, client, qid, 3)
    for i, task in enumerate(tasks):
        await push(client, qid, {"n": i})
        got = ok(await asyncio.wait_for(task, PROMPT))
        assert [x["item"] for x in got["items"]] == [{"n": i}]
        assert all(not t.done() for t in tasks[i + 1 :])


async def test_one_item_wakes_one_waiter_and_a_bulk_push_n(
    app: PushpopApp, client: httpx.AsyncClient, qid: str
) -> None:
    tasks = await park(app, client, qid, 4)
    await push(client, qid, {"n": 0})
    await until(lambda: sum(t.done() for t in tasks) == 1, PROMPT)
    await asyncio.sleep(0.3)
    assert [t.done() for t in tasks] == [True, False, False, False]
    assert waiting(app) == 3
    await push(client, qid, {"n": 1}, {"n": 2}, {"n": 3})  # a bulk push of 3 wakes 3
    got = [ok(r) for r in await asyncio.wait_for(asyncio.gather(*tasks), PROMPT)]
    assert [[x["item"]["n"] for x in g["items"]] for g in got] == [[0], [1], [2], [3]]


async def test_a_woken_waiter_that_finds_nothing_waits_again_in_its_place(
    app: PushpopApp, client: httpx.AsyncClient, qid: str
) -> None:
    first, second = await park(app, client, qid, 2)
    before = pops(app)
    # `first` is woken for an item someone else took first (here: a wake with no item)
    app.state.waiters.pushed(qid, 1)
    await asyncio.sleep(0.2)
    assert pops(app) == before + 1  # one waiter woke and looked
    assert not first.done() and not second.done()
    await push(client, qid, {"n": "kept"})
    got = ok(await asyncio.wait_for(first, PROMPT))  # still first in line
    assert [x["item"] for x in got["items"]] == [{"n": "kept"}]
    assert not second.done()
    await push(client, qid, {"n": "last"})
    assert ok(await asyncio.wait_for(second, PROMPT))["items"][0]["item"] == {"n": "last"}


async def test_long_poll_with_ack_locks_what_it_gets(
    app: PushpopApp, client: httpx.AsyncClient, qid: str
) -> None:
    task = long_poll(client, qid, 10, require_ack="true", ttl_seconds=30)
    await until(lambda: waiting(app) == 1)
    await push(client, qid, {"n": "acked"})
    got = ok(await asyncio.wait_for(task, PROMPT))
    assert got["lock_id"] and [x["item"] for x in got["items"]] == [{"n": "acked"}]
    r = await client.post(f"/queue/{qid}/acknowledge", json={"lock_id": got["lock_id"]})
    assert ok(r)["acknowledged"] == 1


async def test_shutdown_answers_every_waiter_at_once(
    app: PushpopApp, client: httpx.AsyncClient, qid: str
) -> None:
    tasks = [long_poll(client, f"{qid}-{i}", 20) for i in range(5)]
    await until(lambda: waiting(app) == 5)
    started = time.monotonic()
    app.state.waiters.close()  # what the lifespan's end and the server's shutdown call
    got = [ok(r) for r in await asyncio.wait_for(asyncio.gather(*tasks), PROMPT)]
    assert time.monotonic() - started < PROMPT
    assert got == [{"items": []}] * 5
    # once closed, a long poll answers at once
    assert ok(await client.post(f"/queue/{qid}/pop", params={"wait_seconds": 5})) == {"items": []}


async def test_a_delayed_item_falling_due_wakes_a_waiter(
    app: PushpopApp, client: httpx.AsyncClient, qid: str
) -> None:
    ok(await client.post(f"/queue/{qid}/push", json={"item": {"n": "later"}, "delay_seconds": 1}))
    started = time.monotonic()
    got = ok(await client.post(f"/queue/{qid}/pop", params={"wait_seconds": 5}))
    took = time.monotonic() - started
    assert [x["item"] for x in got["items"]] == [{"n": "later"}]
    assert 0.8 <= took < 1.0 + PROMPT, took  # woken when due (the actor's next_at)
    assert "next_at" not in got


async def test_an_expiring_lock_wakes_a_waiter(
    app: PushpopApp, client: httpx.AsyncClient, qid: str
) -> None:
    await push(client, qid, {"n": "retried"})
    locked = ok(await client.post(f"/queue/{qid}/pop", params={"require_ack": "true",
                                                               "ttl_seconds": 1}))  # fmt: skip
    assert locked["items"]
    started = time.monotonic()
    got = ok(await client.post(f"/queue/{qid}/pop", params={"wait_seconds": 5}))
    took = time.monotonic() - started
    assert [(x["item"], x["deliveries"]) for x in got["items"]] == [({"n": "retried"}, 2)]
    assert 0.7 <= took < 1.0 + PROMPT, took


@pytest.mark.parametrize("op", ["release", "dead-letter"])
async def test_a_release_or_dead_letter_wakes_a_waiter_where_the_items_go(
    app: PushpopApp, client: httpx.AsyncClient, qid: str, op: str
) -> None:
    await push(client, qid, {"n": op})
    lock = ok(await client.post(f"/queue/{qid}/pop", params={"require_ack": "true"}))["lock_id"]
    target = qid if op == "release" else f"{qid}-deadletter"
    task = long_poll(client, target, 10)
    await until(lambda: waiting(app) == 1)
    ok(await client.post(f"/queue/{qid}/{op}", json={"lock_id": lock}))
    got = ok(await asyncio.wait_for(task, PROMPT))
    assert [x["item"] for x in got["items"]] == [{"n": op}]


@pytest.mark.parametrize("bad", ["21", "-1", "x", "1.5", ""])
async def test_wait_seconds_is_an_integer_from_0_to_20(
    client: httpx.AsyncClient, qid: str, bad: str
) -> None:
    r = await client.post(f"/queue/{qid}/pop", params={"wait_seconds": bad})
    err(r, 400, "INVALID_PARAMETER", "wait_seconds")


async def test_wait_seconds_zero_and_default_answer_at_once(
    client: httpx.AsyncClient, qid: str
) -> None:
    for params in ({"wait_seconds": "0"}, {}):
        started = time.monotonic()
        assert ok(await client.post(f"/queue/{qid}/pop", params=params)) == {"items": []}
        assert time.monotonic() - started < PROMPT


# --------------------------------------------------------------------- notifications


async def test_notifications_cross_hosts_and_survive_a_database_restart() -> None:
    """Two notifiers on one database, as two Dapr hosts have: a push published by one
    wakes the other's waiter; after the database restarts, the listener comes back and
    the waiters look once (pushes made meanwhile were not heard)."""
    with PostgresServer() as pg:
        heard: list[tuple[str, int]] = []
        resyncs: list[int] = []
        a = PushNotifier(
            pg.url, "app", lambda q, n: heard.append((q, n)), lambda: resyncs.append(1)
        )
        b = PushNotifier(pg.url, "app", lambda q, n: None, lambda: None)
        other_app = PushNotifier(pg.url, "other", lambda q, n: None, lambda: None)
        for n in (a, b, other_app):
            await n.start()
        try:
            b.publish("q1", 2)
            b.publish("q1", 1)  # merged with the first if still pending
            other_app.publish("q1", 5)  # another app id on the same database: not ours
            a.publish("q2", 1)  # its own note: skipped
            await until(lambda: sum(n for _, n in heard) == 3, 2.0)
            await asyncio.sleep(0.1)
            assert {q for q, _ in heard} == {"q1"} and sum(n for _, n in heard) == 3
            # a push every ~2 ms: at most one note per NOTE_INTERVAL carries them all
            heard.clear()
            started = time.monotonic()
            for _ in range(100):
                b.publish("r", 1)
                await asyncio.sleep(0.002)
            await until(lambda: sum(n for _, n in heard) == 100, 5.0)
            notes_allowed = (time.monotonic() - started) / NOTE_INTERVAL + 2
            assert {q for q, _ in heard} == {"r"} and len(heard) <= notes_allowed, heard
            # one moment's pushes to many queues: one note per ~7 KB, every queue heard
            heard.clear()
            many = {f"{'m' * 100}-{i}": i + 1 for i in range(150)}
            for q, n in many.items():
                b.publish(q, n)
            notes = b.notes(many)
            assert len(notes) > 1 and all(len(x.encode()) <= NOTE_BYTES for x in notes)
            await until(lambda: dict(heard) == many, 5.0)
            await asyncio.to_thread(pg.restart)
            await until(lambda: resyncs == [1] and a.listening.is_set(), 15.0)
            b.publish("q3", 1)  # the sender's connection was closed: it opens a new one
            await until(lambda: ("q3", 1) in heard, 5.0)
        finally:
            for n in (a, b, other_app):
                await n.stop()


# --------------------------------------------------------------------- real sockets


def metric(url: str, name: str) -> float:
    for line in httpx.get(url + "/metrics", timeout=10).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"no {name} in /metrics")


def wait_for_waiters(url: str, n: int, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while metric(url, "pushpop_long_poll_waiters") != n:
        assert time.monotonic() < deadline, f"not {n} waiters in {within}s"
        time.sleep(0.02)


def raw_pop(port: int, q: str, wait: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.sendall(
        f"POST /queue/{q}/pop?wait_seconds={wait} HTTP/1.1\r\nHost: x\r\n"
        "Content-Length: 0\r\n\r\n".encode()
    )
    return s


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_a_client_gone_mid_wait_takes_nothing(
    servers: dict[str, ServerProcess], store: str, qid: str
) -> None:
    server = servers[store]
    before = metric(server.url, "pushpop_long_poll_waiters")
    s = raw_pop(server.port, qid, 20)
    wait_for_waiters(server.url, before + 1)
    s.close()  # the client hangs up while it waits
    wait_for_waiters(server.url, before)
    with httpx.Client(base_url=server.url, timeout=30) as c:
        ok(c.post(f"/queue/{qid}/push", json={"item": {"n": "mine"}}))
        time.sleep(0.2)  # had the gone waiter popped, it would have by now
        got = ok(c.post(f"/queue/{qid}/pop"))
    assert [x["item"] for x in got["items"]] == [{"n": "mine"}]


def test_sigterm_answers_waiters_at_once(tmp_path: Path, qid: str) -> None:
    server = ServerProcess(sqlite_path=tmp_path / "s.sqlite3", log_path=tmp_path / "s.log")
    server.start()
    try:
        answers: list[tuple[int, bytes]] = []

        def wait() -> None:
            r = httpx.post(f"{server.url}/queue/{qid}/pop", params={"wait_seconds": 20},
                           timeout=30)  # fmt: skip
            answers.append((r.status_code, r.content))

        threads = [threading.Thread(target=wait) for _ in range(3)]
        for t in threads:
            t.start()
        wait_for_waiters(server.url, 3)
        started = time.monotonic()
        assert server.proc is not None
        server.proc.terminate()
        for t in threads:
            t.join(5)
        assert time.monotonic() - started < 1.0 + PROMPT  # uvicorn's 0.1 s, and the rest
        assert answers == [(200, b'{"items":[]}')] * 3
        assert server.proc.wait(10) == -15  # uvicorn re-raises the signal once done
    finally:
        server.stop()


def test_a_thousand_idle_waiters_cost_next_to_no_cpu(tmp_path: Path) -> None:
    """1,000 long polls on 1,000 queues, idle for 10 s: < 5 % of one core for the server."""
    server = ServerProcess(
        sqlite_path=tmp_path / "idle.sqlite3", log_path=tmp_path / "idle.log",
        env={"PUSHPOP_MAX_CONNECTIONS": "1500"},
    )  # fmt: skip
    server.start()
    sockets: list[socket.socket] = []
    try:
        run = uuid.uuid4().hex[:6]
        for i in range(1000):
            sockets.append(raw_pop(server.port, f"idle-{run}-{i}", 20))
        wait_for_waiters(server.url, 1000, within=8)
        proc = psutil.Process(server.pid)
        time.sleep(0.5)  # let the last pops' turns finish
        cpu = proc.cpu_times()
        start, used0 = time.monotonic(), cpu.user + cpu.system
        time.sleep(10)
        cpu = proc.cpu_times()
        share = (cpu.user + cpu.system - used0) / (time.monotonic() - start)
        assert metric(server.url, "pushpop_long_poll_waiters") == 1000  # still waiting
        print(f"idle waiters: {share:.2%} of a core")
        assert share < 0.05, f"{share:.1%} of a core for 1,000 idle waiters"
    finally:
        for s in sockets:
            s.close()
        server.stop()
