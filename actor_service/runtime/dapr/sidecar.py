"""The transport to one ``daprd``: its HTTP API (pooled aiohttp) and its gRPC state API.

Shared by the gateway's invoker (:mod:`api.dapr.invoker`) and the actor host's state
client (:mod:`.actor_client`), so it lives with the host (the gateway may import the
runtime, never the other way round); knows daprd's error shapes and maps them to the
API's 503s, and nothing about queues.

Why not the SDK's ``ActorProxy``/``DaprActorHttpClient``: it opens a new aiohttp
session, hence a new TCP connection to the sidecar, for every call, and its constructor
blocks (synchronously) until the sidecar answers its health check. Measured on this box
(``benchmarks/dapr_vs_embedded.py --proxy``), the pooled direct call is faster; the
numbers are in ``docs/scaling.md``.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import aiohttp

from actor_service.errors import PushpopError, RuntimeUnavailable, StoreUnavailable
from actor_service.serializer import dumps

log = logging.getLogger("pushpop.dapr")

API_TOKEN_HEADER = "dapr-api-token"
MAX_MESSAGE_BYTES = 32 * 1024 * 1024
"""Largest state value or message we expect: a segment of 100 items of 64 KiB, a pop
of 100 of them, a push of ``max_body_bytes``; daprd gets the same ``--max-body-size``."""

JSON_HEADERS = {"content-type": "application/json"}


# daprd error codes (pkg/messages/predefined.go, 1.18) that mean "the state store failed":
# ERR_STATE_GET, ERR_STATE_STORE_NOT_FOUND, ERR_ACTOR_STATE_GET,
# ERR_ACTOR_STATE_TRANSACTION_SAVE, ...
_STORE_CODE_PREFIXES = ("ERR_STATE_", "ERR_ACTOR_STATE_")
# ... and words in a daprd error message that point at the store rather than the runtime
_STORE_WORDS = ("state store", "statestore", "postgres", "sqlite", "pgx", "database")


class SidecarError(Exception):
    """A non-2xx answer from ``daprd``: its status, error code and message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"daprd answered {status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message

    @classmethod
    def from_body(cls, status: int, body: bytes) -> SidecarError:
        code, message = "", body[:500].decode(errors="replace")
        try:
            data = json.loads(body) if body else {}
        except ValueError:
            data = None
        if isinstance(data, dict):
            code = str(data.get("errorCode") or data.get("code") or "")
            message = str(data.get("message") or message)
        return cls(status, code, message)

    def is_store_failure(self) -> bool:
        text = self.message.lower()
        return self.code.startswith(_STORE_CODE_PREFIXES) or any(w in text for w in _STORE_WORDS)

    def to_pushpop(self, what: str) -> PushpopError:
        """The API error this means for the client (always a 503: all of them are transient
        or operational; a bug in the actor itself surfaces as an app-side 500 instead)."""
        if self.is_store_failure():
            return StoreUnavailable(f"state store failed behind the Dapr sidecar ({what})")
        return RuntimeUnavailable(
            f"Dapr actor runtime not available ({what}: {self.code or self.status})"
        )


class SidecarLost(RuntimeUnavailable):
    """The request may have reached ``daprd`` (a connection that broke or timed out after
    it was sent): a caller whose call changes state must not say "nothing happened"."""


