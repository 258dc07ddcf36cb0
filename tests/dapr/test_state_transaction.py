"""Dapr mode's state provider (actor_client.SidecarStateProvider) sends daprd the very
transaction the SDK's own provider builds: the same bytes for upserts, deletes, TTLs and
valueless upserts, and still the same after a segment's entries were cached by an
earlier save (only its unchanged entries are reused, never a stale one); and its choice
of daprd's HTTP or gRPC state API, scanning only what a push appended, is the choice a
scan of the whole transaction makes."""

from __future__ import annotations

import random
from typing import Any

from dapr.actor.runtime.state_change import ActorStateChange, StateChangeKind

from actor_service.runtime.dapr.actor_client import (
    HTTP_LOSSY,
    SidecarActorClient,
    SidecarStateProvider,
)
from actor_service.runtime.dapr.sidecar import GrpcStateClient, SidecarClient
from actor_service.sdk_compat import StateProvider
from actor_service.serializer import PlainJSONSerializer


class Recording(SidecarActorClient):
    """The real client, whose transactions are kept (with their HTTP_LOSSY verdict)."""

    def __init__(self) -> None:
        super().__init__(SidecarClient(1, None), GrpcStateClient(1, None))
        self.sent: list[bytes] = []
        self.lossy: list[bool] = []

    async def save_transaction(
        self, actor_type: str, actor_id: str, data: bytes, lossy: bool
    ) -> None:
        self.sent.append(data)
        self.lossy.append(lossy)


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


def _item(rng: random.Random) -> Any:
    """A pushed item, now and then with what HTTP's JSON would alter (an exponent, an
    integral float, a 16+ digit integer, U+0000) or what only looks like it."""
    return rng.choice([
        lambda: {"n": rng.randint(-(10**6), 10**6), "s": "a:1,[2e"},
        lambda: {"f": rng.random() * 10 ** rng.randint(-3, 8)},
        lambda: [rng.randint(0, 9), "x" * rng.randint(0, 40), None, True],
        lambda: rng.choice([1e-07, 2.0, -3.0, 10**17, -(10**16), 2.5e20, "\u0000", "0.0"]),
        lambda: {"k": ",[-0", "v": [rng.random(), 12345678901234]},
    ])()  # fmt: skip


async def test_the_http_or_grpc_choice_is_a_whole_scans_as_segments_grow_and_shrink() -> None:
    rng = random.Random(25)
    ours = SidecarStateProvider(Recording())
    segments: dict[str, dict[str, Any]] = {}
    next_id = 1
    for _ in range(1500):
        name = f"s:{rng.randint(0, 2)}:0"
        seg = segments.setdefault(name, {"start": 0, "items": []})
        roll = rng.random()
        if roll < 0.6:  # a push: entries appended to the same list
            for _ in range(rng.randint(1, 3)):
                seg["items"].append([next_id, _item(rng), 1733480000 + rng.random()])
                next_id += 1
        elif roll < 0.9 and seg["items"]:  # a pop: entries taken from the front
            k = rng.randint(1, len(seg["items"]))
            seg["start"] += k
            seg["items"] = seg["items"][k:]
        elif roll < 0.93 and seg["items"]:
            # an entry made lossy in place, its bytes as long as before, with a push or
            # a pop around it: only a comparison of the bytes can tell this from either
            i = rng.randrange(len(seg["items"]))
            n, _, at = seg["items"][i]
            seg["items"][i] = [n, {"v": 12.25}, at]
            await ours.save_state("QueueActor", "q", [_change(name, seg, StateChangeKind.update)])
            seg["items"][i] = [n, {"v": 1e-07}, at]
            if rng.random() < 0.5 or i == 0:
                seg["items"].append([next_id, {"n": 1}, 1.25])
                next_id += 1
            else:
                seg["start"] += i
                seg["items"] = seg["items"][i:]
        elif roll < 0.95:  # the segment removed
            segments.pop(name)
            await ours.save_state("QueueActor", "q", [_change(name, None, StateChangeKind.remove)])
            continue
        meta = {"next_id": next_id, "at": rng.choice([1.5, 2.0, 3e-9, 7])}
        await ours.save_state("QueueActor", "q", [
            _change("meta", meta, StateChangeKind.update),
            _change(name, seg, StateChangeKind.update),
        ])  # fmt: skip
    client = ours.client
    assert isinstance(client, Recording)
    verdicts = [HTTP_LOSSY.search(data) is not None for data in client.sent]
    assert client.lossy == verdicts
    assert 0.1 < sum(verdicts) / len(verdicts) < 0.9  # both paths were taken, often
