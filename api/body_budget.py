"""A process-wide budget of request-body bytes in flight, and memory given back after them.

``PUSHPOP_MAX_BODY_BYTES`` caps one request, not all of them: past the budget a request
is answered ``503 SERVER_BUSY`` with ``Retry-After`` before its body is read (one is
always let through when nothing else is in flight). :func:`pin_malloc_thresholds` and
``malloc_trim`` after a burst give large bodies' memory back to the system.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from actor_service.errors import PushpopError

log = logging.getLogger("pushpop")

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameters (malloc.h)
M_MMAP_THRESHOLD = -3
MALLOC_THRESHOLD = 128 * 1024  # glibc's own default, kept from moving up
MIB = 1024 * 1024
TRIM_AFTER = 8 * MIB


class ServerBusy(PushpopError):
    status = 503
    code = "SERVER_BUSY"

    def __init__(self, message: str, *, retry_after: int = 1) -> None:
        super().__init__(message, retry_after=retry_after)


def _libc_function(name: str) -> Callable[..., int] | None:
    """A function of glibc, or ``None`` on another C library."""
    try:
        path = ctypes.util.find_library("c")
        return getattr(ctypes.CDLL(path), name) if path else None
    except (OSError, AttributeError):
        return None


def pin_malloc_thresholds() -> bool:
    """Keep glibc from holding freed large buffers (no-op elsewhere); True when set."""
    mallopt = _libc_function("mallopt")
    if mallopt is None:
        return False
    ok = mallopt(M_MMAP_THRESHOLD, MALLOC_THRESHOLD) == 1
    return mallopt(M_TRIM_THRESHOLD, MALLOC_THRESHOLD) == 1 and ok


_malloc_trim = _libc_function("malloc_trim")


class BodyBudget:
    """Bytes of request bodies held by requests in progress, capped at ``limit``."""

    def __init__(self, limit: int, settle: float = 60.0) -> None:
        self.limit = limit
        self.settle = settle
        self.used = 0
        self.since_trim = 0  # body bytes served since the heap was last trimmed
        self._trimming: asyncio.Future[int] | None = None

    def _release(self, n: int) -> None:
        self.used -= n
        self.since_trim += n
        busy = self._trimming is not None and not self._trimming.done()
        if self.used == 0 and self.since_trim > TRIM_AFTER and _malloc_trim and not busy:
            self.since_trim = 0
            loop = asyncio.get_running_loop()
            self._trimming = loop.run_in_executor(None, _malloc_trim, 0)
            loop.call_later(self.settle, self._trim_later)

    def _trim_later(self) -> None:
        if _malloc_trim is not None:
            asyncio.get_running_loop().run_in_executor(None, _malloc_trim, 0)

    def _take(self, n: int) -> None:
        if self.used and self.used + n > self.limit:
            raise ServerBusy(
                f"{self.used // MIB} MiB of request bodies are in progress; this one "
                f"({max(1, n // MIB)} MiB) would pass PUSHPOP_MAX_BODY_BYTES_IN_FLIGHT "
                f"({self.limit // MIB} MiB): try again shortly"
            )
        self.used += n

    async def __call__(
        self, app: ASGIApp, refuse: ASGIApp, scope: Scope, receive: Receive, send: Send
    ) -> None:
        """Serve ``app`` holding the request's body bytes; ``refuse`` answers a refusal
        (with ``scope["pushpop.refusal"]`` set to the error)."""
        declared = 0
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and value.isdigit():
                declared = int(value)
        held = 0
        try:
            if declared:
                try:
                    self._take(declared)
                except ServerBusy as err:
                    scope["pushpop.refusal"] = err
                    await refuse(scope, receive, send)
                    return
                held = declared

            async def counted() -> Message:
                nonlocal held
                message = await receive()
                if not declared and message.get("type") == "http.request":
                    n = len(message.get("body", b""))
                    self._take(n)  # a chunked body: counted as it arrives
                    held += n
                return message

            await app(scope, counted, send)
        finally:
            self._release(held)


__all__ = ["BodyBudget", "ServerBusy", "pin_malloc_thresholds"]