class SidecarClient:
    """HTTP to one ``daprd``: one aiohttp session (keep-alive pool) for every caller.

    Created unopened; :meth:`open` must run inside the event loop that will use it
    (aiohttp sessions are bound to a loop).
    """

    def __init__(
        self,
        http_port: int,
        api_token: str | None,
        *,
        timeout: float = 10.0,
        pool_size: int = 256,
        host: str = "127.0.0.1",
    ) -> None:
        self.base = f"http://{host}:{http_port}/v1.0"
        self.actors_base = f"{self.base}/actors"
        self.headers = dict(JSON_HEADERS)
        if api_token:
            self.headers[API_TOKEN_HEADER] = api_token
        self.timeout = timeout
        self.pool_size = pool_size
        self._session: aiohttp.ClientSession | None = None

    async def open(self) -> None:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.pool_size, ttl_dns_cache=None),
                timeout=aiohttp.ClientTimeout(total=self.timeout, connect=min(2.0, self.timeout)),
                headers=self.headers,
                # the body is ours, already JSON; skip aiohttp's cookie/redirect machinery
                cookie_jar=aiohttp.DummyCookieJar(),
                auto_decompress=False,
            )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            raise RuntimeUnavailable("Dapr sidecar client is not started")
        return self._session

    async def request(
        self, method: str, url: str, body: bytes | None = None, deadline: float | None = None
    ) -> tuple[int, bytes]:
        """Send one request; raise :class:`RuntimeUnavailable` if daprd cannot be reached.

        ``deadline`` (seconds) overrides the session's total timeout for this request.
        """
        kwargs: dict[str, Any] = {"data": body, "allow_redirects": False}
        if deadline is not None:
            kwargs["timeout"] = aiohttp.ClientTimeout(total=deadline)
        try:
            async with self.session.request(method, url, **kwargs) as r:
                return r.status, await r.read()
        except aiohttp.ClientConnectorError as exc:  # no connection: nothing was sent
            raise RuntimeUnavailable(
                f"Dapr sidecar unreachable at {self.base} ({exc.__class__.__name__})"
            ) from exc
        except TimeoutError as exc:
            raise SidecarLost(
                f"no answer from the Dapr sidecar within {deadline or self.timeout:g}s"
            ) from exc
        except aiohttp.ClientError as exc:
            raise SidecarLost(
                f"the Dapr sidecar at {self.base} dropped the call ({exc.__class__.__name__})"
            ) from exc

    async def healthz(self, deadline: float = 2.0) -> None:
        status, body = await self.request("GET", f"{self.base}/healthz", deadline=deadline)
        if status // 100 != 2:
            raise SidecarError.from_body(status, body).to_pushpop("sidecar health check")


class GrpcStateClient:
    """Actor state transactions over daprd's gRPC API: values travel as raw bytes.

    The channel is opened on first use, inside the running loop (grpc.aio channels are
    bound to a loop), and kept for the life of the app.
    """

    def __init__(self, grpc_port: int, api_token: str | None, *, host: str = "127.0.0.1") -> None:
        self.target = f"{host}:{grpc_port}"
        self.metadata = ((API_TOKEN_HEADER, api_token),) if api_token else ()
        self._channel: Any = None
        self._stub: Any = None

    def _open(self) -> Any:
        if self._stub is None:
            import grpc
            from dapr.proto.runtime.v1 import dapr_pb2_grpc

            self._channel = grpc.aio.insecure_channel(
                self.target,
                options=[
                    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                ],
            )
            self._stub = dapr_pb2_grpc.DaprStub(self._channel)
        return self._stub

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
            self._channel = self._stub = None

    async def transact(self, actor_type: str, actor_id: str, data: bytes, deadline: float) -> None:
        """Apply the SDK's transaction (JSON array of upserts/deletes) with raw values."""
        import grpc
        from dapr.proto.runtime.v1 import actors_pb2
        from google.protobuf.any_pb2 import Any as PbAny

        ops = []
        for op in json.loads(data):
            req = op["request"]
            kind = op["operation"]
            if kind == "upsert":
                ops.append(
                    actors_pb2.TransactionalActorStateOperation(
                        operationType="upsert",
                        key=req["key"],
                        value=PbAny(value=dumps(req.get("value"))),
                        metadata=req.get("metadata") or {},
                    )
                )
            else:
                ops.append(
                    actors_pb2.TransactionalActorStateOperation(operationType=kind, key=req["key"])
                )
        request = actors_pb2.ExecuteActorStateTransactionRequest(
            actor_type=actor_type, actor_id=actor_id, operations=ops
        )
        try:
            await self._open().ExecuteActorStateTransaction(
                request, metadata=self.metadata, timeout=deadline
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                raise RuntimeUnavailable(f"Dapr sidecar gRPC API: {exc.code().name}") from exc
            log.warning("saving state of %s/%s failed: %s", actor_type, actor_id, exc.details())
            raise StoreUnavailable(
                f"state store failed behind the Dapr sidecar: {exc.code().name}"
            ) from exc


__all__ = [
    "API_TOKEN_HEADER",
    "MAX_MESSAGE_BYTES",
    "GrpcStateClient",
    "SidecarClient",
    "SidecarError",
]
