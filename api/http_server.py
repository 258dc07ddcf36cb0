"""The uvicorn server of both runtimes, and the HTTP protocol that guards it.

uvicorn has no deadline for reading a request, no connection cap, and answers its own
errors in plain text. :class:`GuardedHttpProtocol` adds a read deadline (408), a
connection cap that sheds idle connections first (503), JSON for the errors it makes,
and a prompt 503 to uploads at shutdown (docs/operations.md has the settings). Its
writes go through :class:`CorkedTransport`: a response's head and body leave in one send.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from collections.abc import Sequence
from typing import Any

import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from actor_service.serializer import dumps
from api.log_limits import client_trouble
from api.settings import Settings
from api.waiters import SHUTDOWN_HOOK

GRACEFUL_SHUTDOWN_SECONDS = 10
# request line + headers; httptools itself accepts hundreds of KB of headers
MAX_HEAD_BYTES = 64 * 1024
# a scope key the protocol sets when it ends a request itself, so that the app's
# disconnect handler does not log the same event a second time
DROPPED = "pushpop.dropped"


def error_bytes(
    status: int,
    code: str,
    message: str,
    headers: Sequence[tuple[bytes, bytes]] = (),
) -> bytes:
    """A complete ``Connection: close`` HTTP/1.1 response with the contract's error body."""
    body = dumps({"error": {"code": code, "message": message}})
    lines = [STATUS_LINE[status]]
    for name, value in [
        *headers,
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]:
        lines += [name, b": ", value, b"\r\n"]
    return b"".join([*lines, b"\r\n", body])


def _refuse_connection(message: str) -> ASGIApp:
    """The app of a connection over a cap: 503 ``TOO_MANY_CONNECTIONS`` saying which."""
    body = dumps({"error": {"code": "TOO_MANY_CONNECTIONS", "message": message}})

    async def refuse(scope: Scope, receive: Receive, send: Send) -> None:
        await send({
            "type": "http.response.start", "status": 503,
            "headers": [(b"content-type", b"application/json"), (b"retry-after", b"1"),
                        (b"content-length", str(len(body)).encode()), (b"connection", b"close")],
        })  # fmt: skip
        await send({"type": "http.response.body", "body": body})

    return refuse


_too_many_connections = _refuse_connection(
    "too many open connections to this server; retry shortly"
)
_too_many_from_client = _refuse_connection(
    "too many open connections from your address; close some or retry shortly"
)


