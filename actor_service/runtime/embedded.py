"""The embedded runtime: hosts ``QueueActor`` in-process with Dapr's actor guarantees.

From the SDK it reuses ``ActorRuntimeContext``, the lifecycle hooks and
``ActorStateManager``, but not ``ActorManager``'s dispatch (built for daprd's wire
protocol): a call finds its activation in a dict. It adds what daprd gives in Dapr mode:
one call at a time per actor, idle deactivation, state in a store (:mod:`.store_state`)
and actor-to-actor calls; SDK internals only through :mod:`actor_service.sdk_compat`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from dapr.actor.id import ActorId
from dapr.actor.runtime.actor import Actor
from dapr.actor.runtime.context import ActorRuntimeContext
from dapr.clients.base import DaprActorClientBase

from actor_service.actor import ACTOR_TYPE, QueueActor
from actor_service.errors import StoreUnavailable
from actor_service.runtime.deadline import wait_until
from actor_service.runtime.store_state import StoreStateProvider, StoreStateReads
from actor_service.runtime.turns import Turn
from actor_service.sdk_compat import (
    ActorTypeInformation,
    activate,
    deactivate,
    install_state_provider,
    method_names,
)
from actor_service.serializer import PlainJSONSerializer, dumps
from actor_service.stores.base import StateStore, call_deadline

log = logging.getLogger("pushpop.embedded")

T = TypeVar("T")


def _consume_result(task: asyncio.Future[Any]) -> None:
    """Retrieve the outcome of a call its caller gave up on, so asyncio logs no warning."""
    if not task.cancelled():
        task.exception()


class StoreActorClient(StoreStateReads, DaprActorClientBase):
    """The SDK's actor-client seam, backed by our store instead of the sidecar."""

    def __init__(self, store: StateStore, app_id: str, host: EmbeddedRuntime) -> None:
        self.store = store
        self.app_id = app_id
        self.host = host

    async def invoke_method(
        self, actor_type: str, actor_id: str, method: str, data: bytes | None = None
    ) -> bytes:
        return await self.host.invoke_raw(actor_type, actor_id, method, data or b"")

    async def save_state_transactionally(self, actor_type: str, actor_id: str, data: bytes) -> None:
        # abstract in the SDK's client base, but never reached: StoreStateProvider (the
        # state provider this runtime installs) writes the store itself, encoding each
        # value once, so a second, JSON-reparsing path here would only be a twin of it
        raise NotImplementedError("embedded saves go through StoreStateProvider.save_state")

    async def register_reminder(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError("reminders need Dapr mode; QueueActor does not use them")

    async def unregister_reminder(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError("reminders need Dapr mode; QueueActor does not use them")

    async def register_timer(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError("timers need Dapr mode; QueueActor does not use them")

    async def unregister_timer(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError("timers need Dapr mode; QueueActor does not use them")


class EmbeddedRuntime:
    """Hosts actors of one type in this process, on top of a :class:`StateStore`."""

    def __init__(
        self,
        store: StateStore,
        *,
        app_id: str = "pushpop",
        actor_class: type[QueueActor] = QueueActor,
        idle_timeout: float = 60.0,
        scan_interval: float | None = None,
        turn_timeout: float = 30.0,
    ) -> None:
        self.store = store
        self.app_id = app_id
        self.idle_timeout = idle_timeout
        self.scan_interval = scan_interval or max(0.05, min(10.0, idle_timeout / 4))
        self.turn_timeout = turn_timeout
        self.actor_type = actor_class.__name__
        self.client = StoreActorClient(store, app_id, self)
        serializer = PlainJSONSerializer()
        self.ctx = ActorRuntimeContext(
            ActorTypeInformation.create(actor_class), serializer, serializer, self.client
        )
        install_state_provider(self.ctx, StoreStateProvider(self.client))
        self._methods = method_names(actor_class)
        self._actors: dict[str, Actor] = {}  # the activations, by actor id
        self._turns: dict[str, Turn] = {}
        self._reaper: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.store.open()
        self._reaper = asyncio.create_task(self._reap_forever(), name="pushpop-actor-reaper")

    async def stop(self) -> None:
        if self._reaper:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
        for actor_id in list(self._turns):
            await self._deactivate(actor_id, force=True)
        await self.store.close()

    @property
    def active_actors(self) -> int:
        return len(self._actors)

    async def invoke(
        self, actor_id: str, method: str, payload: Any, deadline: float | None = None
    ) -> Any:
        """Call ``method`` on actor ``actor_id`` with a JSON-able payload; its reply, by
        ``deadline`` (``time.monotonic()``; the gateway's, computed once per request).

        In-process, the payload and the reply stay Python objects (no JSON round trip).
        """
        name = self._methods.get(method)
        if name is None:
            raise ValueError(f"{self.actor_type} has no method {method!r}")
        return await self._run(actor_id, lambda: self._call(actor_id, name, payload), deadline)

    async def _call(self, actor_id: str, name: str, payload: Any) -> Any:
        """One method of the activation of ``actor_id`` (made on first use); in its turn."""
        actor = self._actors.get(actor_id)
        if actor is None:
            actor = self.ctx.create_actor(ActorId(actor_id))
            await activate(actor)
            self._actors[actor_id] = actor
        return await getattr(actor, name)(payload)

    async def invoke_raw(self, actor_type: str, actor_id: str, method: str, body: bytes) -> bytes:
        """The SDK client seam's call (actor to actor, e.g. the dead-letter hand-over)."""
        if actor_type != self.actor_type:
            raise ValueError(f"actor type {actor_type!r} is not hosted here")
        payload = self.ctx.message_serializer.deserialize(body) if body else None
        return dumps(await self.invoke(actor_id, method, payload))

    async def _run(
        self, actor_id: str, call: Callable[[], Awaitable[T]], deadline: float | None
    ) -> T:
        """Run one actor call, answering by ``deadline`` whatever the store does.

        The call runs as its own task and the caller stops waiting at the deadline: a
        call already inside the actor is never cancelled half-way (its cached state
        would no longer match the store), it finishes in the background while the
        stores refuse to start work, or to commit, after the deadline. This is the one
        place a call's :data:`~actor_service.stores.base.call_deadline` is set.
        """
        if deadline is None:  # actor to actor: the caller's; a direct call: turn_timeout
            outer = call_deadline.get()
            deadline = outer if outer is not None else time.monotonic() + self.turn_timeout
        token = call_deadline.set(deadline)
        try:
            task = asyncio.ensure_future(self._turn(actor_id, deadline, call))
        finally:
            call_deadline.reset(token)
        try:
            return await wait_until(task, deadline)
        except TimeoutError:
            task.add_done_callback(_consume_result)
            raise StoreUnavailable(
                f"queue {actor_id!r} did not answer within {self.turn_timeout:g}s "
                "(state store slow or queue busy)"
            ) from None

    async def _turn(self, actor_id: str, deadline: float, call: Callable[[], Awaitable[T]]) -> T:
        turn = self._turns.get(actor_id)
        if turn is None:
            turn = self._turns[actor_id] = Turn()
        turn.users += 1
        try:
            if not turn.lock.locked():  # the usual case: taken at once, no timer needed
                await turn.lock.acquire()
            else:
                try:
                    await asyncio.wait_for(turn.lock.acquire(), deadline - time.monotonic())
                except TimeoutError as exc:
                    raise self._busy(actor_id) from exc
            if time.monotonic() >= deadline:  # a free lock can still have had waiters
                turn.lock.release()
                raise self._busy(actor_id)
            try:
                return await call()
            finally:
                turn.last_used = time.monotonic()
                turn.lock.release()
        finally:
            turn.users -= 1

    def _busy(self, actor_id: str) -> StoreUnavailable:
        within = f"{self.turn_timeout:g}s"
        return StoreUnavailable(f"queue {actor_id!r} is busy: no turn within {within}")

    async def _deactivate(self, actor_id: str, force: bool = False) -> None:
        turn = self._turns.get(actor_id)
        if turn is None:
            return
        turn.users += 1  # hold the entry while we wait for the turn
        try:
            async with turn.lock:
                idle = time.monotonic() - turn.last_used >= self.idle_timeout
                actor = self._actors.get(actor_id)
                if (force or idle) and actor is not None:
                    del self._actors[actor_id]
                    try:
                        await deactivate(actor)
                    except Exception as exc:  # never let one actor stop the reaper
                        log.warning("deactivating %s failed: %s", actor_id, exc)
        finally:
            turn.users -= 1
        if turn.users == 0 and (force or time.monotonic() - turn.last_used >= self.idle_timeout):
            if self._turns.get(actor_id) is turn:
                del self._turns[actor_id]

    async def reap_idle(self) -> int:
        """Deactivate every actor idle for ``idle_timeout``; returns how many were found."""
        now = time.monotonic()
        idle = [
            aid
            for aid, t in self._turns.items()
            if t.users == 0 and now - t.last_used >= self.idle_timeout
        ]
        # in chunks, concurrently: deactivation awaits I/O, and the reaper must keep
        # up with a stream of short-lived queues
        for i in range(0, len(idle), 256):
            await asyncio.gather(*(self._deactivate(aid) for aid in idle[i : i + 256]))
        return len(idle)

    async def _reap_forever(self) -> None:
        while True:
            await asyncio.sleep(self.scan_interval)
            try:
                await self.reap_idle()
            except Exception:  # pragma: no cover - keep reaping
                log.exception("actor reaper failed")

    async def ready(self) -> None:
        await self.store.ping()


__all__ = ["ACTOR_TYPE", "EmbeddedRuntime", "StoreActorClient"]
