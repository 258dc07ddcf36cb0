"""The app in Dapr mode: the gateway API and the actor host in one FastAPI app.

The actor host (:mod:`actor_service.runtime.dapr`: the routes daprd calls, their guard,
the actors' state client) is mounted next to the gateway routes of
:func:`api.app.create_app`, which call actors back through ``daprd``
(:class:`~api.dapr.invoker.DaprInvoker`). One process, one port: the same app serves
clients and its sidecar. This module is only that wiring.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI

from actor_service.runtime.dapr.actor_route import is_actor_method_call
from actor_service.runtime.dapr.guard import SidecarGuard
from actor_service.runtime.dapr.host import DaprActorHost, configure_actor_runtime
from actor_service.stores.claim import Claim
from api.app import configure_actor, create_app
from api.asgi import ObserveMiddleware, PushpopApp
from api.dapr.invoker import DaprInvoker
from api.request_body import read_body
from api.settings import Settings

log = logging.getLogger("pushpop.dapr")


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

    # the actor routes on a router of their own, included without documenting them
    # (sidecar plumbing, not public API)
    host = DaprActorHost(APIRouter(), token=settings.app_api_token, claim=claim)
    app.include_router(host.router, include_in_schema=False)
    app.state.sidecar_calls = host.calls
    app.add_middleware(SidecarGuard, **host.guard_options)
    if settings.hot_path:
        # daprd's actor method calls: the same guard and metrics, not the framework
        observed = ObserveMiddleware(host.method_route(read_body), app.state.metrics)
        app.add_hot_route(is_actor_method_call, SidecarGuard(observed, **host.guard_options))

    configure_actor_runtime(settings.idle_timeout, settings.request_timeout)
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with inner(app):
            # after invoker.start(): actors use the invoker's sidecar session for state.
            # daprd asks for /dapr/config only once the port listens, i.e. after this.
            await host.register(invoker.actor_client)
            if not settings.app_api_token:
                log.warning(
                    "APP_API_TOKEN is not set: the actor routes (/actors/...) answer anyone "
                    "who can reach this port"
                )
            yield

    app.router.lifespan_context = lifespan
    return app


__all__ = ["create_dapr_app"]
