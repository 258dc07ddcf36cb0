"""Dapr mode's state provider (actor_client.SidecarStateProvider) sends daprd the very
transaction the SDK's own provider builds: the same bytes for upserts, deletes, TTLs and
valueless upserts, and still the same after a segment's entries were cached by an
earlier save (only its unchanged entries are reused, never a stale one)."""

from __future__ import annotations

from typing import Any

from dapr.actor.runtime.state_change import ActorStateChange, StateChangeKind

from actor_service.runtime.dapr.actor_client import SidecarActorClient, SidecarStateProvider
from actor_service.runtime.dapr.sidecar import GrpcStateClient, SidecarClient
from actor_service.sdk_compat import StateProvider
from actor_service.serializer import PlainJSONSerializer


class Recording(SidecarActorClient):
    """The real client, whose transactions are kept instead of sent."""

    def __init__(self) -> None:
        super().__init__(SidecarClient(1, None), GrpcStateClient(1, None))
        self.sent: list[bytes] = []

    async def save_state_transactionally(self, actor_type: str, actor_id: str, data: bytes) -> None:
        self.sent.append(data)


async def _both(changes: list[ActorStateChange], ours: SidecarStateProvider) -> tuple[bytes, bytes]:
    sdk_client = Recording()
    await StateProvider(sdk_client, PlainJSONSerializer()).save_state("QueueActor", "q", changes)
    await ours.save_state("QueueActor", "q", changes)
    assert isinstance(ours.client, Recording)
    return sdk_client.sent[-1], ours.client.sent[-1]


def _change(
    name: str, value: Any, kind: StateChangeKind, ttl: int | None = None
) -> ActorStateChange:
    return ActorStateChange(name, value, kind, ttl)


async def test_the_same_transaction_as_the_sdk_segments_cached_or_not() -> None:
    ours = SidecarStateProvider(Recording())
    entries: list[Any] = [[1, {"n": 1, "s": "é\u0001"}, 1.5], [2, [1, 2.25], 2.0]]
    segment = {"start": 1, "items": entries}
    meta = {"next_id": 3, "pri": {"0": [0, 0, 1.5]}}
    first = [
        _change("meta", meta, StateChangeKind.add),
        _change("s:0:0", segment, StateChangeKind.update),
        _change("l:abc", None, StateChangeKind.remove),
        _change("x:1", {"t": 1}, StateChangeKind.add, ttl=30),
        _change("k:1", None, StateChangeKind.update),
    ]
    sdk, mine = await _both(first, ours)
    assert mine == sdk
    # the next push: same list objects, one new entry, one entry replaced by a new object
    entries.append([3, {"n": 3}, 3.0])
    entries[0] = [1, {"n": "changed"}, 1.5]
    sdk, mine = await _both([_change("s:0:0", segment, StateChangeKind.update)], ours)
    assert mine == sdk and b'"changed"' in mine
    # a deleted segment is forgotten: written again later, it is encoded afresh
    sdk, mine = await _both([_change("s:0:0", None, StateChangeKind.remove)], ours)
    assert mine == sdk
    segment["items"] = [[9, {"n": 9}, 9.0]]
    sdk, mine = await _both([_change("s:0:0", segment, StateChangeKind.add)], ours)
    assert mine == sdk
