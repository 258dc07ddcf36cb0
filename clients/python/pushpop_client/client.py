"""``Client`` (blocking) and ``AsyncClient`` (asyncio): every endpoint of the pushpop API.

Both run the same requests (:mod:`pushpop_client._calls`) and retry connection errors and
429/503/507 answers with capped, jittered exponential backoff that honours ``Retry-After``,
only when sending again is safe: a push always carries an ``Idempotency-Key``, and a plain
pop that may have reached the server is never resent (it raises
:class:`~pushpop_client.errors.ConnectionFailedError`). The rules: README.md, "Retries".
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Iterator
from types import TracebackType
from typing import Any, TypeVar

import httpx

from . import _calls
from ._calls import UNSET, Call, PushEntry, RetryPolicy, Unset, Wait, outcome
from .models import (
    DeadLetterResult,
    ExtendResult,
    Health,
    JsonObject,
    Message,
    PopResult,
    PushResult,
    QueueSettings,
    QueuesPage,
    QueueStats,
    QueueSummary,
    RedriveResult,
)

T = TypeVar("T")
__all__ = ["AsyncClient", "Client", "RetryPolicy"]


class _Config:
    """What both clients are built from (a Worker builds an AsyncClient twin from it)."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        timeout: float,
        retry: RetryPolicy | None,
        pop_idempotency: bool,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.pop_idempotency = pop_idempotency
        self.headers = {"User-Agent": "pushpop-client"}
        if api_key:
            self.headers["Authorization"] = f"Bearer {api_key}"

    def request_kwargs(self, call: Call[Any]) -> dict[str, Any]:
        return {
            "params": call.params or None,
            "json": call.body,
            "headers": call.headers,
            "timeout": self.timeout + call.extra_timeout,
        }

    def pop_call(
        self,
        queue: str,
        depth: int,
        require_ack: bool,
        ttl_seconds: int | None,
        wait_seconds: int | None,
        idempotency_key: str | None,
    ) -> Call[PopResult]:
        if idempotency_key is None and self.pop_idempotency:
            idempotency_key = uuid.uuid4().hex
        return _calls.pop(queue, depth, require_ack, ttl_seconds, wait_seconds, idempotency_key)


