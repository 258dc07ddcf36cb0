"""The app in Dapr mode: the gateway API and the actor host in one FastAPI app.

``daprd`` calls this app to run actors (``PUT /actors/QueueActor/{id}/method/{m}``,
``DELETE /actors/...`` to deactivate, ``GET /dapr/config`` for the actor settings), and
the gateway routes of :func:`api.app.create_app` call actors back through ``daprd``
(:class:`~api.dapr.invoker.DaprInvoker`). One process, one port: the same app serves
clients and its sidecar.

Security: the actor routes run any queue operation without the API keys of the public
routes, so they must only answer ``daprd``. When ``APP_API_TOKEN`` is set (the launcher
always sets a fresh random one and gives the same value to ``daprd``, which sends it as
``dapr-api-token``), every route that ``DaprActor`` registers refuses a request without
the matching header: 401 ``UNAUTHENTICATED``, compared in constant time.

Serialization: ``PlainJSONSerializer`` for actor messages and state (the SDK default
turns date-like strings into ``datetime``; see :mod:`actor_service.serializer`).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta

from dapr.actor import ActorRuntime
from dapr.actor.runtime.config import ActorRuntimeConfig
from dapr.ext.fastapi import DaprActor
from fastapi import APIRouter, FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from actor_service.actor import ACTOR_TYPE, QueueActor
from actor_service.runtime.embedded import StoreStateProvider
from actor_service.runtime.sdk_compat import (
    actor_routes,
    forget_hosted_actors,
    install_state_provider,
    registered_context,
)
from actor_service.serializer import PlainJSONSerializer, dumps
from actor_service.stores.claim import Claim
from api.app import ObserveMiddleware, configure_actor, create_app
from api.dapr.actor_client import DirectStateClient
from api.dapr.actor_route import ActorMethodRoute, is_actor_method_call
from api.dapr.invoker import DaprInvoker
from api.hot_path import PushpopApp
from api.settings import Settings

log = logging.getLogger("pushpop.dapr")

TOKEN_HEADER = b"dapr-api-token"
# Always guarded, plus whatever else DaprActor registers: the actor and Dapr callback
# space, and DaprActor's own health route.
GUARDED_PREFIXES = ("/actors/", "/dapr/")
GUARDED_EXACT = ("/healthz", "/dapr/config", "/actors")


@dataclass
class _Turn:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


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
        self._turns: dict[str, _Turn] = {}

    async def run(self, actor: str, call: Callable[[], Awaitable[None]]) -> None:
        """Run ``call`` holding ``actor``'s turn (``actor`` = "{type}/{id}")."""
        t = self._turns.get(actor)
        if t is None:
            t = self._turns[actor] = _Turn()
        t.users += 1
        self.count += 1
        self._idle.clear()
        try:
            async with t.lock:
                await call()
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
        await self.calls.run(actor, lambda: self.app(scope, receive, send))


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


DRAIN_ONGOING_CALL_SECONDS = 2.0


def actor_runtime_config(settings: Settings) -> ActorRuntimeConfig:
    """What ``daprd`` reads from ``GET /dapr/config``.

    The SDK default idle timeout is one hour; ours follows ``PUSHPOP_IDLE_TIMEOUT`` like
    the embedded runtime, with a scan interval of a quarter of it (1 s .. 30 s) so an idle
    actor goes within 1.25 idle timeouts.

    Drain: when the placement table changes (a host joins, leaves or dies), daprd holds
    new calls to the actor type and waits up to ``drainOngoingCallTimeout`` for the calls
    in progress, *twice* in one round (claims, then rebalanced actors), all within
    placement's 8 s dissemination timeout. A call in progress may itself be waiting for a
    state operation that the same round holds, so a long drain just burns the budget: at
    10 s (clamped by daprd to 6.4 s) the round missed the deadline, placement dropped the
    surviving sidecar, and a host crash became ~10 s of 503s (tests/dapr/test_dapr_cluster.py).
    A queue call takes milliseconds; Dapr's own default of 2 s is ample. Rebalanced
    actors are drained (not cut off) so one actor never runs on two hosts at once.
    """
    idle = max(1.0, settings.idle_timeout)
    return ActorRuntimeConfig(
        actor_idle_timeout=timedelta(seconds=idle),
        actor_scan_interval=timedelta(seconds=min(30.0, max(1.0, idle / 4))),
        drain_ongoing_call_timeout=timedelta(
            seconds=min(DRAIN_ONGOING_CALL_SECONDS, settings.request_timeout)
        ),
        drain_rebalanced_actors=True,
        reentrancy=None,
    )