class CorkedTransport:
    """A transport whose writes of one event-loop turn leave in one ``write``.

    uvicorn writes a response's head and its body apart: two sends, and two wake-ups of
    the peer (daprd, or the client), where one does. Written bytes are held until the
    turn ends (``call_soon``), or until :meth:`close`, which sends them first; an
    aborted connection drops them. Everything else is the wrapped transport's.
    """

    __slots__ = ("_held", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not self._held:
            self._loop.call_soon(self.flush)
        self._held.append(data)

    def flush(self) -> None:
        held, self._held = self._held, []
        if held and not self._transport.is_closing():
            self._transport.write(held[0] if len(held) == 1 else b"".join(held))

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._held = []
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class GuardedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a read deadline, a connection cap and JSON errors.

    Subclassed per server by :func:`uvicorn_config` (uvicorn constructs the protocol
    itself, so the limits travel as class attributes).
    """

    read_timeout: float = 5.0
    max_connections: int = 0
    max_per_client: int = 0  # 0: half of max_connections, none for loopback peers
    per_client: dict[str, int] = {}  # open connections by client address (per server)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._host = ""
        self._deadline: asyncio.TimerHandle | None = None
        self._reading = False  # between a request's first byte and its last
        self._head_bytes = 0  # request line and headers so far
        self._refusal: tuple[int, str, str] | None = None

    # ------------------------------------------------------------ connection
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.transport = CorkedTransport(transport, self.loop)  # type: ignore[assignment]
        # a connection that never sends a byte is bounded by the same deadline
        self._arm()
        self._host = self.client[0] if self.client else ""
        held = self.per_client[self._host] = self.per_client.get(self._host, 0) + 1
        share = self._share(self._host)
        if share and held > share:
            client_trouble.log(
                logging.WARNING, "client-cap", "%s holds over %d connections: answering 503",
                self._host, share,
            )  # fmt: skip
            self.app = _too_many_from_client  # this connection only
        elif (
            self.max_connections
            and len(self.connections) > self.max_connections
            and not self._shed_idle()
        ):
            client_trouble.log(
                logging.WARNING, "cap", "over %d open connections: answering 503",
                self.max_connections,
            )  # fmt: skip
            self.app = _too_many_connections  # this connection only

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        left = self.per_client.get(self._host, 0) - 1
        if left > 0:
            self.per_client[self._host] = left
        else:
            self.per_client.pop(self._host, None)
        super().connection_lost(exc)

    def _share(self, host: str) -> int:
        """How many connections ``host`` may hold (0: no limit)."""
        if self.max_per_client:
            return self.max_per_client
        with contextlib.suppress(ValueError):
            if ipaddress.ip_address(host).is_loopback:
                return 0
        return self.max_connections // 2

    def _idle(self) -> bool:
        """No request in progress: silent since it opened, or between two requests."""
        cycle = self.cycle
        return (
            not self._reading
            and (cycle is None or cycle.response_complete)
            and not self.transport.is_closing()
        )

    def _shed_idle(self) -> bool:
        """Close one idle connection to make room, from the address holding the most
        (the one filling the server, most likely); False if none is idle."""
        victim: GuardedHttpProtocol | None = None
        for conn in self.connections:
            if conn is self or not isinstance(conn, GuardedHttpProtocol) or not conn._idle():
                continue
            if victim is None or self.per_client.get(conn._host, 0) > self.per_client.get(
                victim._host, 0
            ):
                victim = conn
        if victim is None:
            return False
        client_trouble.info(
            "shed", "server full (%d connections): closed an idle one from %s",
            self.max_connections, victim._host,
        )  # fmt: skip
        victim._disarm()
        victim.transport.close()
        return True

    # ------------------------------------------------------------ deadline
    def _arm(self) -> None:
        if self._deadline is None:
            self._deadline = self.loop.call_later(self.read_timeout, self._timed_out)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._reading = True
        self._head_bytes = 0
        self._arm()

    def on_url(self, url: bytes) -> None:
        self._count_head(len(url), 414, "URI_TOO_LONG", "request line")
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        # + 4: the ": " and CRLF around each header, as the client sent it
        self._count_head(len(name) + len(value) + 4, 431, "HEADERS_TOO_LARGE", "request head")
        super().on_header(name, value)

    def _count_head(self, n: int, status: int, code: str, what: str) -> None:
        self._head_bytes += n
        if self._head_bytes > MAX_HEAD_BYTES:
            # raising inside a parser callback aborts the parse: send_400_response answers
            self._refusal = (status, code, f"{what} exceeds {MAX_HEAD_BYTES} bytes")
            raise ValueError(code)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._reading = False
        self._disarm()

    def _timed_out(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        if not self._reading:  # opened and never used: nothing to answer
            self.transport.close()
            return
        client_trouble.info(
            "deadline", "dropped a client that did not send its request within %gs (%s)",
            self.read_timeout, _peer(self.client),
        )  # fmt: skip
        self._drop(
            408, "REQUEST_TIMEOUT",
            f"the request was not received within {self.read_timeout:g}s",
        )  # fmt: skip

    def _drop(self, status: int, code: str, message: str, retry_after: bool = False) -> None:
        """Answer the request being read (unless the app already answers) and close."""
        cycle = self.cycle
        if cycle is not None and cycle.scope is self.scope:
            self.scope[DROPPED] = code  # type: ignore[typeddict-unknown-key]
        if cycle is None or cycle.scope is not self.scope or not cycle.response_started:
            headers = [*self.server_state.default_headers]
            if retry_after:
                headers.append((b"retry-after", b"1"))
            self.transport.write(error_bytes(status, code, message, headers))
            if cycle is not None:
                # the app may still be waiting for the body: it now sees a disconnect,
                # and anything it sends is discarded instead of written after our answer
                cycle.response_started = cycle.disconnected = True
                cycle.message_event.set()
        self._reading = False
        self.transport.close()

    # ------------------------------------------------------------ errors, shutdown
    def send_400_response(self, msg: str) -> None:
        status, code, message = self._refusal or (
            400,
            "BAD_REQUEST",
            "the request is not valid HTTP/1.1 (e.g. a request line too long)",
        )
        client_trouble.info(
            code, "refused a request from %s: %s %s", _peer(self.client), status, code
        )
        self.transport.write(
            error_bytes(status, code, message, list(self.server_state.default_headers))
        )
        self.transport.close()

    def shutdown(self) -> None:
        if self._reading and not self.transport.is_closing():
            # still uploading: it would hold the shutdown until uvicorn cancels it (500)
            self._disarm()
            self._drop(503, "SHUTTING_DOWN", "the server is shutting down; retry", True)
            return
        hook = self.scope.get(SHUTDOWN_HOOK) if self.scope is not None else None
        if hook is not None:  # a long-poll pop waits here: answer them all now
            hook()
        super().shutdown()


def _peer(client: tuple[str, int] | None) -> str:
    return f"{client[0]}:{client[1]}" if client else "unknown peer"


def protocol_for(settings: Settings) -> type[GuardedHttpProtocol]:
    """The protocol class carrying this server's limits (uvicorn instantiates it)."""
    return type(
        "PushpopHttpProtocol",
        (GuardedHttpProtocol,),
        {
            "read_timeout": min(settings.read_timeout, settings.request_timeout),
            "max_connections": settings.max_connections,
            "max_per_client": settings.max_connections_per_client,
            "per_client": {},
        },
    )


class _ParserWarning(logging.Filter):
    """uvicorn warns once per unparsable request; our protocol logs it rate-limited."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != "Invalid HTTP request received."


def uvicorn_config(app: Any, settings: Settings, log_level: str) -> uvicorn.Config:
    """The uvicorn configuration of ``pushpop serve``, in both runtimes."""
    logging.getLogger("uvicorn.error").addFilter(_ParserWarning())
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=log_level,
        access_log=False,
        # X-Forwarded-For rewriting of each request's client address, which nothing here
        # reads (logs name the connection's peer): ~1 % of the server's CPU per request
        proxy_headers=False,
        http=protocol_for(settings),
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )
