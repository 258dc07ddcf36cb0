"""Actor state kept in a :class:`StateStore` of this process, for both actor hosts.

The embedded runtime and Dapr mode's direct state (``PUSHPOP_DAPR_STATE=direct``) read
an actor's keys straight from the store and save one actor turn as one store
transaction, each value serialised once: the same two classes serve both.
"""

from __future__ import annotations

from dapr.actor.runtime.state_change import ActorStateChange, StateChangeKind

from actor_service.queue_layout import is_segment_key
from actor_service.sdk_compat import StateProvider
from actor_service.serializer import PlainJSONSerializer, SegmentEncoder, dumps
from actor_service.stores.base import StateStore, Transaction, actor_key


class StoreStateReads:
    """An actor client whose actors' state is a :class:`StateStore` of this process: its
    reads come straight from the store, and :class:`StoreStateProvider` writes to it."""

    store: StateStore
    app_id: str

    async def get_state(self, actor_type: str, actor_id: str, name: str) -> bytes:
        return await self.store.get(actor_key(self.app_id, actor_type, actor_id, name)) or b""


class StoreStateProvider(StateProvider):
    """Maps one ``save_state()`` to one store transaction, serialising each value once
    (and a segment's unchanged entries not at all, see :class:`SegmentEncoder`)."""

    def __init__(self, client: StoreStateReads) -> None:
        super().__init__(client, PlainJSONSerializer())  # type: ignore[arg-type]
        self.client = client
        self.segments = SegmentEncoder()

    async def save_state(
        self, actor_type: str, actor_id: str, state_changes: list[ActorStateChange]
    ) -> None:
        tx = Transaction()
        app = self.client.app_id
        for change in state_changes:
            key = actor_key(app, actor_type, actor_id, change.state_name)
            if change.change_kind == StateChangeKind.remove:
                tx.deletes.append(key)
                self.segments.forget(key)
            elif change.value is None:
                continue
            elif is_segment_key(change.state_name):
                tx.upserts.append((key, self.segments.encode(key, change.value)))
            else:
                tx.upserts.append((key, dumps(change.value)))
        await self.client.store.transact(tx)


__all__ = ["StoreStateProvider", "StoreStateReads"]
