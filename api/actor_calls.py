"""How the gateway reaches a queue's actor: the interface every invoker implements.

Routes call :meth:`ActorInvoker.call` and get the actor's result or a raised
:class:`PushpopError`. Below it, in this order: the coalescer if the app was built with
it (:mod:`api.coalescer`), then the runtime's invoker, in this process
(:mod:`api.invoker`) or through ``daprd`` (:mod:`api.dapr.invoker`).
"""

from __future__ import annotations

import abc
import time
from typing import Any

from actor_service.errors import PushpopError, StoreUnavailable
from actor_service.stores.claim import Claim


def unwrap(reply: Any) -> dict[str, Any]:
    """The actor answers ``{"ok": ...}`` or ``{"error": ...}``; raise the latter."""
    if isinstance(reply, dict):
        if "error" in reply:
            raise PushpopError.from_dict(reply["error"])
        if "ok" in reply:
            return reply["ok"]
    raise PushpopError(f"unexpected actor reply: {str(reply)[:200]}")


class ActorInvoker(abc.ABC):
    """Calls a queue's actor. ``timeout`` is each request's deadline
    (``PUSHPOP_REQUEST_TIMEOUT``), counted from :meth:`call`."""

    # this host's claim on its database (actor_service/stores/claim.py), if it took one
    claim: Claim | None = None

    # event-loop iterations a coalescer in front of this invoker lets pass between a
    # batch's replies and its next batch (api/coalescer.py)
    settle = 0

    def __init__(self, *, timeout: float) -> None:
        self.timeout = timeout

    async def call(self, queue_id: str, method: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Invoke ``method`` on the queue's actor; return its result or raise. The one
        place a request's deadline is computed: everything below is handed it."""
        self.check_claim()
        deadline = time.monotonic() + self.timeout
        return unwrap(await self.invoke(queue_id, method, payload, deadline))

    @abc.abstractmethod
    async def invoke(
        self, actor_id: str, method: str, payload: dict[str, Any], deadline: float
    ) -> dict[str, Any]:
        """One actor call, answered by ``deadline`` (``time.monotonic()``): its reply,
        ``{"ok": ...}`` or ``{"error": ...}``; a failure to reach it raises."""

    def check_claim(self) -> None:
        """503 while the claim is lost or fenced: an attribute read, not a query."""
        if self.claim is not None and not self.claim.held:
            raise StoreUnavailable(f"state store: {self.claim.reason}")

    @abc.abstractmethod
    async def start(self) -> None: ...

    @abc.abstractmethod
    async def stop(self) -> None: ...

    @abc.abstractmethod
    async def ready(self) -> None:
        """Raise a 503-mapped error unless the runtime and its state store answer."""

    def active_actors(self) -> float:
        return float("nan")

    def describe(self) -> str:
        return self.__class__.__name__


__all__ = ["ActorInvoker", "unwrap"]
