"""Long-poll pop (``wait_seconds``): callers wait here, in the gateway, never in an actor.

A pop that finds its queue empty parks its caller in :class:`WaiterRegistry`: a future,
holding no actor turn, no connection and no timer of its own (one heap behind one
``loop.call_at`` handle), so idle waiters cost no CPU. Pushes, an empty pop's ``next_at``,
the wait's end, a hang-up and shutdown wake them; a woken caller pops again, keeping its
place if it finds nothing. The rules and their reasons: docs/long-poll.md.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Gauge
from starlette.types import Receive

from api.settings import Settings

if TYPE_CHECKING:
    from api.push_notify import PushNotifier

MAX_WAIT_SECONDS = 20
# the earliest a scheduled wake fires after the pop that asked for it: clocks of hosts
# (and the actor's "now") differ by a little, and a wake that comes too early pops again
MIN_TIMED_DELAY = 0.01
# scope key http_server.GuardedHttpProtocol calls when a graceful shutdown begins
SHUTDOWN_HOOK = "pushpop.on_shutdown"

# why a sleeping waiter's future resolved
WOKEN, TIMEOUT, GONE, CLOSED = "woken", "timeout", "gone", "closed"

Result = dict[str, Any]


class Waiter:
    """One parked pop: its place in its queue's line, its deadline, its future."""

    __slots__ = ("busy", "chain", "deadline", "dirty", "future", "gone", "holds_wake", "queue_id")

    def __init__(self, queue_id: str, deadline: float) -> None:
        self.queue_id = queue_id
        self.deadline = deadline  # loop.time()
        self.future: asyncio.Future[str] | None = None  # set while asleep
        self.busy = True  # popping (not asleep): pushes mark it dirty instead of waking it
        self.dirty = False  # a push landed while it was popping
        self.holds_wake = False  # woken and has not popped since: pass it on if it leaves
        self.chain = False  # woken by time: wake the next one too if it gets items
        self.gone = False  # its client hung up

    def asleep(self) -> bool:
        return self.future is not None and not self.future.done()

    def resolve(self, why: str) -> None:
        if self.future is not None and not self.future.done():
            self.future.set_result(why)


