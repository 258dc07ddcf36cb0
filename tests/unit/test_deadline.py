"""wait_until: a result by the deadline, else TimeoutError, and the work is never cancelled."""

from __future__ import annotations

import asyncio
import time

import pytest

from actor_service.runtime.deadline import wait_until


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
