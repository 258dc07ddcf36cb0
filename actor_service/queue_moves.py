"""Operations that move items between queues, and the settings that say where to.

A mixin of :class:`~actor_service.queue_state.QueueState`: dead-letter, redrive, the
outbox (``x:{seq}`` rows saved with the items' removal, delivered after it, confirmed once
the target took them) and the target's ``receive``, which applies each transfer once.
"""

from __future__ import annotations

from typing import Any

from actor_service.errors import InvalidRequest
from actor_service.queue_access import StateAccess
from actor_service.queue_layout import (
    MAX_QUEUE_ID,
    Entry,
    Op,
    Transfer,
    dead_letter_queue,
    format_id,
    transfer_key,
    with_extra,
)


class QueueMoves(StateAccess):
    """Dead-letter, redrive, the transfer outbox and inbox, and per-queue settings.

    Uses the queue operations' own steps (``_begin``, ``_open_lock``, ``_end_lock``,
    ``_take_front``, ``_append``), which :class:`QueueState` brings.
    """

    # ------------------------------------------------------------------ settings
    def settings(self) -> dict[str, Any]:
        cfg = self.meta.get("cfg") or {}
        return {
            "queue_id": self.queue_id,
            "max_deliveries": cfg.get("md"),
            "dead_letter_queue": cfg.get("dlq") or dead_letter_queue(self.queue_id),
        }

    def get_settings(self) -> Op:
        yield from self._begin()
        return self.settings()

    def put_settings(self, changes: dict[str, Any]) -> Op:
        """Set the given fields (``None`` resets one to its default); returns all."""
        yield from self._begin()
        cfg = dict(self.meta.get("cfg") or {})
        for field, short in (("max_deliveries", "md"), ("dead_letter_queue", "dlq")):
            if field in changes:
                if changes[field] is None:
                    cfg.pop(short, None)
                else:
                    cfg[short] = changes[field]
        target = cfg.get("dlq") or dead_letter_queue(self.queue_id)
        if cfg.get("md") and len(target) > MAX_QUEUE_ID:
            raise InvalidRequest(
                "INVALID_SETTINGS",
                f"this queue's dead-letter queue would be {target[:40]}... ({len(target)} "
                f"characters, past the {MAX_QUEUE_ID} of a queue id): with max_deliveries, "
                "name a dead_letter_queue too",
            )
        if cfg:
            self.meta["cfg"] = cfg
        else:
            self.meta.pop("cfg", None)
        self._touch_meta()
        return self.settings()

    def _transfer(self, target: str, entries: list[Entry]) -> None:
        """Record an outbox transfer of locked-form entries to another queue (see
        :meth:`dead_letter`): written in this save, delivered after it."""
        seq = self.meta["xseq"] + 1
        self.meta["xseq"] = seq
        self.meta["out"].append(seq)
        self._set(transfer_key(seq), {"target": target, "items": entries})
        self._touch_meta()

    def dead_letter(self, lock_id: str) -> Op:
        """Close a lock into an outbox transfer to ``{queue}-deadletter``.

        The caller delivers the transfer (see :meth:`deliver_pending` and
        :meth:`receive`) and then confirms it with :meth:`confirm`; the outbox entry
        is written in the same save that closes the lock, so a crash in between
        loses nothing and the receiver's sequence check drops duplicates.
        """
        yield from self._begin()
        lock = yield from self._open_lock(lock_id)
        target = self.settings()["dead_letter_queue"]
        if len(target) > MAX_QUEUE_ID:  # no call could reach the items there
            raise InvalidRequest(
                "INVALID_QUEUE_ID",
                f"the dead-letter queue of this queue would be {len(target)} characters, past "
                f"the {MAX_QUEUE_ID} of a queue id; nothing was moved, the lock still holds "
                "its items (release or acknowledge it, or set the queue's dead_letter_queue)",
            )
        entries = yield from self._end_lock(lock_id, give_back=False)
        self._transfer(target, entries)
        return int(lock["n"]), target

    def redrive(self, target: str, limit: int) -> Op:
        """Move up to ``limit`` waiting items, in pop order, to the back of ``target``
        through the outbox (as :meth:`dead_letter` does); returns ``(moved, remaining)``."""
        yield from self._begin()
        if target == self.queue_id:
            raise InvalidRequest("INVALID_REQUEST", "redrive needs a queue other than this one")
        moved: list[Entry] = []
        for p in sorted(self.meta["pri"], key=int):
            if len(moved) >= limit:
                break
            for entry in (yield from self._take_front(int(p), limit - len(moved))):
                moved.append([int(p), *entry])
        if moved:
            self._transfer(target, moved)
        return len(moved), self.depth()

    def pending_transfers(self) -> Op:
        """Transfers recorded but not yet confirmed, oldest first."""
        yield from self._begin()
        seqs = list(self.meta["out"])
        yield from self._load(transfer_key(s) for s in seqs)
        out = []
        for s in seqs:
            rec = self._values.get(transfer_key(s))
            if not (
                isinstance(rec, dict)
                and isinstance(rec.get("target"), str)
                and isinstance(rec.get("items"), list)
            ):
                raise self._corrupt(f"dead-letter transfer {s} is missing or malformed",
                                    transfer_key(s))  # fmt: skip
            out.append(Transfer(s, rec["target"], rec["items"]))
        return out

    def confirm(self, seqs: list[int]) -> Op:
        """Forget delivered transfers."""
        yield from self._begin()
        done = set(seqs)
        self.meta["out"] = [s for s in self.meta["out"] if s not in done]
        for s in done:
            self._delete(transfer_key(s))
        self._touch_meta()
        return len(done)

    def receive(self, source: str, seq: int, entries: list[Entry], origin: str = "") -> Op:
        """Apply a transfer from ``source`` once: a sequence already seen is a no-op.

        Transfers from one source arrive in sequence order (the source delivers its
        outbox oldest first and stops at the first failure), so remembering the last
        sequence per source is an exact duplicate check in constant space. A
        transfer is never refused for depth: refusing would strand the items.
        """
        yield from self._begin()
        recv = self.meta["recv"]
        if recv.get(source, 0) >= seq:
            return 0
        recv[source] = seq
        groups: dict[int, list[Entry]] = {}
        # enqueued_at restarts at arrival in this queue: it is what time-in-queue and
        # oldest_enqueued_at mean here, and it keeps enqueued_at ordered like ids;
        # deliveries restart too, and the item remembers where it came from
        for p, old_id, item, *_ in entries:
            n = self.meta["next_id"]
            self.meta["next_id"] = n + 1
            extra = {"o": [origin, format_id(old_id)]} if origin else {}
            groups.setdefault(int(p), []).append(with_extra([n, item, self.now], extra))
        for p, group in groups.items():
            yield from self._append(p, group)
        self._touch_meta()
        return len(entries)
