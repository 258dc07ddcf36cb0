"""Only daprd gets into the actor routes, one call per actor at a time: :class:`SidecarGuard`.

The actor routes run queue operations without the public routes' API keys, so with an
``APP_API_TOKEN`` (the launcher gives daprd the same one) a request without the matching
``dapr-api-token`` gets 401 ``UNAUTHENTICATED`` (compared in constant time).
"""

from __future__ import annotations

import asyncio
import hmac

from starlette.types import ASGIApp, Receive, Scope, Send

from actor_service.runtime.turns import Turn
from actor_service.serializer import dumps
from actor_service.stores.claim import Claim

TOKEN_HEADER = b"dapr-api-token"
# Always guarded, plus whatever else DaprActor registers: the actor and Dapr callback
# space, and DaprActor's own health route.
GUARDED_PREFIXES = ("/actors/", "/dapr/")
GUARDED_EXACT = ("/healthz", "/dapr/config", "/actors")


class SidecarCalls:
    """Actor calls from ``daprd`` in progress: one at a time per actor here, and a count.

    ``daprd`` enforces turn-based concurrency, but only while it is alive and only as
    long as it waits for the call: a sidecar that dies, or that gives up on a slow call
    (a deadline, a placement drain), lets the next call for the same actor in while the
    app is still running the first one, on the same cached state. The per-actor lock here
    makes that second call wait for the first, so one actor never runs two turns at once
    in this process. The count lets a sidecar restart wait for the calls still running.
    """

    def __init__(self) -> None:
        self.count = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._turns: dict[str, Turn] = {}

    async def run(
        self, actor: str, app: ASGIApp, scope: Scope, receive: Receive, send: Send
    ) -> None:
        """Serve the request holding ``actor``'s turn (``actor`` = "{type}/{id}")."""
        t = self._turns.get(actor)
        if t is None:
            t = self._turns[actor] = Turn()
        t.users += 1
        self.count += 1
        self._idle.clear()
        try:
            async with t.lock:
                await app(scope, receive, send)
        finally:
            t.users -= 1
            if t.users == 0 and self._turns.get(actor) is t:
                del self._turns[actor]
            self.count -= 1
            if self.count == 0:
                self._idle.set()

    async def wait_idle(self, within: float) -> bool:
        """True if no call is in progress within ``within`` seconds."""
        try:
            await asyncio.wait_for(self._idle.wait(), within)
            return True
        except TimeoutError:
            return False


def actor_of(path: str) -> str | None:
    """``/actors/{type}/{id}[/...]`` -> ``"{type}/{id}"``; None for other paths."""
    parts = path.split("/", 4)
    if len(parts) >= 4 and parts[1] == "actors" and parts[2] and parts[3]:
        return f"{parts[2]}/{parts[3]}"
    return None


class SidecarGuard:
    """Pure ASGI: sidecar-facing routes need ``dapr-api-token == APP_API_TOKEN``.

    Pure ASGI rather than ``BaseHTTPMiddleware`` because every actor call passes here
    (that one costs about 0.3 ms a request).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        token: str | None,
        exact: frozenset[str],
        prefixes: tuple[str, ...],
        calls: SidecarCalls,
        claim: Claim | None = None,
    ) -> None:
        self.claim = claim
        self.app = app
        self.token = token.encode() if token else None
        self.exact = exact
        self.prefixes = prefixes
        self.calls = calls

    def guarded(self, path: str) -> bool:
        return path in self.exact or path.startswith(self.prefixes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.guarded(scope["path"]):
            await self.app(scope, receive, send)
            return
        if self.token is not None:
            presented = b""
            for name, value in scope["headers"]:
                if name == TOKEN_HEADER:
                    presented = value
                    break
            if not hmac.compare_digest(presented, self.token):
                await _refuse(send, "missing" if not presented else "wrong")
                return
        actor = actor_of(scope["path"])
        if actor is None:
            await self.app(scope, receive, send)
            return
        if self.claim is not None and not self.claim.held:
            await _respond(send, 503, "STORE_UNAVAILABLE", f"state store: {self.claim.reason}")
            return
        # method calls, timers, reminders and deactivation: one at a time per actor
        await self.calls.run(actor, self.app, scope, receive, send)


async def _refuse(send: Send, what: str) -> None:
    message = f"{what} dapr-api-token: this route only answers the Dapr sidecar"
    await _respond(send, 401, "UNAUTHENTICATED", message)


async def _respond(send: Send, status: int, code: str, message: str) -> None:
    body = dumps({"error": {"code": code, "message": message}})
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


__all__ = ["GUARDED_EXACT", "GUARDED_PREFIXES", "SidecarCalls", "SidecarGuard", "actor_of"]
