"""The actor host's side of Dapr mode: the SDK's client seam and state provider over daprd.

Actors read and save their state through daprd (or, with ``PUSHPOP_DAPR_STATE=direct``,
this host's own store) and hand dead letters to other actors, on the gateway's pooled
connection to the sidecar. A save is one daprd state transaction; one that HTTP's JSON
could alter (:data:`HTTP_LOSSY`) goes over daprd's gRPC API, whose values are raw bytes.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from dapr.actor.runtime.state_change import ActorStateChange, StateChangeKind
from dapr.clients.base import DaprActorClientBase

from actor_service.errors import StoreUnavailable
from actor_service.queue_layout import is_segment_key
from actor_service.runtime.dapr.sidecar import GrpcStateClient, SidecarClient, SidecarError
from actor_service.runtime.store_state import StoreStateReads
from actor_service.sdk_compat import StateProvider
from actor_service.serializer import PlainJSONSerializer, SegmentEncoder, dumps
from actor_service.stores.base import StateStore

log = logging.getLogger("pushpop.dapr")

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
quantifiers keep the scan linear."""


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


class DirectStateClient(StoreStateReads, SidecarActorClient):
    """``PUSHPOP_DAPR_STATE=direct``: the hosted actors' state in this host's own store.

    Calls to other actors (the dead-letter hand-over) still go through daprd; state reads
    come from the store, and saves go through the embedded runtime's state provider
    (installed on the actor type's context, see :mod:`.host`), one transaction per
    call with group commit. Keys are Dapr's own (``{app}||QueueActor||{id}||{key}``) in
    Dapr's table layout, so a database moves between the two settings unchanged.
    """

    def __init__(
        self,
        sidecar: SidecarClient,
        grpc_state: GrpcStateClient,
        store: StateStore,
        app_id: str,
        **kwargs: Any,
    ) -> None:
        super().__init__(sidecar, grpc_state, **kwargs)
        self.store = store
        self.app_id = app_id

    async def save_state_transactionally(self, actor_type: str, actor_id: str, data: bytes) -> None:
        raise NotImplementedError("direct saves go through StoreStateProvider.save_state")


class SidecarStateProvider(StateProvider):
    """The SDK's state provider for state through daprd, with the same transaction
    (``[{"operation", "request": {"key", "value"}}, ...]``) built in one pass, and a
    segment's unchanged entries not encoded again (:class:`SegmentEncoder`)."""

    def __init__(self, client: SidecarActorClient) -> None:
        super().__init__(client, PlainJSONSerializer())
        self.client = client
        self.segments = SegmentEncoder()

    async def save_state(
        self, actor_type: str, actor_id: str, state_changes: list[ActorStateChange]
    ) -> None:
        ops: list[bytes] = []
        for change in state_changes:
            name = change.state_name
            key = dumps(name)
            if change.change_kind == StateChangeKind.remove:
                ops.append(b'{"operation":"delete","request":{"key":%b}}' % key)
                self.segments.forget(f"{actor_type}||{actor_id}||{name}")
                continue
            value = b""
            if change.value is not None:
                encoded = (
                    self.segments.encode(f"{actor_type}||{actor_id}||{name}", change.value)
                    if is_segment_key(name)
                    else dumps(change.value)
                )
                value = b',"value":%b' % encoded
            if change.ttl_in_seconds is not None and change.ttl_in_seconds >= 0:
                value += b',"metadata":{"ttlInSeconds":"%d"}' % change.ttl_in_seconds
            ops.append(b'{"operation":"upsert","request":{"key":%b%b}}' % (key, value))
        data = b"[%b]" % b",".join(ops)
        await self.client.save_state_transactionally(actor_type, actor_id, data)


__all__ = ["HTTP_LOSSY", "DirectStateClient", "SidecarActorClient", "SidecarStateProvider"]
