"""The measurement toolkit (``load_tests/measure``) against real parts: an HTTP server on a
socket for the load loops, a busy child process for the CPU meter, pgbench on PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import time
from collections.abc import AsyncIterator

import aiohttp
import psycopg
import pytest
from aiohttp import web

from actor_service.stores.postgres import SCHEMA, TABLE
from load_tests.measure.cpu import Meter, per_op, tree_cpu
from load_tests.measure.histograms import new_histogram, percentiles_ms, record_us
from load_tests.measure.load import closed_loop, getter, merge, open_loop, rotate
from load_tests.measure.pgbench import PUSH_STATEMENT, run_pgbench
from supervise.pgserver import PostgresServer

DELAY = 0.02  # s: what the server takes per request


@contextlib.asynccontextmanager
async def serving() -> AsyncIterator[tuple[str, list[str]]]:
    """A real HTTP server: ``/slow`` answers after ``DELAY``, ``/fail`` with 500; yields
    its URL and the paths it was asked for."""
    seen: list[str] = []

    async def slow(request: web.Request) -> web.Response:
        seen.append(request.path)
        await asyncio.sleep(DELAY)
        return web.Response(text="ok")

    async def fail(request: web.Request) -> web.Response:
        seen.append(request.path)
        return web.Response(status=500)

    app = web.Application()
    app.router.add_get("/slow", slow)
    app.router.add_get("/fail", fail)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        yield f"http://127.0.0.1:{port}", seen
    finally:
        await runner.cleanup()


async def test_open_loop_keeps_its_timetable_and_counts_from_the_scheduled_send() -> None:
    async with serving() as (url, seen), aiohttp.ClientSession() as s:
        started = time.perf_counter()
        r = await open_loop(s, 100, 0.5, rotate([getter(url, "/slow"), getter(url, "/fail")]), "x")
        took = time.perf_counter() - started
    # 50 sends on schedule, alternating: every second one failed
    assert (r.sent, r.errors, len(seen)) == (50, 25, 50)
    assert seen[:4] == ["/slow", "/fail", "/slow", "/fail"]
    assert r.hist.get_total_count() == 50 and r.rate == 100
    assert r.ms(99) >= DELAY * 1000 * 0.9 and r.ms(0) > 0  # the server's delay is in it
    assert 0.5 <= took < 0.5 + 1.0  # the last send at 0.49 s, then its answer


async def test_closed_loop_sends_the_next_request_when_the_last_answered() -> None:
    async with serving() as (url, _), aiohttp.ClientSession() as s:
        r = await closed_loop(s, 2, 0.4, getter(url, "/slow"), "x")
    # two loops, each at most one request per DELAY: at most 2 * 0.4 / DELAY (+1 each)
    assert 10 <= r.sent <= 2 * (0.4 / DELAY + 1) and r.errors == 0
    assert r.ms(50) >= DELAY * 1000 * 0.9


def test_merge_adds_phases_one_after_the_other_or_side_by_side() -> None:
    from load_tests.measure.load import Result

    def part(values: list[int], seconds: float) -> Result:
        h = new_histogram()
        for v in values:
            record_us(h, v)
        return Result("", h, len(values), 1, seconds)

    parts = [part([1000, 2000], 2.0), part([3000], 1.0)]
    seq, side = merge("a", parts), merge("b", parts, concurrent=True)
    assert (seq.sent, seq.errors, seq.seconds, side.seconds) == (3, 2, 3.0, 2.0)
    assert side.rate == 1.5 and percentiles_ms(seq.hist)["max"] == pytest.approx(3.0, rel=1e-2)
    assert percentiles_ms(new_histogram()) == {"count": 0.0}


def test_meter_counts_the_whole_process_tree() -> None:
    """An idle parent whose child burns CPU: the tree's CPU is the child's."""
    burn = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.4: pass\n"
    code = (f"import subprocess, sys, time\nsubprocess.Popen([sys.executable, '-c', {burn!r}])"
            "\ntime.sleep(30)")  # fmt: skip
    parent = subprocess.Popen([sys.executable, "-c", code])
    try:
        meter, cpu = Meter(pg_pid=parent.pid), {}
        with meter.measure(cpu, server_pid=parent.pid):
            time.sleep(1.5)
        assert set(cpu) == {"PostgreSQL", "server", "load generator"}
        assert cpu["server"] >= 0.2, cpu
        assert cpu["PostgreSQL"] == pytest.approx(cpu["server"], abs=0.05)  # the same tree
    finally:
        parent.kill()
        parent.wait()
    assert tree_cpu(parent.pid) == 0.0  # gone: nothing to count
    assert per_op({"server": 0.5}, 1000) == {"server": 500.0}


@pytest.mark.postgres
def test_pgbench_runs_the_push_statement_paced_and_unpaced(pg: PostgresServer) -> None:
    url = pg.database("measure_pgbench", fresh=True)
    with psycopg.connect(url) as conn, conn.transaction():
        for statement in SCHEMA:
            conn.execute(statement)
    free = run_pgbench(url, PUSH_STATEMENT, 2, 1)
    assert free.tps > 0 and free.latency_avg_ms and "tps = " in free.output
    paced = run_pgbench(url, PUSH_STATEMENT, 1, 1, rate=50)
    assert 20 < paced.tps < 80 and 0 < paced.p50_ms <= paced.p99_ms
    with psycopg.connect(url) as conn:
        rows = conn.execute(f"SELECT count(*) FROM {TABLE} WHERE key LIKE 'bench||%'").fetchone()
    assert rows and rows[0] >= 2  # the statement really wrote a meta and a segment row
    with pytest.raises(RuntimeError, match="pgbench failed"):
        run_pgbench(url, f"SELECT no_such_column FROM {TABLE};\n", 1, 1)
