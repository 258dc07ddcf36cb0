"""The Dapr SDK internals pushpop relies on (actor_service/sdk_compat.py) exist in
the installed SDK, and the SDK is the release they were read from: an upgrade fails here
first, with the module to re-check named, instead of deep inside a runtime test."""

from __future__ import annotations

import ast
from importlib.metadata import version
from pathlib import Path

from dapr.actor.runtime.context import ActorRuntimeContext
from dapr.actor.runtime.manager import ActorManager
from dapr.actor.runtime.runtime import ActorRuntime
from dapr.actor.runtime.state_manager import ActorStateManager
from dapr.ext.fastapi import DaprActor

from actor_service import sdk_compat

ROOT = Path(__file__).resolve().parents[2]
PRIVATE = {"_provider", "_active_actors", "_actor_managers", "_default_state_change_tracker",
           "_router", "_dispatcher", "_dispatch_internal", "_runtime_ctx"}  # fmt: skip


def test_sdk_version_is_the_one_the_internals_were_read_from() -> None:
    installed = ".".join(version("dapr").split(".")[:2])
    assert installed == sdk_compat.WRITTEN_FOR, (
        f"dapr {version('dapr')} installed, sdk_compat.py was written for "
        f"{sdk_compat.WRITTEN_FOR}: re-check every function there, then bump WRITTEN_FOR"
    )


def test_every_internal_still_exists() -> None:
    assert "_actor_managers" in vars(ActorRuntime)
    assert callable(getattr(ActorManager, "_dispatch_internal", None))
    assert callable(getattr(ActorManager, "activate_actor", None))
    from dapr.actor import Actor

    for hook in ("_on_activate_internal", "_on_deactivate_internal", "_on_invoke_failed_internal"):
        assert callable(getattr(Actor, hook, None)), f"Actor.{hook} is gone"
    src = [
        (ActorRuntimeContext, "_provider"),
        (ActorManager, "_active_actors"),
        (ActorManager, "_dispatcher"),
        (ActorManager, "_runtime_ctx"),
        (ActorStateManager, "_default_state_change_tracker"),
        (DaprActor, "_router"),
    ]
    import inspect

    for cls, attr in src:
        assert f"self.{attr}" in inspect.getsource(cls), f"{cls.__name__}.{attr} is gone"


def test_no_private_sdk_access_outside_sdk_compat() -> None:
    """The point of the module: one file to re-check on an SDK upgrade."""
    offenders = []
    for path in [*ROOT.glob("actor_service/**/*.py"), *ROOT.glob("api/**/*.py")]:
        if path.name == "sdk_compat.py":
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in PRIVATE:
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} .{node.attr}")
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("dapr"):
                if any(part.startswith("_") for part in (node.module or "").split(".")):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.module}")
    assert not offenders, offenders
