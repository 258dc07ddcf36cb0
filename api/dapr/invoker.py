"""Dapr mode: reach queue actors through the ``daprd`` sidecar's HTTP API.

Two clients share one keep-alive connection pool to the sidecar:

* :class:`DaprInvoker` (the gateway side): ``POST /v1.0/actors/QueueActor/{id}/method/{M}``
  with the request as plain JSON, the actor's ``{"ok"|"error"}`` reply back.
* :class:`SidecarActorClient` (the actor side): the SDK's ``DaprActorClientBase`` seam that
  actors use for their state (``GET .../state/{key}``, ``PUT .../state`` transactions) and
  for the dead-letter hand-over to another actor.

Why not the SDK's ``ActorProxy``/``DaprActorHttpClient``: it opens a new aiohttp
session, hence a new TCP connection to the sidecar, for every call, and its constructor
blocks (synchronously) until the sidecar answers its health check. Measured on this box
(``benchmarks/dapr_vs_embedded.py --proxy``), the pooled direct call is faster; the
numbers are in ``docs/scaling.md``.

Failures never escape as a 500 with a trace: a sidecar that cannot be reached, that
times out, or that reports a placement problem becomes ``RuntimeUnavailable`` (503,
``Retry-After``); a state-store failure becomes ``StoreUnavailable`` (503).

State writes are lossless. ``daprd``'s HTTP state API decodes the JSON of a transaction
into Go values, i.e. numbers through float64 (integers beyond 2**53 change, ``1.0`` comes
back as ``1``, ``1e16`` as an integer) and strings into jsonb (which refuses U+0000: such
an item could never be pushed). A transaction whose bytes could be affected (a cheap,
conservative scan: :data:`HTTP_LOSSY`) therefore goes over daprd's gRPC API instead,
whose values are raw bytes (stored base64, ``isbinary``, like the embedded store does
for U+0000). Everything else takes the faster HTTP path and is stored as jsonb, exactly
as the embedded runtime stores it. Reads and method calls pass bytes through unchanged.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from typing import Any

import aiohttp
from dapr.clients.base import DaprActorClientBase

from actor_service.actor import ACTOR_TYPE
from actor_service.errors import PushpopError, RuntimeUnavailable, StoreUnavailable
from actor_service.runtime import sdk_compat
from actor_service.serializer import dumps
from api.invoker import ActorInvoker, unwrap
from api.settings import Settings

log = logging.getLogger("pushpop.dapr")

STATE_STORE = "statestore"
"""Name of the actor state store component (``components/*/statestore.yaml``)."""

READY_PROBE_ID = "~ready~"
"""Actor id ``ready()`` asks for ``Stats``: ``~`` is not allowed in queue ids, so the probe
can never touch (or be mistaken for) a user's queue."""

API_TOKEN_HEADER = "dapr-api-token"
MAX_MESSAGE_BYTES = 32 * 1024 * 1024
"""Largest state value or message we expect: a segment of 100 items of 64 KiB, a pop
of 100 of them, a push of ``max_body_bytes``; daprd gets the same ``--max-body-size``."""

HTTP_LOSSY = re.compile(
    rb"[:,\[]-?[0-9]"  # a number token starts (after ":", "," or "[" in compact JSON)
    rb"(?:[0-9]{15}"  # ... an integer of 16+ digits (beyond float64's 2**53)
    rb"|[0-9]*+\.0(?![0-9])"  # ... an integral float (Go writes 1.0 as 1)
    rb"|[0-9.]*+[eE])"  # ... a number with an exponent (type/format may change)
    rb"|\\u0000"  # U+0000: jsonb refuses it
)
"""Bytes of a state transaction that daprd's HTTP state API might not store as sent.

Numbers in our compact JSON follow ``:``, ``,`` or ``[``; the pattern may also match
inside a string (then the transaction merely takes the gRPC path), never misses a number
that float64 or jsonb would change: Python writes floats in shortest round-trip form,
which Go reproduces for every float with a fraction and no exponent. Possessive
quantifiers keep the scan linear: ~80 us for a full segment (12 KB), where the naive
alternation took ~300 us on every save."""
JSON_HEADERS = {"content-type": "application/json"}

# daprd error codes (pkg/messages/predefined.go, 1.18) that mean "the state store failed":
# ERR_STATE_GET, ERR_STATE_STORE_NOT_FOUND, ERR_ACTOR_STATE_GET,
# ERR_ACTOR_STATE_TRANSACTION_SAVE, ...
_STORE_CODE_PREFIXES = ("ERR_STATE_", "ERR_ACTOR_STATE_")
# how daprd reports that the app's actor route answered 500: an exception in the actor
_APP_FAILED = "error from actor service: (500)"
READY_STATE_KEY = "pushpop-ready-probe"
"""Key ``ready()`` reads through daprd's plain state API (stored as ``{app-id}||{key}``,
never written): it reaches the store from *this* sidecar whatever placement does."""
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
        except TimeoutError as exc:
            raise RuntimeUnavailable(
                f"no answer from the Dapr sidecar within {deadline or self.timeout:g}s"
            ) from exc
        except aiohttp.ClientError as exc:
            raise RuntimeUnavailable(
                f"Dapr sidecar unreachable at {self.base} ({exc.__class__.__name__})"
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


class SidecarActorClient(DaprActorClientBase):
    """The actor side of the SDK seam, over the shared :class:`SidecarClient`.

    Raises :class:`StoreUnavailable` for state failures (the actor turns it into an
    ``{"error": STORE_UNAVAILABLE}`` reply) and :class:`RuntimeUnavailable` when the
    sidecar is gone; both are among the errors ``QueueActor`` catches.

    ``state_api``: ``auto`` sends a transaction over HTTP unless :data:`HTTP_LOSSY` finds
    something in it that HTTP could change, then over gRPC; ``grpc`` always uses gRPC.
    """

    def __init__(
        self,
        sidecar: SidecarClient,
        grpc_state: GrpcStateClient,
        *,
        state_api: str = "auto",
        state_timeout: float | None = None,
    ) -> None:
        if state_api not in ("auto", "grpc"):
            raise ValueError("state_api must be auto or grpc")
        self.sidecar = sidecar
        self.grpc_state = grpc_state
        self.state_api = state_api
        # shorter than the gateway's deadline: a slow store frees the actor's turn and
        # answers STORE_UNAVAILABLE before the gateway gives up on the whole call
        self.state_timeout = state_timeout or max(1.0, sidecar.timeout * 0.8)

    def _url(self, actor_type: str, actor_id: str, rest: str) -> str:
        return f"{self.sidecar.actors_base}/{actor_type}/{actor_id}/{rest}"

    async def invoke_method(
        self, actor_type: str, actor_id: str, method: str, data: bytes | None = None
    ) -> bytes:
        status, body = await self.sidecar.request(
            "POST", self._url(actor_type, actor_id, f"method/{method}"), data or b""
        )
        if status // 100 != 2:
            raise SidecarError.from_body(status, body).to_pushpop(f"{actor_type}.{method}")
        return body

    async def save_state_transactionally(self, actor_type: str, actor_id: str, data: bytes) -> None:
        if self.state_api == "grpc" or HTTP_LOSSY.search(data):
            await self.grpc_state.transact(actor_type, actor_id, data, self.state_timeout)
            return
        status, body = await self.sidecar.request(
            "PUT", self._url(actor_type, actor_id, "state"), data, deadline=self.state_timeout
        )
        if status // 100 != 2:
            err = SidecarError.from_body(status, body)
            log.warning("saving state of %s/%s failed: %s", actor_type, actor_id, err)
            raise StoreUnavailable(f"state store failed behind the Dapr sidecar: {err.code}")

    async def get_state(self, actor_type: str, actor_id: str, name: str) -> bytes:
        status, body = await self.sidecar.request(
            "GET", self._url(actor_type, actor_id, f"state/{name}"), deadline=self.state_timeout
        )
        if status == 204 or status == 404:
            return b""
        if status // 100 != 2:
            err = SidecarError.from_body(status, body)
            log.warning("reading state %s of %s/%s failed: %s", name, actor_type, actor_id, err)
            raise StoreUnavailable(f"state store failed behind the Dapr sidecar: {err.code}")
        return body

    async def _simple(self, method: str, url: str, data: bytes | None = None) -> None:
        status, body = await self.sidecar.request(method, url, data)
        if status // 100 != 2:
            raise SidecarError.from_body(status, body).to_pushpop(url.rsplit("/", 2)[-2])

    async def register_reminder(
        self, actor_type: str, actor_id: str, name: str, data: bytes
    ) -> None:
        await self._simple("PUT", self._url(actor_type, actor_id, f"reminders/{name}"), data)

    async def unregister_reminder(self, actor_type: str, actor_id: str, name: str) -> None:
        await self._simple("DELETE", self._url(actor_type, actor_id, f"reminders/{name}"))

    async def register_timer(self, actor_type: str, actor_id: str, name: str, data: bytes) -> None:
        await self._simple("PUT", self._url(actor_type, actor_id, f"timers/{name}"), data)

    async def unregister_timer(self, actor_type: str, actor_id: str, name: str) -> None:
        await self._simple("DELETE", self._url(actor_type, actor_id, f"timers/{name}"))


def hosted_actor_count(actor_type: str = ACTOR_TYPE) -> float:
    """Actors of ``actor_type`` active in *this* process (NaN if not registered here)."""
    return sdk_compat.hosted_actor_count(actor_type)


class DaprInvoker(ActorInvoker):
    """Calls queue actors through the sidecar at ``127.0.0.1:{settings.dapr_http_port}``."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(timeout=settings.request_timeout, coalesce=settings.coalesce)
        self.settings = settings
        self.sidecar = SidecarClient(
            settings.dapr_http_port,
            settings.dapr_api_token,
            timeout=settings.request_timeout,
            pool_size=max(64, settings.pool_size * 16),
        )
        # DAPR_GRPC_PORT, which the launcher, Compose and the Kubernetes injector all set
        self.grpc_state = GrpcStateClient(settings.dapr_grpc_port, settings.dapr_api_token)
        self.actor_client = SidecarActorClient(
            self.sidecar,
            self.grpc_state,
            state_api=settings.dapr_state_api.lower() or "auto",
        )

    async def start(self) -> None:
        await self.sidecar.open()

    async def stop(self) -> None:
        await super().stop()
        await self.sidecar.close()
        await self.grpc_state.close()

    async def invoke(
        self, actor_id: str, method: str, payload: dict[str, Any], deadline: float
    ) -> Any:
        """One actor call; the decoded reply (``{"ok": ...}`` or ``{"error": ...}``)."""
        url = f"{self.sidecar.actors_base}/{ACTOR_TYPE}/{actor_id}/method/{method}"
        within = max(0.001, deadline - time.monotonic())
        status, body = await self.sidecar.request("POST", url, dumps(payload), within)
        if 200 <= status < 300:
            try:
                return json.loads(body)
            except ValueError:
                log.error("actor %s.%s answered non-JSON: %r", actor_id, method, body[:200])
                raise PushpopError("the queue actor answered something that is not JSON") from None
        err = SidecarError.from_body(status, body)
        if _APP_FAILED in err.message:
            # DaprActor's answer to an exception raised in the actor: a bug, not an
            # outage. It carries repr(exc): log it, never send it to the client.
            log.error("actor %s.%s raised: %s", actor_id, method, err.message)
            raise PushpopError("internal error in the queue actor; see server log")
        log.warning("actor call %s.%s failed: %s", actor_id, method, err)
        raise err.to_pushpop(method)

    async def ready(self) -> None:
        """The sidecar answers, an actor call goes through (placement has a table and a
        host answers), and the state store answers this sidecar.

        The store gets its own read: the probe actor's state is cached once it is active,
        so ``Stats`` alone would stay green with the database down.
        """
        self.check_claim()
        deadline = min(5.0, self.settings.request_timeout)
        await self.sidecar.healthz(deadline)
        unwrap(await self.invoke(READY_PROBE_ID, "Stats", {}, time.monotonic() + deadline))
        url = f"{self.sidecar.base}/state/{STATE_STORE}/{READY_STATE_KEY}"
        status, body = await self.sidecar.request("GET", url, deadline=deadline)
        if status // 100 != 2:
            raise SidecarError.from_body(status, body).to_pushpop("state store read")

    def active_actors(self) -> float:
        return hosted_actor_count()

    def describe(self) -> str:
        return f"Dapr actors via the sidecar at {self.sidecar.base}"


async def wait_until_ready(invoker: DaprInvoker, within: float) -> None:
    """Poll :meth:`DaprInvoker.ready` until it passes; re-raise the last error after
    ``within`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        try:
            await invoker.ready()
            return
        except PushpopError:
            if loop.time() >= deadline:
                raise
        await asyncio.sleep(0.2)


__all__ = [
    "HTTP_LOSSY",
    "READY_PROBE_ID",
    "DaprInvoker",
    "GrpcStateClient",
    "SidecarActorClient",
    "SidecarClient",
    "SidecarError",
    "hosted_actor_count",
    "wait_until_ready",
]
