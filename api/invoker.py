"""The embedded runtime's invoker: calls the queue actors hosted in this process."""

from __future__ import annotations

from typing import Any

from actor_service.runtime.embedded import EmbeddedRuntime
from api.actor_calls import ActorInvoker


class EmbeddedInvoker(ActorInvoker):
    """Calls actors hosted in this process."""

    def __init__(self, runtime: EmbeddedRuntime) -> None:
        super().__init__(timeout=runtime.turn_timeout)
        self.runtime = runtime

    async def start(self) -> None:
        await self.runtime.start()

    async def stop(self) -> None:
        await self.runtime.stop()

    async def invoke(
        self, actor_id: str, method: str, payload: dict[str, Any], deadline: float
    ) -> dict[str, Any]:
        return await self.runtime.invoke(actor_id, method, payload, deadline)

    async def ready(self) -> None:
        self.check_claim()
        await self.runtime.ready()

    def active_actors(self) -> float:
        return float(self.runtime.active_actors)

    def describe(self) -> str:
        return f"embedded runtime, state in {self.runtime.store.describe()}"


__all__ = ["EmbeddedInvoker"]
