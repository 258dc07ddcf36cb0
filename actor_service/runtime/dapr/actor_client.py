"""The actor host's side of Dapr mode: the SDK's client seam and state provider over daprd.

Actors read and save their state through daprd (or, with ``PUSHPOP_DAPR_STATE=direct``,
this host's own store) and hand dead letters to other actors, on the gateway's pooled
connection to the sidecar. A save is one daprd state transaction; one that HTTP's JSON
could alter (:data:`HTTP_LOSSY`) goes over daprd's gRPC API, whose values are raw bytes.
"""

from __future__ import annotations

import logging
import re
from collections import OrderedDict
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
        await self.save_transaction(actor_type, actor_id, data, HTTP_LOSSY.search(data) is not None)

    async def save_transaction(
        self, actor_type: str, actor_id: str, data: bytes, lossy: bool
    ) -> None:
        """Save the transaction ``data``; ``lossy``: :data:`HTTP_LOSSY` finds something in it."""
        if self.state_api == "grpc" or lossy:
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


CLEAN_BYTES = 8 << 20
"""Memory for the segments' clean encodings (:class:`SidecarStateProvider`): a miss only
costs a whole scan."""


class SidecarStateProvider(StateProvider):
    """The SDK's state provider for state through daprd, with the same transaction
    (``[{"operation", "request": {"key", "value"}}, ...]``) built in one pass, and a
    segment's unchanged entries neither encoded nor scanned by :data:`HTTP_LOSSY` again.

    A push appends to its tail segment: when a segment's bytes are its last clean bytes
    (``]}`` off) followed by ``,`` and more, only the new end is scanned. A match cannot
    start before the ``,`` and end after it (no number token or ``\\u0000`` holds a
    ``,``), and one wholly before it was in the clean bytes already. A pop shortens its
    head segment: when the entries left are the clean bytes' end from an entry on (after
    a ``,``), only the new ``{"start":N,"items":[`` is scanned: a match in the entries, or
    one from the ``[`` into them, would have matched in the clean bytes (from the ``,``).
    """

    def __init__(self, client: SidecarActorClient) -> None:
        super().__init__(client, PlainJSONSerializer())
        self.client = client
        self.segments = SegmentEncoder()
        # each segment's last encoding in which HTTP_LOSSY found nothing, least recently
        # saved first, CLEAN_BYTES at most in all
        self._clean: OrderedDict[str, bytes] = OrderedDict()
        self._clean_bytes = 0

    async def save_state(
        self, actor_type: str, actor_id: str, state_changes: list[ActorStateChange]
    ) -> None:
        ops: list[bytes] = []
        lossy = False
        for change in state_changes:
            name = change.state_name
            key = dumps(name)
            if change.change_kind == StateChangeKind.remove:
                ops.append(b'{"operation":"delete","request":{"key":%b}}' % key)
                self.segments.forget(f"{actor_type}||{actor_id}||{name}")
                self._forget_clean(f"{actor_type}||{actor_id}||{name}")
                lossy = lossy or HTTP_LOSSY.search(ops[-1]) is not None
                continue
            head = b'{"operation":"upsert","request":{"key":%b' % key
            tail = b"}}"
            if change.ttl_in_seconds is not None and change.ttl_in_seconds >= 0:
                tail = b',"metadata":{"ttlInSeconds":"%d"}}}' % change.ttl_in_seconds
            if change.value is None:
                ops.append(head + tail)
            elif is_segment_key(name):
                # head, ,"value":, the segment and tail meet where no match can span
                cache_key = f"{actor_type}||{actor_id}||{name}"
                encoded = self.segments.encode(cache_key, change.value)
                ops.append(b'%b,"value":%b%b' % (head, encoded, tail))
                lossy = lossy or HTTP_LOSSY.search(head) is not None
                start = b'{"start":%d,"items":[' % change.value["start"]
                lossy = self._segment_lossy(cache_key, encoded, start) or lossy
                lossy = lossy or HTTP_LOSSY.search(tail) is not None
                continue
            else:
                ops.append(b'%b,"value":%b%b' % (head, dumps(change.value), tail))
            lossy = lossy or HTTP_LOSSY.search(ops[-1]) is not None
        data = b"[%b]" % b",".join(ops)
        await self.client.save_transaction(actor_type, actor_id, data, lossy)

    def _segment_lossy(self, cache_key: str, encoded: bytes, prefix: bytes) -> bool:
        """Whether HTTP_LOSSY finds something in ``encoded``, the segment's bytes, which
        start with ``prefix`` (``{"start":N,"items":[``)."""
        old = self._forget_clean(cache_key)
        start, end = 0, len(encoded)
        if old is None or not old.endswith(b"]}"):
            pass
        elif (  # a push: the old entries, then "," and new ones
            len(encoded) > len(old)
            and encoded[len(old) - 2] == ord(",")
            and encoded.startswith(old[:-2])
        ):
            start = len(old) - 2
        elif (  # a pop: a new prefix, then the old entries' last ones (after a ",")
            encoded.startswith(prefix)
            and len(old) > len(encoded) - len(prefix) + 2
            and old[len(old) - (len(encoded) - len(prefix)) - 1] == ord(",")
            and old.endswith(encoded[len(prefix) :])
        ):
            end = len(prefix)
        if HTTP_LOSSY.search(encoded, start, end) is not None:
            return True
        self._clean[cache_key] = encoded
        self._clean_bytes += len(encoded)
        while self._clean_bytes > CLEAN_BYTES:
            self._clean_bytes -= len(self._clean.popitem(last=False)[1])
        return False

    def _forget_clean(self, cache_key: str) -> bytes | None:
        old = self._clean.pop(cache_key, None)
        if old is not None:
            self._clean_bytes -= len(old)
        return old


__all__ = ["HTTP_LOSSY", "DirectStateClient", "SidecarActorClient", "SidecarStateProvider"]
