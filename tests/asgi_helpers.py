"""The real app, in this process: HTTP semantics tested without a socket or a child process.

Everything else is the service's own: the app that ``pushpop serve`` builds, its lifespan
(the embedded runtime starts and stops), and a real SQLite file or PostgreSQL database
for its state. :func:`in_process` serves one test on its own loop through
``httpx.ASGITransport``; :class:`AppThread` serves a whole session from a thread of its
own, to sync clients from any thread and async clients on any loop (and, for the tests
that are handed a URL, on a port of this process too).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Coroutine, Iterator
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from actor_service.actor import QueueActor
from actor_service.stores.claim import Claim, claim_for
from api.app import create_app
from api.http_server import uvicorn_config
from api.settings import Settings
from supervise.ports import free_port

BASE_URL = "http://pushpop.test"


@asynccontextmanager
async def in_process(sqlite_path: Path, **settings: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the app built from ``Settings(store="sqlite", ...)``, lifespan running."""
    limits = QueueActor.limits  # class-wide: the session's apps keep theirs afterwards
    app = create_app(Settings(store="sqlite", sqlite_path=str(sqlite_path), **settings))
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as c:
                yield c
    finally:
        QueueActor.limits = limits


@contextmanager
def app_thread(
    sqlite_path: Path | None = None, *, database_url: str | None = None, **settings: Any
) -> Iterator[AppThread]:
    """:class:`AppThread` of ``Settings(...)`` on SQLite, or on PostgreSQL given
    ``database_url``, holding the database's claim as ``pushpop serve`` does: for sync
    tests (no port)."""
    store = "postgres" if database_url else "sqlite"
    place = {"database_url": database_url} if database_url else {"sqlite_path": str(sqlite_path)}
    limits = QueueActor.limits
    claim = claim_for(store, "exclusive", **place)
    app = AppThread(Settings(store=store, **place, **settings), claim, listen=False).start()
    try:
        yield app
    finally:
        app.stop()
        QueueActor.limits = limits


Answer = tuple[int, list[tuple[bytes, bytes]], bytes]


class AppThread:
    """The app built from ``settings`` (holding ``claim``, as ``pushpop serve`` does), its
    lifespan running on an event loop in a thread of its own.

    Requests cross to that loop whole (body read, answer read), so a sync client in any
    thread and an async client on any loop share one app; a client's read timeout is
    honoured (``httpx.ReadTimeout``). Clients come from :meth:`client` and
    :meth:`async_client`, or take :meth:`transport`. With ``listen``, ``url`` is the same
    app served by uvicorn on a port of this process, for callers that only take a URL.
    """

    def __init__(
        self,
        settings: Settings,
        claim: Claim | None = None,
        listen: bool = True,
        log_level: str = "warning",
    ) -> None:
        self.store = settings.store
        self.listen = listen
        self.log_level = log_level
        self.port = free_port() if listen else 0
        self.url = f"http://127.0.0.1:{self.port}" if listen else BASE_URL
        self.settings = settings
        self.claim = claim
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._stop: asyncio.Event | None = None
        self._served: Future[None] | None = None

    def start(self, timeout: float = 60.0) -> AppThread:
        if self.claim is not None:
            self.claim.acquire()
        self.app = create_app(self.settings, claim=self.claim)
        # a 500 reaches the client as over a socket, not as the app's exception
        self.asgi = httpx.ASGITransport(app=self.app, raise_app_exceptions=False)
        self.thread.start()
        ready: Future[None] = Future()
        self._served = asyncio.run_coroutine_threadsafe(self._serve(ready), self.loop)
        ready.result(timeout)
        return self

    async def _serve(self, ready: Future[None]) -> None:
        self._stop = asyncio.Event()
        config = uvicorn_config(self.app, self.settings, self.log_level)
        config.port, config.lifespan = self.port, "off"  # the lifespan runs here, once
        listener = uvicorn.Server(config)
        try:
            async with self.app.router.lifespan_context(self.app):
                listening = asyncio.create_task(self._listen(listener))
                while self.listen and not listener.started and not listening.done():
                    await asyncio.sleep(0.01)
                if self.listen and listening.done():
                    listening.result()
                    raise RuntimeError(f"uvicorn did not listen on {self.url}")
                ready.set_result(None)
                await self._stop.wait()
                listener.should_exit = True
                await listening
        except BaseException as exc:
            if not ready.done():
                ready.set_exception(exc)
            raise

    async def _listen(self, listener: uvicorn.Server) -> None:
        if self.listen:
            await listener.serve()

    def stop(self) -> None:
        if self._served is not None and self._stop is not None:
            self.loop.call_soon_threadsafe(self._stop.set)
            self._served.result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()
        if self.claim is not None:
            self.claim.release()

    async def _answer(self, method: str, url: str, headers: Any, body: bytes) -> Answer:
        request = httpx.Request(method, url, headers=headers, content=body)
        response = await self.asgi.handle_async_request(request)
        return response.status_code, response.headers.raw, await response.aread()

    def submit(self, request: httpx.Request, body: bytes) -> Future[Answer]:
        call: Coroutine[Any, Any, Answer] = self._answer(
            request.method, str(request.url), request.headers.raw, body
        )
        return asyncio.run_coroutine_threadsafe(call, self.loop)

    def transport(self) -> httpx.BaseTransport:
        return _SyncTransport(self)

    def async_transport(self) -> httpx.AsyncBaseTransport:
        return _AsyncTransport(self)

    def client(self, **kwargs: Any) -> httpx.Client:
        kwargs.setdefault("timeout", 30)
        return httpx.Client(base_url=self.url, transport=self.transport(), **kwargs)

    def async_client(self, **kwargs: Any) -> httpx.AsyncClient:
        kwargs.setdefault("timeout", 30)
        return httpx.AsyncClient(base_url=self.url, transport=self.async_transport(), **kwargs)


def _read_timeout(request: httpx.Request) -> float | None:
    return request.extensions.get("timeout", {}).get("read")


def _response(answer: Answer) -> httpx.Response:
    status, headers, body = answer
    return httpx.Response(status, headers=headers, stream=httpx.ByteStream(body))


class _SyncTransport(httpx.BaseTransport):
    def __init__(self, server: AppThread) -> None:
        self.server = server

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        answer = self.server.submit(request, request.read())
        try:
            return _response(answer.result(_read_timeout(request)))
        except FutureTimeout:
            answer.cancel()
            raise httpx.ReadTimeout("no answer in time", request=request) from None


class _AsyncTransport(httpx.AsyncBaseTransport):
    def __init__(self, server: AppThread) -> None:
        self.server = server

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        answer = asyncio.wrap_future(self.server.submit(request, await request.aread()))
        try:
            return _response(await asyncio.wait_for(answer, _read_timeout(request)))
        except TimeoutError:
            raise httpx.ReadTimeout("no answer in time", request=request) from None
