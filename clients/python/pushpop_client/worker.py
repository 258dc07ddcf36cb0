"""A worker loop: long-poll pops with ack, one handler call per message, and its lock kept.

Each of ``concurrency`` slots pops one item with ``require_ack`` and runs the handler; it
then acknowledges, or on an exception releases with ``backoff(deliveries)`` (dead-letters
after ``max_attempts`` deliveries); the lock is extended every third of the ttl meanwhile.
:class:`AsyncWorker` runs in your event loop, :class:`Worker` on its own; how ``stop()``
and signals end a worker: README.md, "Stopping a worker".
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import logging
import math
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from .client import AsyncClient, Client
from .errors import LockError, LockLifetimeExceededError, PushpopError
from .models import Message

log = logging.getLogger("pushpop_client.worker")

Handler = Callable[[Message], Any]
STOP_GRACE = 1.0  # seconds a pop in flight may still answer after stop() before it is cut
IDLE_POLL = 0.25  # seconds: the shortest time between two pops of one slot that got nothing


def default_backoff(deliveries: int) -> float:
    """Release delay after the ``deliveries``-th failure: 1, 2, 4, ... up to 300 seconds."""
    return float(min(300, 2 ** (deliveries - 1)))


@dataclass
class WorkerStats:
    """What a worker did so far (read while it runs, or after)."""

    succeeded: int = 0
    failed: int = 0
    released: int = 0
    dead_lettered: int = 0
    extended: int = 0


class AsyncWorker:
    """Run ``handler`` on every message of ``queue``: ``await worker.run()``, ``worker.stop()``.

    ``handler(message)`` may be a coroutine function or a plain function (run in a thread).
    ``max_attempts``: after that many deliveries a failing item is dead-lettered (None: never
    by the worker; a queue's ``max_deliveries`` setting still applies on the server).
    """

    def __init__(
        self,
        client: AsyncClient,
        queue: str,
        handler: Handler,
        concurrency: int = 1,
        ttl_seconds: int = 30,
        wait_seconds: int = 20,
        max_attempts: int | None = None,
        backoff: Callable[[int], float] = default_backoff,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.client = client
        self.queue = queue
        self.handler = handler
        self.concurrency = concurrency
        self.ttl_seconds = ttl_seconds
        self.wait_seconds = wait_seconds
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.stats = WorkerStats()
        self._is_async = inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(
            getattr(handler, "__call__", None)  # noqa: B004 (an object with async __call__)
        )
        self._stopping = False
        self._stop_event: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._main: asyncio.Future[Any] | None = None
        self._pops: set[asyncio.Future[Any]] = set()
        self._executor: ThreadPoolExecutor | None = None

    # -- control -------------------------------------------------------------------------

    def stop(self) -> None:
        """Take nothing new; let running handlers finish. Safe from any thread."""
        if self._loop is None:  # not running yet: run() returns at once
            self._stopping = True
            return
        with contextlib.suppress(RuntimeError):  # the loop has closed: nothing runs
            self._loop.call_soon_threadsafe(self._stop_now)

    def _stop_now(self) -> None:
        if self._stopping and self._main is not None:  # a second stop: cancel the handlers
            self._main.cancel()
            return
        self._stopping = True
        if self._stop_event is not None:
            self._stop_event.set()
        if self._loop is not None:
            self._loop.call_later(STOP_GRACE, self._cut_waiting_pops)

    def _cut_waiting_pops(self) -> None:
        for p in list(self._pops):
            p.cancel()

    async def run(self, handle_signals: bool = True) -> None:
        """Work until :meth:`stop` (or SIGTERM/SIGINT when ``handle_signals`` and in the main
        thread); returns once every slot has finished what it held."""
        self._loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        if self._stopping:
            self._stop_event.set()
        installed = self._install_signals() if handle_signals else []
        if not self._is_async:
            self._executor = ThreadPoolExecutor(self.concurrency, thread_name_prefix="pushpop")
        try:
            self._main = asyncio.gather(*(self._slot() for _ in range(self.concurrency)))
            with contextlib.suppress(asyncio.CancelledError):
                await self._main
        finally:
            for sig in installed:
                self._loop.remove_signal_handler(sig)
            if self._executor is not None:
                self._executor.shutdown(wait=True)

    def _install_signals(self) -> list[signal.Signals]:
        if threading.current_thread() is not threading.main_thread():
            return []
        assert self._loop is not None
        done: list[signal.Signals] = []
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                self._loop.add_signal_handler(sig, self._stop_now)
            except (NotImplementedError, RuntimeError):  # not supported here
                continue
            done.append(sig)
        return done

    # -- one slot ------------------------------------------------------------------------

    async def _slot(self) -> None:
        errors_in_row = 0
        while not self._stopping:
            started = time.monotonic()
            pop = asyncio.ensure_future(
                self.client.pop(
                    self.queue, 1, require_ack=True, ttl_seconds=self.ttl_seconds,
                    wait_seconds=self.wait_seconds,
                )
            )  # fmt: skip
            self._pops.add(pop)
            try:
                got = await pop
            except asyncio.CancelledError:
                if pop.cancelled() and self._stopping:  # cut by stop() after its grace
                    return
                raise
            except PushpopError as exc:
                errors_in_row += 1
                log.warning("pushpop worker %s: pop failed: %s", self.queue, exc)
                await self._pause(min(30.0, 0.5 * 2**errors_in_row))
                continue
            finally:
                self._pops.discard(pop)
            errors_in_row = 0
            if not got.items or got.lock_id is None:
                # an empty answer sooner than IDLE_POLL (no wait asked, or a server that does
                # not wait): pause, so an idle slot sends a few pops a second, not thousands
                await self._pause(IDLE_POLL - (time.monotonic() - started))
                continue
            if self._stopping:  # answered as we stopped: give it back untouched
                await self._end(got.lock_id, "release", got.items[0])
                return
            await self._process(got.items[0], got.lock_id)

    async def _pause(self, seconds: float) -> None:
        assert self._stop_event is not None
        if seconds <= 0:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop_event.wait(), seconds)

    async def _process(self, msg: Message, lock_id: str) -> None:
        if self.max_attempts is not None and msg.deliveries > self.max_attempts:
            log.warning(
                "pushpop worker %s: message %s delivered %d times (max_attempts %d): "
                "dead-lettered without running the handler",
                self.queue, msg.id, msg.deliveries, self.max_attempts,
            )  # fmt: skip
            await self._end(lock_id, "dead_letter", msg)
            return
        keeper = asyncio.ensure_future(self._keep_alive(lock_id, msg))
        try:
            await self._call(msg)
        except asyncio.CancelledError:  # a second stop signal: give the item back
            await asyncio.shield(self._end(lock_id, "release", msg))
            raise
        except Exception as exc:
            self.stats.failed += 1
            await self._failed(msg, lock_id, exc)
        else:
            self.stats.succeeded += 1
            await self._end(lock_id, "acknowledge", msg)
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper

    async def _call(self, msg: Message) -> None:
        if self._is_async:
            await self.handler(msg)
        else:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(self._executor, functools.partial(self.handler, msg))

    async def _failed(self, msg: Message, lock_id: str, exc: Exception) -> None:
        last = self.max_attempts is not None and msg.deliveries >= self.max_attempts
        delay = 0 if last else max(0, math.ceil(self.backoff(msg.deliveries)))
        then = "dead-lettered" if last else f"released, back in {delay}s"
        log.warning(
            "pushpop worker %s: message %s (delivery %d) failed: %s: %s; %s",
            self.queue, msg.id, msg.deliveries, exc.__class__.__name__, exc, then,
        )  # fmt: skip
        await self._end(lock_id, "dead_letter" if last else "release", msg, delay or None)

    async def _end(
        self, lock_id: str, how: str, msg: Message, delay_seconds: int | None = None
    ) -> None:
        """Acknowledge, release or dead-letter; a failure is logged (the lock then expires
        and the item comes back: at least once, never lost)."""
        try:
            if how == "acknowledge":
                await self.client.acknowledge(self.queue, lock_id)
            elif how == "release":
                await self.client.release(self.queue, lock_id, delay_seconds)
                self.stats.released += 1
            else:
                await self.client.dead_letter(self.queue, lock_id)
                self.stats.dead_lettered += 1
        except PushpopError as exc:
            log.warning(
                "pushpop worker %s: %s of message %s failed: %s (it comes back when the "
                "lock expires)", self.queue, how, msg.id, exc,
            )  # fmt: skip

    async def _keep_alive(self, lock_id: str, msg: Message) -> None:
        """Every third of the ttl, push the expiry later by (at least) that much."""
        every = self.ttl_seconds / 3
        add = max(1, math.ceil(every))
        while True:
            await asyncio.sleep(every)
            try:
                await self.client.extend_lock(self.queue, lock_id, add)
                self.stats.extended += 1
            except (LockError, LockLifetimeExceededError) as exc:
                log.warning(
                    "pushpop worker %s: cannot keep the lock of message %s: %s",
                    self.queue, msg.id, exc,
                )  # fmt: skip
                return
            except PushpopError as exc:  # transient, already retried: try at the next tick
                log.warning("pushpop worker %s: extend-lock failed: %s", self.queue, exc)


class Worker:
    """The blocking worker: ``Worker(client, queue, handler, ...).run()`` until stopped.

    ``client``: a :class:`Client` (the worker talks through an :class:`AsyncClient` with
    the same URL, key and retry rules) or an :class:`AsyncClient`. Every other argument
    is :class:`AsyncWorker`'s. :meth:`stop` may be called from any thread or a handler.
    """

    def __init__(
        self,
        client: Client | AsyncClient,
        queue: str,
        handler: Handler,
        concurrency: int = 1,
        ttl_seconds: int = 30,
        wait_seconds: int = 20,
        max_attempts: int | None = None,
        backoff: Callable[[int], float] = default_backoff,
    ) -> None:
        self._own_client = isinstance(client, Client)
        self._client = AsyncClient.like(client) if isinstance(client, Client) else client
        self._worker = AsyncWorker(
            self._client, queue, handler, concurrency, ttl_seconds, wait_seconds,
            max_attempts, backoff,
        )  # fmt: skip

    @property
    def stats(self) -> WorkerStats:
        return self._worker.stats

    def run(self, handle_signals: bool = True) -> None:
        """Block until stopped (:meth:`stop`, SIGTERM or SIGINT)."""
        asyncio.run(self._run(handle_signals))

    async def _run(self, handle_signals: bool) -> None:
        try:
            await self._worker.run(handle_signals)
        finally:
            if self._own_client:
                await self._client.aclose()

    def stop(self) -> None:
        self._worker.stop()