def reset_hosted_actors() -> int:
    """Forget every actor active in this process (with its state cache); returns how many.

    For a sidecar that died: placement may have given its actors to another host
    meanwhile, so the caches here may be stale by the time the new sidecar routes them
    back. Forgetting them makes the next call activate afresh from the store.
    SDK internals: see :mod:`actor_service.runtime.sdk_compat`.
    """
    return forget_hosted_actors()


def create_dapr_app(
    settings: Settings, invoker: DaprInvoker | None = None, claim: Claim | None = None
) -> PushpopApp:
    """The Dapr-mode app: gateway routes + ``DaprActor`` routes hosting ``QueueActor``.

    ``claim`` is this host's shared claim on the database: while it is lost or fenced the
    actor routes refuse daprd's calls, so no state is written on this host's behalf.
    """
    configure_actor(settings)
    invoker = invoker or DaprInvoker(settings, claim=claim)
    app = create_app(settings, invoker=invoker, claim=claim)

    # DaprActor includes its routes into whatever it is given: give it a router of its
    # own, then include that without documenting it (sidecar plumbing, not public API)
    sidecar_routes = APIRouter()
    actor_ext = DaprActor(sidecar_routes)  # type: ignore[arg-type]
    app.include_router(sidecar_routes, include_in_schema=False)
    exact: set[str] = set(GUARDED_EXACT)
    prefixes: set[str] = set(GUARDED_PREFIXES)
    for route in actor_routes(actor_ext, sidecar_routes):
        path = getattr(route, "path", "")
        if "{" in path:
            prefixes.add(path.split("{", 1)[0])
        elif path:
            exact.add(path)
    calls = app.state.sidecar_calls = SidecarCalls()
    guard = {
        "token": settings.app_api_token,
        "exact": frozenset(exact),
        "prefixes": tuple(sorted(prefixes)),
        "calls": calls,
        "claim": claim,
    }
    app.add_middleware(SidecarGuard, **guard)
    if settings.hot_path:
        # daprd's actor method calls: the same guard and metrics, not the framework
        method_route = next(
            r for r in actor_routes(actor_ext, sidecar_routes)
            if getattr(r, "path", "").endswith("/method/{method_name}")
        )  # fmt: skip
        observed = ObserveMiddleware(ActorMethodRoute(method_route), app.state.metrics)
        app.add_hot_route(is_actor_method_call, SidecarGuard(observed, **guard))

    ActorRuntime.set_actor_config(actor_runtime_config(settings))
    serializer = PlainJSONSerializer()
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with inner(app):
            # after invoker.start(): actors use the invoker's sidecar session for state.
            # daprd asks for /dapr/config only once the port listens, i.e. after this.
            await actor_ext.register_actor(
                QueueActor,
                message_serializer=serializer,
                state_serializer=serializer,
                actor_client=invoker.actor_client,
            )
            if isinstance(invoker.actor_client, DirectStateClient):
                # saves as the embedded runtime makes them: one store transaction,
                # each value encoded once, group commit
                install_state_provider(
                    registered_context(ACTOR_TYPE), StoreStateProvider(invoker.actor_client)
                )
            if not settings.app_api_token:
                log.warning(
                    "APP_API_TOKEN is not set: the actor routes (/actors/...) answer anyone "
                    "who can reach this port"
                )
            yield

    app.router.lifespan_context = lifespan
    return app


__all__ = [
    "SidecarCalls",
    "SidecarGuard",
    "actor_of",
    "actor_runtime_config",
    "create_dapr_app",
    "reset_hosted_actors",
]