class Client(_Config):
    """A blocking client. ``Client(base_url, api_key=None, timeout=30.0, retry=RetryPolicy())``.

    Every pop carries an ``Idempotency-Key`` too (``pop_idempotency=True``, the default), so
    a pop is retried like a push: a retry answers the first pop's items and lock.
    ``pop_idempotency=False`` for servers older than idempotent pops: a pop is then retried
    only when it cannot have run.
    ``transport``: an ``httpx.BaseTransport`` to use instead of the network (tests).
    Use as a context manager, or call :meth:`close`.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        pop_idempotency: bool = True,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(base_url, api_key, timeout, retry, pop_idempotency)
        self._http = httpx.Client(
            base_url=self.base_url, headers=self.headers, timeout=timeout, transport=transport
        )

    def _send(self, call: Call[T]) -> T:
        attempt = 0
        while True:
            answer: httpx.Response | httpx.TransportError
            try:
                answer = self._http.request(call.method, call.path, **self.request_kwargs(call))
            except httpx.TransportError as exc:
                answer = exc
            result = outcome(call, self.retry, attempt, answer)
            if not isinstance(result, Wait):
                return result
            time.sleep(result.seconds)
            attempt += 1

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def push(
        self,
        queue: str,
        item: JsonObject,
        priority: int | None = None,
        delay_seconds: int | None = None,
        idempotency_key: str | None = None,
    ) -> PushResult:
        """Push one item (a JSON object); ``priority`` 0 is the most urgent (server default 1).

        Retried safely: the same ``Idempotency-Key`` (uuid4 unless given) goes with every
        send, so the server stores the item once; ``result.replayed`` says a retry was
        answered from the server's record of the first send.
        """
        return self._send(_calls.push(queue, item, priority, delay_seconds, idempotency_key))

    def push_many(
        self, queue: str, items: Iterable[PushEntry], idempotency_key: str | None = None
    ) -> PushResult:
        """Push up to 1000 items at once, all or none. Each entry is a dict
        ``{"item", "priority"?, "delay_seconds"?}`` or a tuple
        ``(item[, priority[, delay_seconds]])``. Retried safely like :meth:`push`."""
        return self._send(_calls.push_many(queue, items, idempotency_key))

    def pop(
        self,
        queue: str,
        depth: int = 1,
        require_ack: bool = False,
        ttl_seconds: int | None = None,
        wait_seconds: int | None = None,
        idempotency_key: str | None = None,
    ) -> PopResult:
        """Take up to ``depth`` items. ``require_ack``: lock them for ``ttl_seconds`` until
        acknowledged; ``wait_seconds`` (0-20): wait that long for an item when none is ready.

        With an ``Idempotency-Key`` (``idempotency_key``, or one made per call under
        ``pop_idempotency=True``, the default) a retry returns the first pop's items and
        lock, so every failure is retried. Without one (``pop_idempotency=False``) a pop is
        retried only when nothing can have been taken: a connection that failed before the
        request was sent, or an answer whose code says the server did nothing; a plain pop
        whose request may have reached the server is never sent again (its items may be
        taken already): it raises ``ConnectionFailedError``.
        """
        return self._send(
            self.pop_call(queue, depth, require_ack, ttl_seconds, wait_seconds, idempotency_key)
        )

    def acknowledge(self, queue: str, lock_id: str) -> int:
        """The lock's items are done; returns how many."""
        return self._send(_calls.acknowledge(queue, lock_id))

    def release(self, queue: str, lock_id: str, delay_seconds: int | None = None) -> int:
        """Give the lock's items back (after ``delay_seconds``); returns how many."""
        return self._send(_calls.release(queue, lock_id, delay_seconds))

    def extend_lock(
        self, queue: str, lock_id: str, additional_ttl_seconds: int | None = None
    ) -> ExtendResult:
        """Move the lock's expiry later by ``additional_ttl_seconds`` (server default 30)."""
        return self._send(_calls.extend_lock(queue, lock_id, additional_ttl_seconds))

    def dead_letter(self, queue: str, lock_id: str) -> DeadLetterResult:
        """Move the lock's items to the queue's dead-letter queue."""
        return self._send(_calls.dead_letter(queue, lock_id))

    def stats(self, queue: str) -> QueueStats:
        return self._send(_calls.stats(queue))

    def purge(self, queue: str) -> int:
        """Remove every item and lock of the queue; returns how many items went."""
        return self._send(_calls.purge(queue))

    def peek(self, queue: str, limit: int | None = None) -> list[Message]:
        """The next ``limit`` waiting items in pop order, without taking them."""
        return self._send(_calls.peek(queue, limit))

    def queues(
        self, prefix: str | None = None, limit: int | None = None, after: str | None = None
    ) -> QueuesPage:
        """One page of the queues that hold anything; ``page.next`` is the next ``after``."""
        return self._send(_calls.queues(prefix, limit, after))

    def iter_queues(
        self, prefix: str | None = None, page_size: int = 100
    ) -> Iterator[QueueSummary]:
        """Every queue that holds anything, page after page."""
        after: str | None = None
        while True:
            page = self.queues(prefix, page_size, after)
            yield from page.queues
            if page.next is None:
                return
            after = page.next

    def get_settings(self, queue: str) -> QueueSettings:
        return self._send(_calls.get_settings(queue))

    def set_settings(
        self,
        queue: str,
        *,
        max_deliveries: int | Unset | None = UNSET,
        dead_letter_queue: str | Unset | None = UNSET,
    ) -> QueueSettings:
        """Change the fields given (``None`` resets one to its default); returns them all."""
        return self._send(_calls.set_settings(queue, max_deliveries, dead_letter_queue))

    def redrive(self, queue: str, to: str | None = None, limit: int | None = None) -> RedriveResult:
        """Move up to ``limit`` waiting items to ``to`` (default: ``queue`` less
        ``-deadletter``), their delivery counts reset."""
        return self._send(_calls.redrive(queue, to, limit))

    def health(self) -> Health:
        return self._send(_calls.probe("/health"))

    def ready(self) -> Health:
        """``/ready``; raises ``StoreUnavailableError`` (no retry) while not ready."""
        return self._send(_calls.probe("/ready"))


