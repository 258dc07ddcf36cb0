"""Every use of the Dapr Python SDK's private internals, in one place.

The public API cannot host actors without the sidecar, call one without its dispatch,
drop single keys from an actor's cache, count or forget hosted actors, or list
``DaprActor``'s routes. Each need is one small function here, so an SDK upgrade is
checked in one file (``tests/unit/test_sdk_compat.py`` pins the version).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from dapr.actor.runtime._state_provider import StateProvider
from dapr.actor.runtime._type_information import ActorTypeInformation
from dapr.actor.runtime.context import ActorRuntimeContext
from dapr.actor.runtime.manager import ActorManager
from dapr.actor.runtime.runtime import ActorRuntime
from dapr.actor.runtime.state_change import StateChangeKind

# the SDK release these internals were read from (major.minor)
WRITTEN_FOR = "1.19"


def install_state_provider(ctx: ActorRuntimeContext, provider: StateProvider) -> None:
    """Make ``ctx``'s actors save through ``provider`` (the embedded runtime's store)."""
    ctx._provider = provider


def registered_context(actor_type: str) -> ActorRuntimeContext:
    """The runtime context ``ActorRuntime.register_actor`` built for ``actor_type``."""
    return ActorRuntime._actor_managers[actor_type]._runtime_ctx


def registered_manager(actor_type: str) -> ActorManager | None:
    """The manager ``ActorRuntime`` keeps for ``actor_type`` (None: not registered)."""
    return ActorRuntime._actor_managers.get(actor_type)


def actor_class_of(manager: ActorManager) -> type:
    """The actor class ``manager`` hosts."""
    return manager._runtime_ctx.actor_type_info.implementation_type


async def invoke_failed(actor: Any) -> None:
    """What the SDK's manager does to an actor whose method raised a Dapr error."""
    await actor._on_invoke_failed_internal()


def method_names(actor_class: type) -> dict[str, str]:
    """Each actor method as it is called (``"Push"``) -> the Python method serving it."""
    from dapr.actor.runtime._type_utils import get_dispatchable_attrs

    return {name: spec["method_name"] for name, spec in get_dispatchable_attrs(actor_class).items()}


async def activate(actor: Any) -> None:
    """What the SDK's manager does to an actor it creates: an empty cache, ``_on_activate``."""
    await actor._on_activate_internal()


async def deactivate(actor: Any) -> None:
    """What the SDK's manager does to an actor it drops: cache cleared, ``_on_deactivate``."""
    await actor._on_deactivate_internal()


async def dispatch_object(manager: ActorManager, actor_id: Any, method: str, payload: Any) -> Any:
    """``manager.dispatch`` without its JSON round trip: the argument and the result stay
    Python objects (the embedded runtime's callers have them as such already; encoding
    them for the SDK to decode again was two of a push's four JSON passes)."""
    from dapr.actor.runtime._method_context import ActorMethodContext

    async def call(actor: Any) -> Any:
        return await manager._dispatcher.dispatch(actor, method, payload)

    context = ActorMethodContext.create_for_actor(method)
    return await manager._dispatch_internal(actor_id, context, call)


def active_actor_ids(manager: ActorManager) -> dict[Any, Any]:
    """The manager's live activations, keyed by actor id (read-only use, please)."""
    return manager._active_actors


def hosted_actor_count(actor_type: str) -> float:
    """Actors of ``actor_type`` active in this process under ``ActorRuntime``; NaN when
    the type is not registered here (or the SDK moved its internals)."""
    try:
        manager = ActorRuntime._actor_managers.get(actor_type)
        return float(len(manager._active_actors)) if manager is not None else float("nan")
    except Exception:  # pragma: no cover - the SDK moved its internals
        return float("nan")


def forget_hosted_actors() -> int:
    """Drop every activation (and its state cache) ``ActorRuntime`` holds; returns how many."""
    n = 0
    for manager in list(ActorRuntime._actor_managers.values()):
        n += len(manager._active_actors)
        manager._active_actors.clear()
    return n


def evict_cached_state(state_manager: Any, keep: Iterable[str]) -> None:
    """Forget cached keys of an actor's state manager except ``keep`` (unchanged ones only),
    so memory per active actor stays bounded."""
    tracker = getattr(state_manager, "_default_state_change_tracker", None)
    if tracker is None:
        return
    hot = set(keep)
    for key in [k for k, m in tracker.items() if k not in hot]:
        if tracker[key].change_kind == StateChangeKind.none:
            del tracker[key]


def is_cached(state_manager: Any, key: str) -> bool:
    """Whether an actor's state manager holds ``key`` in its cache (False if unsure)."""
    tracker = getattr(state_manager, "_default_state_change_tracker", None)
    meta = tracker.get(key) if tracker is not None else None
    return meta is not None and meta.change_kind != StateChangeKind.remove


def actor_routes(actor_ext: Any, fallback: Any) -> list[Any]:
    """The routes ``DaprActor`` registered (its router is private)."""
    return list(getattr(actor_ext, "_router", fallback).routes)


__all__ = [
    "WRITTEN_FOR",
    "ActorTypeInformation",
    "StateProvider",
    "activate",
    "active_actor_ids",
    "actor_class_of",
    "actor_routes",
    "deactivate",
    "dispatch_object",
    "evict_cached_state",
    "forget_hosted_actors",
    "hosted_actor_count",
    "install_state_provider",
    "invoke_failed",
    "is_cached",
    "method_names",
    "registered_context",
    "registered_manager",
]
