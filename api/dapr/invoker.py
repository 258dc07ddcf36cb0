"""Dapr mode, gateway side: reach queue actors through the ``daprd`` sidecar.

:class:`DaprInvoker` sends ``POST /v1.0/actors/QueueActor/{id}/method/{M}`` over the
pooled transport of :mod:`actor_service.runtime.dapr.sidecar`. Failures never escape as
a 500 with a trace: an unreachable or failing sidecar is a 503 (``RuntimeUnavailable``,
``StoreUnavailable``), a call whose answer was lost a 502 ``OUTCOME_UNKNOWN``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

from actor_service import sdk_compat
from actor_service.actor import ACTOR_TYPE
from actor_service.errors import OutcomeUnknown, PushpopError
from actor_service.runtime.dapr.actor_client import DirectStateClient, SidecarActorClient
from actor_service.runtime.dapr.sidecar import (
    GrpcStateClient,
    SidecarClient,
    SidecarError,
    SidecarLost,
)
from actor_service.serializer import dumps
from actor_service.stores.base import StateStore
from actor_service.stores.claim import Claim
from actor_service.stores.factory import build_store
from api.actor_calls import ActorInvoker, unwrap
from api.settings import Settings

log = logging.getLogger("pushpop.dapr")

STATE_STORE = "statestore"
"""Name of the actor state store component (``components/*/statestore.yaml``)."""

READY_PROBE_ID = "~ready~"
"""Actor id ``ready()`` asks for ``Stats``: ``~`` is not allowed in queue ids, so the probe
can never touch (or be mistaken for) a user's queue."""

# actor methods that change nothing: a lost answer to one of them is a plain 503
READ_ONLY = frozenset({"Stats", "GetSettings", "Peek"})

# how daprd reports that the app's actor route answered 500: an exception in the actor
_APP_FAILED = "error from actor service: (500)"
READY_STATE_KEY = "pushpop-ready-probe"
"""Key ``ready()`` reads through daprd's plain state API (stored as ``{app-id}||{key}``,
never written): it reaches the store from *this* sidecar whatever placement does."""


def hosted_actor_count(actor_type: str = ACTOR_TYPE) -> float:
    """Actors of ``actor_type`` active in *this* process (NaN if not registered here)."""
    return sdk_compat.hosted_actor_count(actor_type)


class DaprInvoker(ActorInvoker):
    """Calls queue actors through the sidecar at ``127.0.0.1:{settings.dapr_http_port}``."""

    # a turn costs two sidecar hops here: the coalescer in front settles, so that a hot
    # queue's callers merge into fewer turns (api/coalescer.py)
    settle = 6

    def __init__(self, settings: Settings, claim: Claim | None = None) -> None:
        super().__init__(timeout=settings.request_timeout)
        self.settings = settings
        self.sidecar = SidecarClient(
            settings.dapr_http_port,
            settings.dapr_api_token,
            timeout=settings.request_timeout,
            pool_size=max(64, settings.pool_size * 16),
        )
        # DAPR_GRPC_PORT, which the launcher, Compose and the Kubernetes injector all set
        self.grpc_state = GrpcStateClient(settings.dapr_grpc_port, settings.dapr_api_token)
        # where the actors hosted here keep their state: through daprd's state store
        # component, or (PUSHPOP_DAPR_STATE=direct) in this host's own store, one hop
        # less and with group commit; placement still keeps one activation per actor
        self.actor_client: SidecarActorClient
        self.direct_store: StateStore | None = None
        state_api = settings.dapr_state_api.lower() or "auto"
        if settings.dapr_state == "direct":
            self.direct_store = build_store(settings, claim)
            self.actor_client = DirectStateClient(
                self.sidecar, self.grpc_state, self.direct_store, settings.app_id,
                state_api=state_api,
            )  # fmt: skip
        else:
            self.actor_client = SidecarActorClient(
                self.sidecar, self.grpc_state, state_api=state_api
            )

    async def start(self) -> None:
        await self.sidecar.open()
        if self.direct_store is not None:
            await self.direct_store.open()

    async def stop(self) -> None:
        await self.sidecar.close()
        await self.grpc_state.close()
        if self.direct_store is not None:
            await self.direct_store.close()

    async def invoke(
        self, actor_id: str, method: str, payload: dict[str, Any], deadline: float
    ) -> Any:
        """One actor call; the decoded reply (``{"ok": ...}`` or ``{"error": ...}``)."""
        url = f"{self.sidecar.actors_base}/{ACTOR_TYPE}/{actor_id}/method/{method}"
        within = max(0.001, deadline - time.monotonic())
        try:
            status, body = await self.sidecar.request("POST", url, dumps(payload), within)
        except SidecarLost as exc:
            if method in READ_ONLY:
                raise
            raise OutcomeUnknown(
                f"{exc.message}: the call was sent and may have been applied; retry with "
                "the same Idempotency-Key to have it applied once"
            ) from exc
        if 200 <= status < 300:
            try:
                return json.loads(body)
            except ValueError:
                log.error("actor %s.%s answered non-JSON: %r", actor_id, method, body[:200])
                raise PushpopError("the queue actor answered something that is not JSON") from None
        err = SidecarError.from_body(status, body)
        if _APP_FAILED in err.message:
            # DaprActor's answer to an exception raised in the actor: a bug, not an
            # outage. It carries repr(exc): log it, never send it to the client.
            log.error("actor %s.%s raised: %s", actor_id, method, err.message)
            raise PushpopError("internal error in the queue actor; see server log")
        log.warning("actor call %s.%s failed: %s", actor_id, method, err)
        raise err.to_pushpop(method)

    async def ready(self) -> None:
        """The sidecar answers, an actor call goes through (placement has a table and a
        host answers), and the state store answers this sidecar.

        The store gets its own read: the probe actor's state is cached once it is active,
        so ``Stats`` alone would stay green with the database down.
        """
        self.check_claim()
        deadline = min(5.0, self.settings.request_timeout)
        if self.direct_store is not None:
            await self.direct_store.ping()
        await self.sidecar.healthz(deadline)
        unwrap(await self.invoke(READY_PROBE_ID, "Stats", {}, time.monotonic() + deadline))
        url = f"{self.sidecar.base}/state/{STATE_STORE}/{READY_STATE_KEY}"
        status, body = await self.sidecar.request("GET", url, deadline=deadline)
        if status // 100 != 2:
            raise SidecarError.from_body(status, body).to_pushpop("state store read")

    def active_actors(self) -> float:
        return hosted_actor_count()

    def describe(self) -> str:
        state = (
            f"state in {self.direct_store.describe()} (direct)"
            if self.direct_store is not None
            else "state through the sidecar's state store"
        )
        return f"Dapr actors via the sidecar at {self.sidecar.base}, {state}"


async def wait_until_ready(invoker: ActorInvoker, within: float) -> None:
    """Poll ``invoker.ready()`` (a :class:`DaprInvoker`'s, or the coalescer's in front of
    one) until it passes; re-raise the last error after ``within`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        try:
            await invoker.ready()
            return
        except PushpopError:
            if loop.time() >= deadline:
                raise
        await asyncio.sleep(0.2)


__all__ = ["READY_PROBE_ID", "DaprInvoker", "hosted_actor_count", "wait_until_ready"]