class WaiterRegistry:
    """This process's parked pops, by queue, in arrival order; one shared timer.

    ``publish(queue_id, n)``, if given, tells other hosts about a push made here
    (:class:`api.push_notify.PushNotifier`); :meth:`remote_push` is its way back in.
    """

    def __init__(self, publish: Callable[[str, int], None] | None = None) -> None:
        self.publish = publish
        self.closed = False
        self.count = 0  # waiters registered now (a gauge in /metrics)
        self._queues: dict[str, dict[Waiter, None]] = {}  # insertion order = arrival
        self._heap: list[tuple[float, int, Waiter | str]] = []
        self._seq = itertools.count()
        self._timed: dict[str, float] = {}  # queue -> its scheduled wake (loop time)
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = float("inf")

    # ------------------------------------------------------------------ the pop
    async def pop(
        self,
        queue_id: str,
        seconds: int,
        pop: Callable[[], Awaitable[Result]],
        receive: Receive,
        scope: MutableMapping[str, Any],
    ) -> Result:
        """Pop now; if that finds nothing, wait up to ``seconds`` for something to pop.

        ``pop`` makes one actor call; ``receive`` is the request's ASGI receive (watched
        for ``http.disconnect`` while asleep); ``scope`` gets the shutdown hook.
        """
        if seconds <= 0 or self.closed:
            return strip(await pop())
        loop = asyncio.get_running_loop()
        w = Waiter(queue_id, loop.time() + seconds)
        self._enter(w)
        scope[SHUTDOWN_HOOK] = self.close
        watcher: asyncio.Task[None] | None = None
        got = False
        try:
            while True:
                w.busy, w.dirty, w.holds_wake = True, False, False
                result = await pop()
                next_at = result.get("next_at")
                result = strip(result)
                if result["items"]:
                    got = True
                    return result
                if w.dirty and not self.closed and not w.gone:
                    continue  # a push landed during the pop: it may not have seen it
                if self.closed or w.gone or loop.time() >= w.deadline:
                    return result
                if next_at is not None:
                    self._schedule(queue_id, float(next_at), w.deadline, loop)
                if watcher is None:  # first sleep: only now a deadline and a watcher
                    self._push_heap(w.deadline, w)
                    watcher = asyncio.create_task(self._watch(w, receive))
                w.future = loop.create_future()
                w.busy = False
                why = await w.future
                w.future = None
                if why != WOKEN or w.gone:
                    return result
        finally:
            if watcher is not None:
                watcher.cancel()
            self._leave(w, got)

    def export(self, registry: CollectorRegistry) -> None:
        """``pushpop_long_poll_waiters`` in /metrics: pops waiting now."""
        Gauge(
            "pushpop_long_poll_waiters", "Long-poll pops waiting in this process",
            registry=registry,
        ).set_function(lambda: self.count)  # fmt: skip

    # ------------------------------------------------------------------ wake-ups
    def pushed(self, queue_id: str, n: int) -> None:
        """``n`` items were pushed here to ``queue_id``: wake up to ``n`` sleepers."""
        if n > 0:
            self._wake(queue_id, n)
            if self.publish is not None:
                self.publish(queue_id, n)

    def remote_push(self, queue_id: str, n: int) -> None:
        """Another host pushed ``n`` items to ``queue_id``."""
        self._wake(queue_id, n)

    def resync(self) -> None:
        """Pushes may have gone unheard (the notification link was down): every queue's
        oldest sleeper looks once, and passes the look on if it finds something."""
        for queue_id in list(self._queues):
            self._wake(queue_id, 1, chain=True)

    def close(self) -> None:
        """Shutdown: every waiter answers now (asleep: at once; popping: after its pop)."""
        if self.closed:
            return
        self.closed = True
        for line in self._queues.values():
            for w in line:
                w.resolve(CLOSED)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _wake(self, queue_id: str, n: int, chain: bool = False) -> int:
        line = self._queues.get(queue_id)
        if not line:
            return 0
        woken = 0
        for w in line:
            if w.asleep():
                if woken < n:
                    w.holds_wake, w.chain, w.busy = True, chain, True
                    w.resolve(WOKEN)
                    woken += 1
            elif w.busy:
                w.dirty = True  # its pop in flight may have read the queue before this
        return woken

    # ------------------------------------------------------------------ bookkeeping
    def _enter(self, w: Waiter) -> None:
        self._queues.setdefault(w.queue_id, {})[w] = None
        self.count += 1

    def _leave(self, w: Waiter, got: bool) -> None:
        line = self._queues.get(w.queue_id)
        if line is None or w not in line:
            return
        del line[w]
        self.count -= 1
        if not line:
            del self._queues[w.queue_id]
        if self.closed:
            return
        if w.holds_wake or (got and w.chain):
            # woken but leaving without popping (client gone), or a timed wake that found
            # items: there may be more, the next sleeper looks
            self._wake(w.queue_id, 1, chain=w.chain)

    def _gone(self, w: Waiter) -> None:
        w.gone = True
        w.resolve(GONE)

    async def _watch(self, w: Waiter, receive: Receive) -> None:
        """Wait for the client to hang up (the request body was read long ago)."""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                self._gone(w)
                return

    def _schedule(
        self, queue_id: str, next_at: float, until: float, loop: asyncio.AbstractEventLoop
    ) -> None:
        now = loop.time()
        when = now + max(MIN_TIMED_DELAY, next_at - time.time() + 0.002)
        if when >= until:
            return  # after this waiter's deadline: a later waiter schedules its own
        current = self._timed.get(queue_id)
        if current is not None and now < current <= when:
            return  # an earlier wake of this queue is already set
        self._timed[queue_id] = when
        self._push_heap(when, queue_id)

    def _push_heap(self, when: float, entry: Waiter | str) -> None:
        heapq.heappush(self._heap, (when, next(self._seq), entry))
        if when < self._timer_at and not self.closed:
            self._rearm(when)

    def _rearm(self, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_at(when, self._fire)
        self._timer_at = when

    def _fire(self) -> None:
        self._timer, self._timer_at = None, float("inf")
        # call_at may run a handle up to a clock tick early: count that as due
        now = asyncio.get_running_loop().time() + 0.001
        heap = self._heap
        while heap and heap[0][0] <= now:
            when, _, entry = heapq.heappop(heap)
            if isinstance(entry, Waiter):
                entry.resolve(TIMEOUT)  # no-op if it left or is popping
            elif self._timed.get(entry) == when:
                del self._timed[entry]
                self._wake(entry, 1, chain=True)
        if heap and not self.closed:
            self._rearm(heap[0][0])


async def start_notifier(registry: WaiterRegistry, settings: Settings) -> PushNotifier | None:
    """In Dapr mode on PostgreSQL, link this host's registry to the other hosts'
    (:mod:`api.push_notify`); elsewhere a host is alone and needs no link."""
    if settings.runtime != "dapr" or settings.store != "postgres" or not settings.database_url:
        return None
    from api.push_notify import PushNotifier

    notifier = PushNotifier(
        settings.database_url, settings.app_id, registry.remote_push, registry.resync
    )
    registry.publish = notifier.publish
    await notifier.start()
    return notifier


def strip(result: Result) -> Result:
    """The actor's answer without its internal ``next_at``."""
    if "next_at" in result:
        return {k: v for k, v in result.items() if k != "next_at"}
    return result


__all__ = ["MAX_WAIT_SECONDS", "SHUTDOWN_HOOK", "WaiterRegistry", "start_notifier", "strip"]