class AsyncClient(_Config):
    """The asyncio form of :class:`Client`: the same methods, as coroutines, same retries.

    ``transport``: an ``httpx.AsyncBaseTransport`` (``httpx.ASGITransport(app)`` in tests).
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        pop_idempotency: bool = True,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(base_url, api_key, timeout, retry, pop_idempotency)
        self._http = httpx.AsyncClient(
            base_url=self.base_url, headers=self.headers, timeout=timeout, transport=transport
        )

    @classmethod
    def like(cls, client: _Config) -> AsyncClient:
        """An AsyncClient with ``client``'s URL, key, timeout and retry rules."""
        return cls(
            client.base_url, client.api_key, timeout=client.timeout, retry=client.retry,
            pop_idempotency=client.pop_idempotency,
        )  # fmt: skip

    async def _send(self, call: Call[T]) -> T:
        attempt = 0
        while True:
            answer: httpx.Response | httpx.TransportError
            try:
                kwargs = self.request_kwargs(call)
                answer = await self._http.request(call.method, call.path, **kwargs)
            except httpx.TransportError as exc:
                answer = exc
            result = outcome(call, self.retry, attempt, answer)
            if not isinstance(result, Wait):
                return result
            await asyncio.sleep(result.seconds)
            attempt += 1

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def push(
        self,
        queue: str,
        item: JsonObject,
        priority: int | None = None,
        delay_seconds: int | None = None,
        idempotency_key: str | None = None,
    ) -> PushResult:
        """See :meth:`Client.push`."""
        return await self._send(_calls.push(queue, item, priority, delay_seconds, idempotency_key))

    async def push_many(
        self, queue: str, items: Iterable[PushEntry], idempotency_key: str | None = None
    ) -> PushResult:
        """See :meth:`Client.push_many`."""
        return await self._send(_calls.push_many(queue, items, idempotency_key))

    async def pop(
        self,
        queue: str,
        depth: int = 1,
        require_ack: bool = False,
        ttl_seconds: int | None = None,
        wait_seconds: int | None = None,
        idempotency_key: str | None = None,
    ) -> PopResult:
        """See :meth:`Client.pop`: a plain pop that may have reached the server is never
        sent again. Cancelling a waiting pop closes its connection (the server then takes
        nothing for it)."""
        call = self.pop_call(queue, depth, require_ack, ttl_seconds, wait_seconds, idempotency_key)
        return await self._send(call)

    async def acknowledge(self, queue: str, lock_id: str) -> int:
        return await self._send(_calls.acknowledge(queue, lock_id))

    async def release(self, queue: str, lock_id: str, delay_seconds: int | None = None) -> int:
        return await self._send(_calls.release(queue, lock_id, delay_seconds))

    async def extend_lock(
        self, queue: str, lock_id: str, additional_ttl_seconds: int | None = None
    ) -> ExtendResult:
        return await self._send(_calls.extend_lock(queue, lock_id, additional_ttl_seconds))

    async def dead_letter(self, queue: str, lock_id: str) -> DeadLetterResult:
        return await self._send(_calls.dead_letter(queue, lock_id))

    async def stats(self, queue: str) -> QueueStats:
        return await self._send(_calls.stats(queue))

    async def purge(self, queue: str) -> int:
        return await self._send(_calls.purge(queue))

    async def peek(self, queue: str, limit: int | None = None) -> list[Message]:
        return await self._send(_calls.peek(queue, limit))

    async def queues(
        self, prefix: str | None = None, limit: int | None = None, after: str | None = None
    ) -> QueuesPage:
        return await self._send(_calls.queues(prefix, limit, after))

    async def iter_queues(
        self, prefix: str | None = None, page_size: int = 100
    ) -> AsyncIterator[QueueSummary]:
        after: str | None = None
        while True:
            page = await self.queues(prefix, page_size, after)
            for q in page.queues:
                yield q
            if page.next is None:
                return
            after = page.next

    async def get_settings(self, queue: str) -> QueueSettings:
        return await self._send(_calls.get_settings(queue))

    async def set_settings(
        self,
        queue: str,
        *,
        max_deliveries: int | Unset | None = UNSET,
        dead_letter_queue: str | Unset | None = UNSET,
    ) -> QueueSettings:
        return await self._send(_calls.set_settings(queue, max_deliveries, dead_letter_queue))

    async def redrive(
        self, queue: str, to: str | None = None, limit: int | None = None
    ) -> RedriveResult:
        return await self._send(_calls.redrive(queue, to, limit))

    async def health(self) -> Health:
        return await self._send(_calls.probe("/health"))

    async def ready(self) -> Health:
        return await self._send(_calls.probe("/ready"))
