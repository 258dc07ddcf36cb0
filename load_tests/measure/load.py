"""Load from one asyncio process: an open loop on a timetable and a closed loop.

The open loop sends on schedule whatever the server does and counts latency from the
scheduled send, so a slow server cannot hide behind a slow client (no coordinated
omission); the closed loop measures what a build serves at saturation. Requests are
callables ``session -> status``; ``pusher``, ``popper`` and ``rotate`` make the usual ones.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiohttp
from hdrh.histogram import HdrHistogram

from load_tests.measure.histograms import merged, new_histogram, record_us

Request = Callable[[aiohttp.ClientSession], Awaitable[int]]  # -> HTTP status
SPIN_BEFORE = 0.0015  # s: sleep until this long before a send, then yield to the loop


@dataclass
class Result:
    """What one load phase saw: latencies (µs histogram), requests sent, errors."""

    name: str
    hist: HdrHistogram
    sent: int
    errors: int
    seconds: float

    def ms(self, percentile: float) -> float:
        return self.hist.get_value_at_percentile(percentile) / 1000

    @property
    def rate(self) -> float:
        return self.sent / self.seconds

    def row(self) -> list[str]:
        return [
            self.name, f"{self.rate:.0f}", f"{self.ms(50):.2f}", f"{self.ms(99):.2f}",
            f"{self.hist.get_max_value() / 1000:.2f}", str(self.errors),
        ]  # fmt: skip


def merge(name: str, parts: list[Result], *, concurrent: bool = False) -> Result:
    """Phases added up: one histogram, the sums of requests and errors, and the sum of
    their seconds (``concurrent``: they ran at the same time, the longest)."""
    seconds = [p.seconds for p in parts]
    return Result(
        name, merged(p.hist for p in parts), sum(p.sent for p in parts),
        sum(p.errors for p in parts), max(seconds) if concurrent else sum(seconds),
    )  # fmt: skip


async def wait_until(t: float) -> None:
    """Return at ``perf_counter()`` ``t``, within microseconds rather than the loop's
    timer slack (an event-loop sleep wakes late, which latency counted from the
    scheduled send would charge to the server). Requests in flight are served meanwhile."""
    delay = t - time.perf_counter() - SPIN_BEFORE
    if delay > 0:
        await asyncio.sleep(delay)
    while time.perf_counter() < t:  # noqa: ASYNC110 - a spin on the clock, no event to wait on
        await asyncio.sleep(0)


async def open_loop(
    session: aiohttp.ClientSession, rate: float, seconds: float, request: Request, name: str
) -> Result:
    """Send ``request()`` at ``rate``/s on schedule; latency from the scheduled time."""
    hist = new_histogram()
    errors = 0
    tasks: set[asyncio.Task[None]] = set()
    # perf_counter, not loop.time(): uvloop's clock ticks in whole milliseconds
    start = time.perf_counter()
    n = int(rate * seconds)

    async def one(scheduled: float) -> None:
        nonlocal errors
        try:
            if await request(session) != 200:
                errors += 1
        except aiohttp.ClientError:
            errors += 1
        record_us(hist, (time.perf_counter() - scheduled) * 1e6)

    for i in range(n):
        scheduled = start + i / rate
        await wait_until(scheduled)
        task = asyncio.create_task(one(scheduled))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    await asyncio.gather(*tasks)
    return Result(name, hist, n, errors, seconds)


async def closed_loop(
    session: aiohttp.ClientSession, clients: int, seconds: float, request: Request, name: str
) -> Result:
    """``clients`` loops, each sending its next request when the last one answered."""
    hist = new_histogram()
    count = errors = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal count, errors
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            try:
                ok = await request(session) == 200
            except aiohttp.ClientError:
                ok = False
            record_us(hist, (time.perf_counter() - t0) * 1e6)
            count += 1
            errors += not ok

    await asyncio.gather(*(worker() for _ in range(clients)))
    return Result(name, hist, count, errors, seconds)


def pusher(url: str, qid: str, priority: int = 1) -> Request:
    """A push of one 64-byte item to ``qid``."""
    body = json.dumps({"item": {"payload": "x" * 64}, "priority": priority})
    headers = {"content-type": "application/json"}

    async def req(session: aiohttp.ClientSession) -> int:
        async with session.post(f"{url}/queue/{qid}/push", data=body, headers=headers) as r:
            await r.read()
            return r.status

    return req


def popper(url: str, qid: str, depth: int = 10) -> Request:
    async def req(session: aiohttp.ClientSession) -> int:
        async with session.post(f"{url}/queue/{qid}/pop?depth={depth}") as r:
            await r.read()
            return r.status

    return req


def getter(url: str, path: str = "/health") -> Request:
    """A ``GET``: with ``/health``, the client and HTTP stack doing no work (a floor)."""

    async def req(session: aiohttp.ClientSession) -> int:
        async with session.get(url + path) as r:
            await r.read()
            return r.status

    return req


def rotate(requests: list[Request]) -> Request:
    """One request that takes turns over several (one per queue, say)."""
    turn = itertools.count()

    def request(session: aiohttp.ClientSession) -> Awaitable[int]:
        return requests[next(turn) % len(requests)](session)

    return request


async def fill(session: aiohttp.ClientSession, url: str, qid: str, n: int) -> None:
    """``n`` items into ``qid``, 1,000 per request."""
    for start in range(0, n, 1000):
        k = min(1000, n - start)
        items = [{"item": {"n": start + i, "payload": "x" * 64}, "priority": 1} for i in range(k)]
        async with session.post(f"{url}/queue/{qid}/push", json={"items": items}) as r:
            if r.status != 200:
                raise RuntimeError(f"filling {qid}: {r.status} {await r.text()}")
