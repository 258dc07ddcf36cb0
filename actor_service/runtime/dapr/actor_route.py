"""daprd's calls to an actor method (the actor host's hot path), as plain ASGI.

It calls ``QueueActor`` as the embedded runtime does (the activation from the SDK
manager's table, the method from the actor's), not through the SDK's dispatch, and
answers what ``DaprActor``'s route answers; anything else takes the SDK's way.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from dapr.actor import ActorId, ActorRuntime
from dapr.clients.exceptions import ERROR_CODE_UNKNOWN, DaprInternalError
from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope, Send

from actor_service.actor import QueueActor
from actor_service.sdk_compat import (
    active_actor_ids,
    actor_class_of,
    invoke_failed,
    method_names,
    registered_manager,
)
from actor_service.serializer import dumps

BodyReader = Callable[[Receive], Awaitable[bytes]]
"""The server's reader of a whole request body (``ClientDisconnect`` if the client left)."""

REENTRANCY_HEADER = b"dapr-reentrancy-id"
CONTENT_TYPE = b"application/json; utf-8"
"""What ``DaprActor`` answers a method call with (``DEFAULT_CONTENT_TYPE`` there)."""


def is_actor_method_call(scope: Scope) -> bool:
    """``PUT /actors/{type}/{id}/method/{name}`` with nothing escaped in the raw path."""
    if scope["method"] != "PUT" or not scope["path"].startswith("/actors/"):
        return False
    parts = scope["path"].split("/")
    return (
        len(parts) == 6
        and parts[4] == "method"
        and all(parts[2:4])
        and parts[5] not in ("", "timer", "remind")
        and b"%" not in scope.get("raw_path", b"")
    )


class ActorMethodRoute:
    """``DaprActor``'s ``actor_method`` route as a plain ASGI app.

    ``route`` is the FastAPI route it stands in for: set as ``scope["route"]`` so the
    metrics label the call exactly as the full stack does; ``read_body`` is the gateway's
    body reader of its hot routes.
    """

    def __init__(self, route: Any, read_body: BodyReader) -> None:
        self.route = route
        self.read_body = read_body
        self._methods: dict[type, dict[str, str]] = {}  # by actor class

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        _, _, actor_type, actor_id, _, method = scope["path"].split("/")
        scope["route"] = self.route
        try:
            body = await self.read_body(receive)
        except ClientDisconnect:
            return  # nobody to answer; the actor never ran
        reentrancy_id = None
        for name, value in scope["headers"]:
            if name == REENTRANCY_HEADER:
                reentrancy_id = value.decode("latin-1")
                break
        status, content_type = 200, CONTENT_TYPE
        try:
            manager = registered_manager(actor_type) if reentrancy_id is None else None
            name = self._method(manager, method) if manager is not None else None
            if name is not None:
                result = dumps(await self._call(manager, actor_id, name, body))
            else:
                result = await ActorRuntime.dispatch(
                    actor_type, actor_id, method, body, reentrancy_id
                )
                if not isinstance(result, bytes):  # DaprActor's JSONResponse for the rest
                    result, content_type = dumps(result), b"application/json"
        except DaprInternalError as exc:
            status, content_type = 500, b"application/json"
            result = dumps(exc.as_json_safe_dict())
        except Exception as exc:
            status, content_type = 500, b"application/json"
            result = dumps({"message": repr(exc), "errorCode": ERROR_CODE_UNKNOWN})
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-length", str(len(result)).encode()),
                    (b"content-type", content_type),
                ],
            }
        )
        await send({"type": "http.response.body", "body": result})

    def _method(self, manager: Any, method: str) -> str | None:
        """The Python method serving ``method`` on a ``QueueActor`` type; None otherwise
        (the SDK's dispatch then answers, an unknown method with its error)."""
        cls = actor_class_of(manager)
        table = self._methods.get(cls)
        if table is None:
            table = self._methods[cls] = method_names(cls) if issubclass(cls, QueueActor) else {}
        return table.get(method)

    @staticmethod
    async def _call(manager: Any, actor_id: str, name: str, body: bytes) -> Any:
        """What the SDK's dispatch does for ``QueueActor``, less what it does not use
        (the method context, reentrancy, the pre/post hooks: the actor saves in its
        own turn): the activation made on first use, the body decoded, the method."""
        actors = active_actor_ids(manager)
        actor = actors.get(actor_id)
        if actor is None:
            await manager.activate_actor(ActorId(actor_id))
            actor = actors[actor_id]
        payload = json.loads(body) if body else None
        try:
            return await getattr(actor, name)(payload)
        except DaprInternalError:
            await invoke_failed(actor)  # the SDK's answer to it: the state cache cleared
            raise


__all__ = ["ActorMethodRoute", "BodyReader", "is_actor_method_call"]
