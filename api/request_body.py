"""The one reader of a request's whole body, for the routes and for daprd's hot actor route.

Plain ASGI (``receive``), so the hot routes that skip Starlette's ``Request`` use it too;
a body past ``limit`` is refused as soon as it passes it, never buffered whole.
"""

from __future__ import annotations

from starlette.requests import ClientDisconnect
from starlette.types import Receive

from actor_service.errors import BodyTooLarge


async def read_body(receive: Receive, limit: int = 0) -> bytes:
    """The request's body; :class:`BodyTooLarge` once past ``limit`` bytes (0: no limit),
    :class:`~starlette.requests.ClientDisconnect` if the client hung up."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk = message.get("body", b"")
        size += len(chunk)
        if limit and size > limit:
            raise BodyTooLarge(f"request body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


__all__ = ["read_body"]
