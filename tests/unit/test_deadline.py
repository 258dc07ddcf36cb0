"""The request deadline: computed once per request by the gateway's invoker, set for the
call by the embedded runtime (the one place), and what the store sees; and wait_until: a
result by the deadline, else TimeoutError, and the work is never cancelled."""

from __future__ import annotations

import asyncio
import time

import pytest

from actor_service.runtime.deadline import wait_until
from actor_service.runtime.embedded import EmbeddedRuntime
from actor_service.stores.base import Transaction, call_deadline
from actor_service.stores.memory import MemoryStore
from api.coalescer import CoalescingInvoker
from api.invoker import EmbeddedInvoker

PUSH = {"items": [{"item": {"n": 1}, "priority": 0}]}


class DeadlineStore(MemoryStore):
    """The in-memory store, noting the deadline each save runs under."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[float | None] = []

    async def transact(self, tx: Transaction) -> None:
        self.seen.append(call_deadline.get())
        await super().transact(tx)


async def test_the_store_sees_the_deadline_the_invoker_computed() -> None:
    """The runtime's own timeout is 30 s, the request's 3 s: the store sees the request's,
    for a lone call and for coalesced ones, and nothing leaks into the caller."""
    store = DeadlineStore()
    inner = EmbeddedInvoker(EmbeddedRuntime(store, turn_timeout=30.0))
    inner.timeout = 3.0
    invoker = CoalescingInvoker(inner)
    await invoker.start()
    try:
        before = time.monotonic()
        await invoker.call("lone", "Push", PUSH)
        await asyncio.gather(*(invoker.call("busy", "Push", PUSH) for _ in range(20)))
        await invoker.call("lone", "Stats", {})  # straight through, not coalesced
        after = time.monotonic()
    finally:
        await invoker.stop()
    assert invoker.coalescer.stats.batches >= 1  # the 20 did share turns
    assert 2 <= len(store.seen) < 21
    assert all(d is not None and before + 3.0 <= d <= after + 3.0 for d in store.seen)
    assert call_deadline.get() is None


async def test_a_call_without_a_deadline_inherits_its_callers_or_takes_the_runtimes() -> None:
    """Actor to actor (the dead-letter hand-over) inherits the calling turn's deadline; a
    direct call to the runtime gets ``turn_timeout``."""
    store = DeadlineStore()
    rt = EmbeddedRuntime(store, turn_timeout=30.0)
    await rt.start()
    try:
        token = call_deadline.set(time.monotonic() + 5.0)
        try:
            inherited = call_deadline.get()
            await rt.invoke("q", "Push", PUSH)
        finally:
            call_deadline.reset(token)
        before = time.monotonic()
        await rt.invoke("q", "Push", PUSH)
        after = time.monotonic()
    finally:
        await rt.stop()
    first, second = store.seen
    assert first == inherited
    assert second is not None and before + 30.0 <= second <= after + 30.0


async def _slow(seconds: float, value: str) -> str:
    await asyncio.sleep(seconds)
    return value


def test_a_result_in_time_is_returned() -> None:
    async def main() -> None:
        task = asyncio.ensure_future(_slow(0.01, "done"))
        assert await wait_until(task, time.monotonic() + 5) == "done"

    asyncio.run(main())


def test_a_finished_future_answers_even_past_its_deadline() -> None:
    async def main() -> None:
        fut = asyncio.get_running_loop().create_future()
        fut.set_result(7)
        assert await wait_until(fut, time.monotonic() - 1) == 7

    asyncio.run(main())


def test_the_deadline_raises_and_leaves_the_work_running() -> None:
    async def main() -> None:
        task = asyncio.ensure_future(_slow(0.2, "late"))
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await wait_until(task, started + 0.05)
        assert 0.04 <= time.monotonic() - started < 0.19
        assert not task.cancelled() and not task.done()
        assert await task == "late"  # the caller gave up; the work finished regardless

    asyncio.run(main())


def test_cancelling_the_waiter_does_not_cancel_the_work() -> None:
    async def main() -> None:
        task = asyncio.ensure_future(_slow(0.1, "kept"))
        waiter = asyncio.ensure_future(wait_until(task, time.monotonic() + 5))
        await asyncio.sleep(0.01)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert await task == "kept"

    asyncio.run(main())


def test_an_exception_of_the_work_reaches_the_waiter() -> None:
    async def boom() -> None:
        raise ValueError("inside")

    async def main() -> None:
        with pytest.raises(ValueError, match="inside"):
            await wait_until(asyncio.ensure_future(boom()), time.monotonic() + 5)

    asyncio.run(main())
