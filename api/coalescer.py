"""Coalescing calls to a busy queue: N pushes (or N plain pops) cost one actor turn.

While a call to a queue is in flight, further pushes to it (and, in their own lane,
plain pops) wait here; when it returns they go as one ``Batch`` call. An idle queue's
call goes straight through. :class:`CoalescingInvoker` puts this in front of either
runtime's invoker when the app is built (``PUSHPOP_COALESCE``); its guarantees and
figures are in docs/how-it-works.md.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from actor_service.errors import PushpopError, StoreUnavailable
from actor_service.runtime.deadline import wait_until
from actor_service.stores.claim import Claim
from api.actor_calls import ActorInvoker

log = logging.getLogger("pushpop.coalescer")

# the methods whose requests can share a turn (see QueueActor.batch)
COALESCED = frozenset({"Push", "Pop"})
MAX_BATCH = 64  # requests per Batch call: bounds one turn's work and message size

Reply = dict[str, Any]
# (actor id, method, payload, absolute time.monotonic() deadline) -> the actor's reply
Send = Callable[[str, str, dict[str, Any], float], Awaitable[Reply]]


@dataclass(eq=False)
class _Waiter:
    payload: dict[str, Any]
    deadline: float
    reply: asyncio.Future[Reply] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


@dataclass(eq=False)
class _Lane:
    """One queue's calls of one method: at most one in flight, the rest waiting."""

    waiting: deque[_Waiter] = field(default_factory=deque)


@dataclass
class CoalescerStats:
    """Counters for ``/metrics``: how much coalescing actually happens."""

    batches: int = 0
    coalesced_requests: int = 0


