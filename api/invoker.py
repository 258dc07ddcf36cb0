"""How the gateway reaches a queue's actor: one interface, one implementation per runtime.

Routes call :meth:`ActorInvoker.call` and get the actor's result or a raised
:class:`PushpopError`; whether the actor lives in this process or behind ``daprd``
is this module's business only.
"""

from __future__ import annotations

import abc
import time
from typing import Any

from actor_service.errors import PushpopError, StoreUnavailable
from actor_service.runtime.embedded import EmbeddedRuntime
from actor_service.stores.base import call_deadline
from actor_service.stores.claim import Claim
from api.coalescer import COALESCED, Coalescer


def unwrap(reply: Any) -> dict[str, Any]:
    """The actor answers ``{"ok": ...}`` or ``{"error": ...}``; raise the latter."""
    if isinstance(reply, dict):
        if "error" in reply:
            raise PushpopError.from_dict(reply["error"])
        if "ok" in reply:
            return reply["ok"]
    raise PushpopError(f"unexpected actor reply: {str(reply)[:200]}")


class ActorInvoker(abc.ABC):
    """Calls a queue's actor: coalescing (api/coalescer.py) in front of one runtime.

    ``timeout`` is each request's deadline (``PUSHPOP_REQUEST_TIMEOUT``); ``coalesce``
    turns the merging of calls to a busy queue on (``PUSHPOP_COALESCE``).
    """

    # this host's claim on its database (actor_service/stores/claim.py), if it took one
    claim: Claim | None = None

    # event-loop iterations between a batch's replies and the next batch (api/coalescer.py)
    settle = 0

    def __init__(self, *, timeout: float, coalesce: bool = True) -> None:
        self.timeout = timeout
        self.coalescer = Coalescer(self.invoke, settle=self.settle) if coalesce else None

    async def call(self, queue_id: str, method: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Invoke ``method`` on the queue's actor; return its result or raise."""
        self.check_claim()
        deadline = time.monotonic() + self.timeout
        if self.coalescer is not None and method in COALESCED:
            return unwrap(await self.coalescer.call(queue_id, method, payload, deadline))
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

    async def stop(self) -> None:
        if self.coalescer is not None:
            await self.coalescer.close()

    @abc.abstractmethod
    async def ready(self) -> None:
        """Raise a 503-mapped error unless the runtime and its state store answer."""

    def active_actors(self) -> float:
        return float("nan")

    def describe(self) -> str:
        return self.__class__.__name__


class EmbeddedInvoker(ActorInvoker):
    """Calls actors hosted in this process."""

    def __init__(self, runtime: EmbeddedRuntime, *, coalesce: bool = True) -> None:
        super().__init__(timeout=runtime.turn_timeout, coalesce=coalesce)
        self.runtime = runtime

    async def start(self) -> None:
        await self.runtime.start()

    async def stop(self) -> None:
        await super().stop()
        await self.runtime.stop()

    async def invoke(
        self, actor_id: str, method: str, payload: dict[str, Any], deadline: float
    ) -> dict[str, Any]:
        token = call_deadline.set(deadline)  # the runtime and the store honour it
        try:
            return await self.runtime.invoke(actor_id, method, payload)
        finally:
            call_deadline.reset(token)

    async def ready(self) -> None:
        self.check_claim()
        await self.runtime.ready()

    def active_actors(self) -> float:
        return float(self.runtime.active_actors)

    def describe(self) -> str:
        return f"embedded runtime, state in {self.runtime.store.describe()}"
