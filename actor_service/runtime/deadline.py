"""Waiting for work that must not be cancelled, but only until a deadline.

A caller that gives up on an actor call must not cancel it: a turn stopped half-way would
leave the actor's cached state out of step with the store. :func:`wait_until` is
``asyncio.wait_for`` over ``asyncio.shield`` with one future and one timer, cheap enough
for every request's path (docs/benchmarks.md, "Design choices measured").
"""

from __future__ import annotations

import asyncio
import time
from typing import TypeVar

T = TypeVar("T")


async def wait_until(fut: asyncio.Future[T], deadline: float) -> T:
    """``fut``'s result, or :class:`TimeoutError` at ``deadline`` (``time.monotonic()``).

    ``fut`` is never cancelled: not at the deadline, and not when the waiting task is
    cancelled; it runs on, and whoever holds it may still collect its result.
    """
    if not fut.done():
        loop = asyncio.get_running_loop()
        woken = loop.create_future()

        def wake(_: object = None) -> None:
            if not woken.done():
                woken.set_result(None)

        timer = loop.call_later(max(0.0, deadline - time.monotonic()), wake)
        fut.add_done_callback(wake)
        try:
            await woken
        finally:
            timer.cancel()
            fut.remove_done_callback(wake)
        if not fut.done():
            raise TimeoutError
    return fut.result()


__all__ = ["wait_until"]
