"""A minimal HTTP/1.1 keep-alive client for one ``daprd``: the sidecar transport's wire.

Two calls to daprd per Dapr-mode operation made aiohttp's general-purpose machinery the
app's largest CPU cost; this pool writes a request in one buffer and parses the answer
with httptools. It tells a call that never left (:class:`NotSent`) from one whose
outcome is unknown (:class:`Lost`).
"""

from __future__ import annotations

import asyncio
import collections

import httptools


class NotSent(Exception):
    """No connection to daprd could be made: the request was never sent."""


class Lost(Exception):
    """The request was (or may have been) sent, and no complete answer came back."""


class Timeout(Lost):
    """No complete answer within the deadline."""


class _Connection(asyncio.Protocol):
    """One keep-alive connection: one request at a time, its answer as a future."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.body: list[bytes] = []
        self.open = False

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.open = True

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(Lost(f"unreadable answer from daprd ({exc})"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.open = False
        self._fail(Lost("daprd closed the connection"))

    # httptools callbacks
    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        waiter, self.waiter = self.waiter, None
        body = b"".join(self.body)
        self.body = []
        if not self.parser.should_keep_alive():
            self.close()
        if waiter is not None and not waiter.done():
            waiter.set_result((self.parser.get_status_code(), body))

    # the pool's side
    def send(self, data: bytes) -> asyncio.Future[tuple[int, bytes]]:
        self.waiter = waiter = self.loop.create_future()
        assert self.transport is not None
        self.transport.write(data)
        return waiter

    def _fail(self, exc: Exception) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        if self.open:
            self.close()

    def close(self) -> None:
        self.open = False
        if self.transport is not None:
            self.transport.close()


class ConnectionPool:
    """Up to ``size`` keep-alive connections to ``host:port``, the idle ones reused."""

    def __init__(self, host: str, port: int, size: int, connect_timeout: float) -> None:
        self.host, self.port = host, port
        self.size = size
        self.connect_timeout = connect_timeout
        self.host_header = f"{host}:{port}".encode()
        self._idle: collections.deque[_Connection] = collections.deque()
        self._count = 0  # connections open or opening
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._closed = False

    async def request(self, head: bytes, body: bytes, within: float) -> tuple[int, bytes]:
        """Send ``head`` (request line and headers, ending in a blank line) and ``body``;
        the answer's status and body. Raises :class:`NotSent` or :class:`Lost`."""
        loop = asyncio.get_running_loop()
        end = loop.time() + within
        conn = self._idle.pop() if self._idle else None
        while conn is not None and not conn.open:
            self._count -= 1
            conn = self._idle.pop() if self._idle else None
        if conn is None:
            conn = await self._connect(loop, end)
        waiter = conn.send(head + body if len(body) < 16384 else head)
        if len(body) >= 16384:
            assert conn.transport is not None
            conn.transport.write(body)
        timer = loop.call_at(end, _expire, waiter)
        try:
            result = await waiter
        except BaseException:
            conn.close()  # its answer may still come: never reuse it
            self._release(conn)
            raise
        finally:
            timer.cancel()
        self._release(conn)
        return result

    async def _connect(self, loop: asyncio.AbstractEventLoop, end: float) -> _Connection:
        while self._count >= self.size:  # all busy: wait for one to come back
            waiter = loop.create_future()
            self._waiters.append(waiter)
            try:
                await asyncio.wait_for(waiter, max(0.0, end - loop.time()))
            except TimeoutError:
                raise NotSent("no free connection to daprd in time") from None
            if self._idle:
                conn = self._idle.pop()
                if conn.open:
                    return conn
                self._count -= 1
        self._count += 1
        try:
            within = min(self.connect_timeout, max(0.0, end - loop.time()))
            _, conn = await asyncio.wait_for(
                loop.create_connection(lambda: _Connection(loop), self.host, self.port), within
            )
        except BaseException as exc:
            self._count -= 1
            self._wake()
            if isinstance(exc, (OSError, TimeoutError)):
                raise NotSent(f"{exc.__class__.__name__}: {exc}") from exc
            raise
        return conn

    def _release(self, conn: _Connection) -> None:
        if conn.open and not self._closed:
            self._idle.append(conn)
        else:
            self._count -= 1
        self._wake()

    def _wake(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def close(self) -> None:
        self._closed = True
        while self._idle:
            self._idle.pop().close()
            self._count -= 1


def _expire(waiter: asyncio.Future[tuple[int, bytes]]) -> None:
    if not waiter.done():
        waiter.set_exception(Timeout("no answer from daprd in time"))


__all__ = ["ConnectionPool", "Lost", "NotSent", "Timeout"]
