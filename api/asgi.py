"""The gateway's ASGI entry: :class:`PushpopApp`, its hot path, and the metrics around them.

Every request enters :class:`PushpopApp`. Push and pop, which carry nearly all of a
queue's traffic, go straight to their route functions (:mod:`api.routes`) through
:class:`ObserveMiddleware`, skipping FastAPI's router and middleware stack but keeping
its answers; anything else takes the full FastAPI path (docs/how-it-works.md).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import routes
from api.body_budget import BodyBudget
from api.metrics import Metrics

Handler = Callable[[str, Request], Awaitable[Response]]


class ObserveMiddleware:
    """Per-route request counts and latency, as plain ASGI (``BaseHTTPMiddleware`` would
    cost more than the hot routes themselves)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.observe_request(
                scope["method"], route, status, time.perf_counter() - start
            )


async def _pop(queue_id: str, request: Request) -> Response:
    q = request.query_params
    return await routes.pop(queue_id, request, q.get("depth"), q.get("require_ack"),
                            q.get("ttl_seconds"), q.get("wait_seconds"))  # fmt: skip


HANDLERS: dict[str, Handler] = {"push": routes.push, "pop": _pop}
BODIES = frozenset({"POST", "PUT", "PATCH"})


class PushpopApp(FastAPI):
    """FastAPI, with a short way in for ``POST /queue/{id}/push`` and ``.../pop``.

    The short way calls the *same* route functions and the *same* exception handlers the
    app registered; a push or pop whose raw path needs the router's care (an encoded
    ``/`` in the queue id) takes the full path. FastAPI still owns the routes, so the
    OpenAPI document is unchanged.
    """

    _hot: tuple[tuple[Callable[[Scope], bool], ASGIApp], ...] = ()
    _hot_routes: dict[str, BaseRoute]
    _budget: BodyBudget | None = None
    _refuse: ASGIApp

    def limit_bodies(self, budget: BodyBudget, refuse: ASGIApp) -> None:
        """Requests with a body hold its bytes against ``budget`` while they are served;
        ``refuse`` answers one past it (see :mod:`api.body_budget`)."""
        self._budget, self._refuse = budget, refuse

    def enable_hot_path(self, metrics: Metrics) -> None:
        """Serve push and pop directly, observed by ``metrics`` like the full stack."""
        by_path = {getattr(r, "path", ""): r for r in routes.router.routes}
        self._hot_routes = {op: by_path[f"/queue/{{queue_id}}/{op}"] for op in HANDLERS}
        self.add_hot_route(self._is_hot, ObserveMiddleware(self._serve_hot, metrics))

    def add_hot_route(self, matches: Callable[[Scope], bool], app: ASGIApp) -> None:
        """HTTP requests whose scope ``matches`` go straight to ``app``, before any
        middleware: ``app`` brings whatever of them it needs (daprd's actor method calls,
        :mod:`api.dapr.app`, bring the sidecar guard and the metrics)."""
        self._hot = (*self._hot, (matches, app))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self._budget is not None and scope["method"] in BODIES:
            await self._budget(self._route, self._refuse, scope, receive, send)
        else:
            await self._route(scope, receive, send)

    async def _route(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for matches, app in self._hot:
                if matches(scope):
                    await app(scope, receive, send)
                    return
        await super().__call__(scope, receive, send)

    @staticmethod
    def _is_hot(scope: Scope) -> bool:
        if scope["method"] != "POST" or not scope["path"].startswith("/queue/"):
            return False
        parts = scope["path"].split("/")
        return (
            len(parts) == 4
            and parts[2] != ""
            and parts[3] in HANDLERS
            and b"%2f" not in scope.get("raw_path", b"").lower()
        )

    async def _serve_hot(self, scope: Scope, receive: Receive, send: Send) -> None:
        _, _, queue_id, op = scope["path"].split("/")
        scope["app"] = self  # what Starlette sets: routes read request.app.state
        scope["route"] = self._hot_routes[op]  # what the metrics middleware labels by
        request = Request(scope, receive)
        try:
            response = await HANDLERS[op](queue_id, request)
        except Exception as exc:
            response = await self._handle(request, exc)
        await response(scope, receive, send)

    async def _handle(self, request: Request, exc: Exception) -> Response:
        """The exception handler the app registered for ``exc``'s class (nearest in MRO)."""
        handlers: dict[Any, Any] = self.exception_handlers
        for cls in type(exc).__mro__:
            if cls in handlers:
                return await handlers[cls](request, exc)
        raise exc  # pragma: no cover - Exception itself has a handler


__all__ = ["ObserveMiddleware", "PushpopApp"]