class Coalescer:
    """Per (queue, method) lanes of waiting requests, each sent in arrival order.

    Each request keeps its own reply (one ``QUEUE_FULL`` fails no other) and its
    deadline: one still waiting at it answers 503 without ever being sent, and a batch
    carries its members' earliest deadline, so no member is answered 503 for a batch
    that later commits (:data:`actor_service.stores.base.call_deadline`).

    ``settle``: event-loop iterations a lane lets pass after answering a batch before it
    takes the next, so that the callers just answered, and their clients' next requests,
    join it instead of forming a second group that alternates with the first. It pays
    where a turn is dear (two sidecar hops in Dapr mode) and not in-process; it counts
    iterations, not time.
    """

    def __init__(self, send: Send, *, max_batch: int = MAX_BATCH, settle: int = 0) -> None:
        self._send = send
        self.max_batch = max_batch
        self.settle = settle
        self._lanes: dict[tuple[str, str], _Lane] = {}
        self._drains: set[asyncio.Task[None]] = set()
        self.stats = CoalescerStats()

    async def call(
        self, actor_id: str, method: str, payload: dict[str, Any], deadline: float
    ) -> Reply:
        """The actor's reply to this one request, coalesced with others if it has to wait."""
        key = (actor_id, method)
        lane = self._lanes.get(key)
        if lane is None:  # idle: straight through, no batching cost
            lane = self._lanes[key] = _Lane()
            try:
                return await self._send(actor_id, method, payload, deadline)
            finally:
                self._next(key, lane)
        waiter = _Waiter(payload, deadline)
        lane.waiting.append(waiter)
        try:
            return await wait_until(waiter.reply, deadline)
        except TimeoutError:
            if waiter in lane.waiting:  # never sent: nothing of it can commit
                lane.waiting.remove(waiter)
            raise StoreUnavailable(
                f"queue {actor_id!r} busy: this request did not get a turn before its deadline"
            ) from None

    def _next(self, key: tuple[str, str], lane: _Lane) -> None:
        """After a call: hand the lane to a drain task if requests queued up, else close it."""
        if lane.waiting:
            task = asyncio.create_task(self._drain(key, lane), name=f"pushpop-coalesce-{key}")
            self._drains.add(task)
            task.add_done_callback(self._drains.discard)
        elif self._lanes.get(key) is lane:
            del self._lanes[key]

    async def _drain(self, key: tuple[str, str], lane: _Lane) -> None:
        actor_id, method = key
        try:
            while lane.waiting:
                now = time.monotonic()
                batch: list[_Waiter] = []
                while lane.waiting and len(batch) < self.max_batch:
                    w = lane.waiting.popleft()
                    if not w.reply.done() and w.deadline > now:
                        batch.append(w)
                if batch:
                    await self._send_batch(actor_id, method, batch)
                    for _ in range(self.settle):  # see the class's docstring
                        await asyncio.sleep(0)
        finally:
            if self._lanes.get(key) is lane:
                del self._lanes[key]
            for w in lane.waiting:  # only if cancelled (shutdown): never leave one hanging
                if not w.reply.done():
                    w.reply.set_result({"error": StoreUnavailable("server stopping").to_dict()})

    async def _send_batch(self, actor_id: str, method: str, batch: list[_Waiter]) -> None:
        deadline = min(w.deadline for w in batch)
        try:
            if len(batch) == 1:
                replies = [await self._send(actor_id, method, batch[0].payload, deadline)]
            else:
                self.stats.batches += 1
                self.stats.coalesced_requests += len(batch)
                body = {"method": method, "requests": [w.payload for w in batch]}
                reply = await self._send(actor_id, "Batch", body, deadline)
                replies = reply["ok"]["replies"] if "ok" in reply else [reply] * len(batch)
                if len(replies) != len(batch):
                    raise PushpopError(
                        f"queue actor answered {len(replies)} replies to a batch of {len(batch)}"
                    )
        except PushpopError as err:
            replies = [{"error": err.to_dict()}] * len(batch)
        except Exception as exc:  # a bug must fail these callers, not strand them
            log.exception("coalesced %s to %s failed", method, actor_id)
            replies = [
                {"error": PushpopError(f"internal error: {exc.__class__.__name__}").to_dict()}
            ] * len(batch)
        for w, r in zip(batch, replies, strict=True):
            if not w.reply.done():
                w.reply.set_result(r)

    async def close(self) -> None:
        """Stop draining (shutdown): waiting callers get 503 rather than hang."""
        for task in list(self._drains):
            task.cancel()
        await asyncio.gather(*self._drains, return_exceptions=True)


class CoalescingInvoker(ActorInvoker):
    """``inner``'s actor calls, with pushes and plain pops coalesced per queue.

    Settles as ``inner.settle`` says (the Dapr invoker does, the embedded one does not).
    Anything else of ``inner`` (its runtime, its direct store, ...) reads through.
    """

    def __init__(self, inner: ActorInvoker) -> None:
        super().__init__(timeout=inner.timeout)
        self.inner = inner
        self.coalescer = Coalescer(inner.invoke, settle=inner.settle)

    @property
    def claim(self) -> Claim | None:
        return self.inner.claim

    @claim.setter
    def claim(self, claim: Claim | None) -> None:
        self.inner.claim = claim

    async def invoke(
        self, actor_id: str, method: str, payload: dict[str, Any], deadline: float
    ) -> Reply:
        if method in COALESCED:
            return await self.coalescer.call(actor_id, method, payload, deadline)
        return await self.inner.invoke(actor_id, method, payload, deadline)

    async def start(self) -> None:
        await self.inner.start()

    async def stop(self) -> None:
        await self.coalescer.close()
        await self.inner.stop()

    async def ready(self) -> None:
        await self.inner.ready()

    def active_actors(self) -> float:
        return self.inner.active_actors()

    def describe(self) -> str:
        return self.inner.describe()

    def __getattr__(self, name: str) -> Any:
        if name == "inner":  # not set yet (during __init__): no recursion
            raise AttributeError(name)
        return getattr(self.inner, name)


__all__ = ["COALESCED", "Coalescer", "CoalescingInvoker"]
