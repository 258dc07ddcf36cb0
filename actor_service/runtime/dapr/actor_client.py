"""The actor host's side of Dapr mode: the SDK's client seam, backed by ``daprd``.

Actors use it for their state (``GET .../state/{key}``, ``PUT .../state`` transactions)
and for the dead-letter hand-over to another actor; it shares the gateway's pooled
connection to the sidecar (:class:`~.sidecar.SidecarClient`).

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

import logging
import re
from typing import Any

from dapr.clients.base import DaprActorClientBase

from actor_service.errors import StoreUnavailable
from actor_service.runtime.dapr.sidecar import GrpcStateClient, SidecarClient, SidecarError
from actor_service.runtime.store_state import StoreStateReads
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
quantifiers keep the scan linear: ~80 us for a full segment (12 KB), where the naive
alternation took ~300 us on every save."""


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


__all__ = ["HTTP_LOSSY", "DirectStateClient", "SidecarActorClient"]
