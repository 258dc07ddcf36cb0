"""``QueueActor`` hosted for ``daprd``: the SDK's ``DaprActor`` routes, guarded, configured.

:class:`DaprActorHost` puts the routes daprd calls on a router of their own, says which
paths the guard guards, registers the actor (plain JSON, our state providers) and sets
the actor config daprd reads; the gateway mounts it (:func:`api.dapr.app.create_dapr_app`).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from dapr.actor import ActorRuntime
from dapr.actor.runtime.config import ActorRuntimeConfig
from dapr.clients.base import DaprActorClientBase
from dapr.ext.fastapi import DaprActor
from fastapi import APIRouter

from actor_service.actor import ACTOR_TYPE, QueueActor
from actor_service.runtime.dapr.actor_client import (
    DirectStateClient,
    SidecarActorClient,
    SidecarStateProvider,
)
from actor_service.runtime.dapr.actor_route import ActorMethodRoute, BodyReader
from actor_service.runtime.dapr.guard import GUARDED_EXACT, GUARDED_PREFIXES, SidecarCalls
from actor_service.runtime.store_state import StoreStateProvider
from actor_service.sdk_compat import (
    StateProvider,
    actor_routes,
    forget_hosted_actors,
    install_state_provider,
    registered_context,
)
from actor_service.serializer import PlainJSONSerializer
from actor_service.stores.claim import Claim

DRAIN_ONGOING_CALL_SECONDS = 2.0


def actor_runtime_config(idle_timeout: float, request_timeout: float) -> ActorRuntimeConfig:
    """What ``daprd`` reads from ``GET /dapr/config``.

    The SDK default idle timeout is one hour; ours follows ``PUSHPOP_IDLE_TIMEOUT`` like
    the embedded runtime, with a scan interval of a quarter of it (1 s .. 30 s) so an idle
    actor goes within 1.25 idle timeouts.

    Drain: when the placement table changes (a host joins, leaves or dies), daprd holds
    new calls to the actor type and waits up to ``drainOngoingCallTimeout`` for the calls
    in progress, *twice* in one round (claims, then rebalanced actors), all within
    placement's 8 s dissemination timeout. A call in progress may itself be waiting for a
    state operation that the same round holds, so a long drain just burns the budget and
    placement drops the surviving sidecar (tests/dapr/test_dapr_cluster.py). A queue call
    takes milliseconds; Dapr's own default of 2 s is ample. Rebalanced actors are drained
    (not cut off) so one actor never runs on two hosts at once.
    """
    idle = max(1.0, idle_timeout)
    return ActorRuntimeConfig(
        actor_idle_timeout=timedelta(seconds=idle),
        actor_scan_interval=timedelta(seconds=min(30.0, max(1.0, idle / 4))),
        drain_ongoing_call_timeout=timedelta(
            seconds=min(DRAIN_ONGOING_CALL_SECONDS, request_timeout)
        ),
        drain_rebalanced_actors=True,
        reentrancy=None,
    )


def reset_hosted_actors() -> int:
    """Forget every actor active in this process (with its state cache); returns how many.

    For a sidecar that died: placement may have given its actors to another host
    meanwhile, so the caches here may be stale by the time the new sidecar routes them
    back. Forgetting them makes the next call activate afresh from the store.
    """
    return forget_hosted_actors()


class DaprActorHost:
    """``DaprActor``'s routes on ``router``, and what :class:`~.guard.SidecarGuard` needs.

    ``claim`` is this host's shared claim on the database: while it is lost or fenced the
    guard refuses daprd's calls, so no state is written on this host's behalf.
    """

    def __init__(self, router: APIRouter, *, token: str | None, claim: Claim | None) -> None:
        self.router = router
        # DaprActor includes its routes into whatever it is given
        self.actor_ext = DaprActor(router)  # type: ignore[arg-type]
        self.calls = SidecarCalls()
        exact: set[str] = set(GUARDED_EXACT)
        prefixes: set[str] = set(GUARDED_PREFIXES)
        for route in self.routes():
            path = getattr(route, "path", "")
            if "{" in path:
                prefixes.add(path.split("{", 1)[0])
            elif path:
                exact.add(path)
        self.guard_options: dict[str, Any] = {
            "token": token,
            "exact": frozenset(exact),
            "prefixes": tuple(sorted(prefixes)),
            "calls": self.calls,
            "claim": claim,
        }

    def routes(self) -> list[Any]:
        return actor_routes(self.actor_ext, self.router)

    def method_route(self, read_body: BodyReader) -> ActorMethodRoute:
        """daprd's actor method calls as plain ASGI (the hot path), labelled as the route."""
        route = next(
            r for r in self.routes() if getattr(r, "path", "").endswith("/method/{method_name}")
        )
        return ActorMethodRoute(route, read_body)

    async def register(self, actor_client: DaprActorClientBase) -> None:
        """Register ``QueueActor`` (its state through ``actor_client``); once the app
        starts, before daprd asks for ``/dapr/config``."""
        serializer = PlainJSONSerializer()
        await self.actor_ext.register_actor(
            QueueActor,
            message_serializer=serializer,
            state_serializer=serializer,
            actor_client=actor_client,
        )
        provider: StateProvider
        if isinstance(actor_client, DirectStateClient):
            # saves as the embedded runtime makes them: one store transaction, each
            # value encoded once, group commit
            provider = StoreStateProvider(actor_client)
        elif isinstance(actor_client, SidecarActorClient):
            provider = SidecarStateProvider(actor_client)  # one daprd transaction
        else:
            return
        install_state_provider(registered_context(ACTOR_TYPE), provider)


def configure_actor_runtime(idle_timeout: float, request_timeout: float) -> None:
    """Set the actor settings ``daprd`` reads from ``GET /dapr/config``."""
    ActorRuntime.set_actor_config(actor_runtime_config(idle_timeout, request_timeout))


__all__ = [
    "DaprActorHost",
    "actor_runtime_config",
    "configure_actor_runtime",
    "reset_hosted_actors",
]
