"""daprd's calls to an actor method, answered without the framework.

In Dapr mode every queue operation crosses this app twice: the client's request at the
gateway, then daprd's ``PUT /actors/QueueActor/{id}/method/{Method}``. Profiled at 50
queues, the second one spent more of the event loop in FastAPI's middleware, router and
dependency solving than in ``DaprActor``'s route itself. :class:`ActorMethodRoute` is
that route as plain ASGI: the same ``ActorRuntime.dispatch`` call, the same answers
(the bytes the SDK serialised with ``application/json; utf-8``; an exception becomes
DaprActor's 500 ``{"message": repr(exc), "errorCode": ...}``, which daprd relays and
:mod:`api.dapr.invoker` recognises). It sits behind the same
:class:`~actor_service.runtime.dapr.guard.SidecarGuard` (token, claim, one call at a time
per actor) and the same metrics middleware; only the layers in between are skipped.
Timers, reminders, deactivation and anything with an escaped character in its path take
the full route.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from dapr.actor import ActorRuntime
from dapr.clients.exceptions import ERROR_CODE_UNKNOWN, DaprInternalError
from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope, Send

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
        try:
            result = await ActorRuntime.dispatch(actor_type, actor_id, method, body, reentrancy_id)
            status, content_type = 200, CONTENT_TYPE
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


__all__ = ["ActorMethodRoute", "BodyReader", "is_actor_method_call"]
