"""The transport to one ``daprd``: its HTTP API (a lean keep-alive pool) and its gRPC state API.

Shared by the gateway's invoker and the actor host's state client; maps daprd's errors
to the API's 503s, and a call that was sent but never answered to :class:`SidecarLost`.
Not the SDK's ``ActorProxy`` (a new connection per call, a blocking health check) nor
aiohttp (its per-request machinery cost more CPU than the call's own work).
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from yarl import URL

from actor_service.errors import PushpopError, RuntimeUnavailable, StoreUnavailable
from actor_service.runtime.dapr.http1 import ConnectionPool, Lost, NotSent, Timeout
from actor_service.serializer import dumps

log = logging.getLogger("pushpop.dapr")

API_TOKEN_HEADER = "dapr-api-token"
MAX_MESSAGE_BYTES = 32 * 1024 * 1024
"""Largest state value or message we expect: a segment of 100 items of 64 KiB, a pop
of 100 of them, a push of ``max_body_bytes``; daprd gets the same ``--max-body-size``."""

# a path that needs no escaping (queue ids and state keys nearly always)
_PLAIN_PATH = re.compile(r"/[A-Za-z0-9._~:/@!$&'()*+,;=-]*")


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
    """HTTP to one ``daprd``: one keep-alive pool (:mod:`.http1`) for every caller.

    Created unopened; :meth:`open` must run inside the event loop that will use it.
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
        self.host, self.port = host, http_port
        self.origin = f"http://{host}:{http_port}"
        self.base = f"{self.origin}/v1.0"
        self.actors_base = f"{self.base}/actors"
        # every request's fixed headers, written once here
        fixed = [f"Host: {host}:{http_port}", "Content-Type: application/json"]
        if api_token:
            fixed.append(f"{API_TOKEN_HEADER}: {api_token}")
        self._headers = "".join(f"{h}\r\n" for h in fixed).encode("latin-1")
        self.timeout = timeout
        self.pool_size = pool_size
        self._pool: ConnectionPool | None = None

    async def open(self) -> None:
        if self._pool is None:
            self._pool = ConnectionPool(
                self.host, self.port, self.pool_size, min(2.0, self.timeout)
            )

    async def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def _target(self, url: str) -> bytes:
        """The request target of ``url`` (one of daprd's), escaped as aiohttp would."""
        if url.startswith(self.origin):
            path = url[len(self.origin) :]
            if _PLAIN_PATH.fullmatch(path):
                return path.encode()
        return URL(url).raw_path_qs.encode()

    async def request(
        self, method: str, url: str, body: bytes | None = None, deadline: float | None = None
    ) -> tuple[int, bytes]:
        """Send one request; raise :class:`RuntimeUnavailable` if daprd cannot be reached,
        :class:`SidecarLost` if it was sent and no answer came back.

        ``deadline`` (seconds) overrides the client's timeout for this request.
        """
        pool = self._pool
        if pool is None:
            raise RuntimeUnavailable("Dapr sidecar client is not started")
        within = self.timeout if deadline is None else deadline
        body = body or b""
        head = b"%s %s HTTP/1.1\r\n%sContent-Length: %d\r\n\r\n" % (
            method.encode(), self._target(url), self._headers, len(body),
        )  # fmt: skip
        try:
            return await pool.request(head, body, within)
        except NotSent as exc:  # no connection: nothing was sent
            raise RuntimeUnavailable(f"Dapr sidecar unreachable at {self.base} ({exc})") from exc
        except Timeout as exc:
            raise SidecarLost(f"no answer from the Dapr sidecar within {within:g}s") from exc
        except Lost as exc:
            raise SidecarLost(f"the Dapr sidecar at {self.base} dropped the call ({exc})") from exc

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
