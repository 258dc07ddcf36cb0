"""The queue as a pure state machine over a key-value state: no I/O, no clock, no randomness.

Operations are generators: they ``yield`` the keys they need, get their values back, and
leave :meth:`QueueState.changes` for the driver (the actor, or a dict in unit tests) to
save in one transaction. Every value read is checked against meta (a contradiction raises
:class:`~actor_service.errors.StateCorrupt`) and every loop advances or stops, so no state
makes an operation cost more than O(depth + segments + locks). Why positions: docs/how-it-works.md.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

from actor_service import queue_delays, queue_idempotency, queue_tails
from actor_service.errors import (
    IdempotencyKeyReused,
    InvalidRequest,
    LockExpired,
    LockNotFound,
    QueueFull,
    TooManyLocks,
)
from actor_service.queue_access import StateAccess
from actor_service.queue_invariants import check_meta
from actor_service.queue_layout import (
    IDEM_CHUNK,
    MAX_TOMBSTONES,
    META,
    Entry,
    Need,
    Op,
    PoppedItem,
    deliveries_of,
    extra_of,
    format_id,
    idem_log_key,
    is_entry,
    is_int,
    lock_key,
    new_meta,
    origin_dict,
    seg_key,
    summarize,
)
from actor_service.queue_moves import QueueMoves

# a pushed item as the state machine takes it: (item, priority[, delay in seconds])
PushItem = tuple[dict[str, Any], int] | tuple[dict[str, Any], int, int]


class QueueState(QueueMoves, StateAccess):
    """One actor call's view of a queue: the keys it loaded and the changes it made.

    A new instance is made per call; ``now`` is the call's clock reading and
    ``new_lock_id`` makes lock ids, both injected so that tests control them.

    ``tails_checked``: the priorities whose first segment past the tail the caller (an
    actor's activation) has read already; see "Key layout" in docs/how-it-works.md.
    ``catch_up``: meta comes from the store, where a plain push may have left its tails
    behind (:mod:`.queue_tails`); false when the caller holds meta as last computed.
    """

    def hot_keys(self) -> set[str]:
        """Keys worth keeping cached for the next call: meta, each priority's ends and
        the ends of the idempotency log."""
        keys = {META}
        s = self.seg_size
        for p, (head, tail, _) in self.meta["pri"].items():
            keys.add(seg_key(int(p), head // s))
            keys.add(seg_key(int(p), (tail - 1) // s))
            keys.add(seg_key(int(p), tail // s))
        ik = self.meta.get("ik")
        if ik:
            keys.add(idem_log_key(ik[0] // IDEM_CHUNK))
            keys.add(idem_log_key(ik[1] // IDEM_CHUNK))
        return keys

    def _begin(self) -> Generator[Need, dict[str, Any], None]:
        """Load meta and return every lock whose expiry has passed (lazy expiry)."""
        yield from self._load([META])
        if self._values[META] is None:
            # not dirty: an untouched queue costs no row
            self._values[META] = new_meta(self.limits.segment_size)
        self._check_meta()
        if self.catch_up and (yield from queue_tails.read(self)):
            self._check_meta()
        expired = [lid for lid, lk in self.meta["locks"].items() if lk["exp"] <= self.now]
        if expired:
            yield from self._load(lock_key(lid) for lid in expired)
            for lid in expired:
                exp = self.meta["locks"][lid]["exp"]
                yield from self._end_lock(lid, give_back=True)
                self._tombstone(lid, exp)
        dl = self.meta.get("dl")
        if dl and dl[1] <= self.now:
            back, front = yield from queue_delays.release_due(self)
            for p, group in back.items():
                yield from self._append(p, group)
            for p, group in front.items():
                yield from self._put_front(p, group)

    # ------------------------------------------------------------------ invariants
    def _check_meta(self) -> None:
        check_meta(self._values[META], self._corrupt, self._segs_for)

    def _live_seg(self, priority: int, k: int) -> dict[str, Any]:
        """Segment ``k`` of a priority, checked to hold exactly the live positions in it.

        Live positions of a priority are ``[head, tail)``; a segment row exists iff it
        holds some of them, and then holds exactly those (contiguous, in order). Returns a
        fresh empty segment for one that holds none.
        """
        head, tail, _ = self.meta["pri"].get(str(priority), (0, 0, 0))
        s = self.seg_size
        lo, hi = max(head, k * s), min(tail, (k + 1) * s)
        key = seg_key(priority, k)
        seg = self._values.get(key)
        if lo >= hi:
            if seg is not None and (not isinstance(seg, dict) or seg.get("items")):
                raise self._corrupt(f"segment {key} holds items outside [head, tail)", key)
            return {"start": k * s, "items": []}
        if seg is None:
            raise self._corrupt(f"segment {key} is missing (meta says it holds {lo}..{hi})", key)
        if not (
            isinstance(seg, dict)
            and seg.get("start") == lo
            and isinstance(seg.get("items"), list)
            and len(seg["items"]) == hi - lo
        ):
            raise self._corrupt(f"segment {key} does not hold positions {lo}..{hi}", key)
        # the ends here, every entry when it leaves (_take_front): O(1) per segment loaded
        if not (is_entry(seg["items"][0]) and is_entry(seg["items"][-1])):
            raise self._corrupt(f"segment {key} holds a malformed entry", key)
        return seg

    # ------------------------------------------------------------------ segments
    def _segs_for(self, priority: int, lo: int, hi: int) -> list[str]:
        """Segment keys that hold positions ``[lo, hi)``."""
        if hi <= lo:
            return []
        s = self.seg_size
        return [seg_key(priority, k) for k in range(lo // s, (hi - 1) // s + 1)]

    def _append(self, priority: int, entries: list[Entry]) -> Generator[Need, Any, None]:
        """Put entries at the tail of a priority (push)."""
        pri = self.meta["pri"]
        p = str(priority)
        fresh = p not in pri
        if fresh:
            pri[p] = [0, 0, entries[0][2]]
        tail = pri[p][1]
        s = self.seg_size
        last = (tail + len(entries) - 1) // s
        ks = range(tail // s, last + 1)
        checked = self.tails_checked
        skip = checked is not None and priority in checked and not fresh
        unread = -(-tail // s) if skip else last + 1  # first segment past the tail
        yield from self._load(seg_key(priority, k) for k in ks if k < unread)
        segs = {k: self._live_seg(priority, k) for k in ks}
        if checked is not None:
            checked.add(priority)
        pos = tail
        i = 0
        while i < len(entries):
            k = pos // s
            room = (k + 1) * s - pos
            chunk = entries[i : i + room]
            seg = segs[k]
            if not seg["items"]:
                seg["start"] = pos
            seg["items"].extend(chunk)
            self._set(seg_key(priority, k), seg)
            pos += len(chunk)
            i += len(chunk)
        pri[p][1] = pos

    def _take_front(self, priority: int, n: int) -> Generator[Need, Any, list[Entry]]:
        """Remove and return up to ``n`` entries from the front of a priority."""
        pri = self.meta["pri"]
        p = str(priority)
        head, tail, _ = pri[p]
        n = min(n, tail - head)
        yield from self._load(self._segs_for(priority, head, head + n))
        s = self.seg_size
        out: list[Entry] = []
        pos = head
        while len(out) < n:
            k = pos // s
            seg = self._live_seg(priority, k)
            take = min(n - len(out), len(seg["items"]))
            key = seg_key(priority, k)
            if take <= 0:  # cannot happen after _live_seg; the loop must advance or stop
                raise self._corrupt(f"segment {key} is empty", key)
            chunk = seg["items"][:take]
            if not all(is_entry(e) for e in chunk):
                raise self._corrupt(f"segment {key} holds a malformed entry", key)
            out.extend(chunk)
            del seg["items"][:take]
            seg["start"] += take
            if seg["items"]:
                self._set(seg_key(priority, k), seg)
            else:
                self._delete(seg_key(priority, k))
            pos += take
        if pos == tail:
            del pri[p]
        else:
            pri[p][0] = pos
            yield from self._load([seg_key(priority, pos // s)])
            pri[p][2] = self._live_seg(priority, pos // s)["items"][0][2]
        return out

    def _peek_front_id(self, priority: int) -> Generator[Need, Any, int | None]:
        pri = self.meta["pri"].get(str(priority))
        if pri is None:
            return None
        k = pri[0] // self.seg_size
        yield from self._load([seg_key(priority, k)])
        return int(self._live_seg(priority, k)["items"][0][0])

    def _put_front(self, priority: int, entries: list[Entry]) -> Generator[Need, Any, None]:
        """Give entries back before the head, keeping the priority sorted by id.

        Everything still queued that has a smaller id than a given-back item was
        itself given back earlier (items leave from the front in id order), so
        only that short run at the front is taken out and merged.
        """
        entries = sorted(entries, key=lambda e: e[0])
        top = entries[-1][0]
        merged = list(entries)
        while True:
            front = yield from self._peek_front_id(priority)
            if front is None or front > top:
                break
            merged.extend((yield from self._take_front(priority, 1)))
        merged.sort(key=lambda e: e[0])
        pri = self.meta["pri"]
        p = str(priority)
        if p not in pri:
            pri[p] = [0, 0, merged[0][2]]
        head = pri[p][0]
        new_head = head - len(merged)
        yield from self._load(self._segs_for(priority, new_head, head))
        s = self.seg_size
        segs = {k: self._live_seg(priority, k) for k in range(new_head // s, (head - 1) // s + 1)}
        pos = head
        i = len(merged)
        while i > 0:
            k = (pos - 1) // s
            room = pos - k * s
            chunk = merged[max(0, i - room) : i]
            seg = segs[k]
            if not seg["items"]:
                seg["start"] = pos
            seg["items"][0:0] = chunk
            seg["start"] -= len(chunk)
            self._set(seg_key(priority, k), seg)
            pos -= len(chunk)
            i -= len(chunk)
        pri[p][0] = new_head
        pri[p][2] = merged[0][2]

    # ------------------------------------------------------------------ locks
    def _tombstone(self, lock_id: str, expired_at: float) -> None:
        gone = self.meta["gone"]
        gone[lock_id] = expired_at
        while len(gone) > MAX_TOMBSTONES:
            del gone[next(iter(gone))]

    def _end_lock(
        self, lock_id: str, give_back: bool, delay: float = 0
    ) -> Generator[Need, Any, list[Entry]]:
        """Close a lock; with ``give_back`` its items return to the front (after
        ``delay`` seconds), but those delivered ``max_deliveries`` times go to the
        dead-letter queue instead."""
        key = lock_key(lock_id)
        yield from self._load([key])
        row = self._values.get(key)
        if row is None:
            raise self._corrupt(f"lock {lock_id!r} is open in meta but its row is missing", key)
        entries = row.get("items") if isinstance(row, dict) else None
        if not (
            isinstance(entries, list)
            and len(entries) == self.meta["locks"][lock_id]["n"]
            and all(
                isinstance(e, list)
                and (len(e) == 4 or (len(e) == 5 and isinstance(e[4], dict)))
                and is_int(e[0])
                and is_int(e[1])
                for e in entries
            )
        ):
            raise self._corrupt(f"lock {lock_id!r}'s row does not match meta", key)
        del self.meta["locks"][lock_id]
        self._delete(key)
        self._touch_meta()
        if give_back:
            limit = self.settings()["max_deliveries"]
            if limit:
                poison = [e for e in entries if deliveries_of(e, 4) >= limit]
                if poison:
                    self._transfer(self.settings()["dead_letter_queue"], poison)
                    entries = [e for e in entries if deliveries_of(e, 4) < limit]
            if delay > 0:
                due = self.now + delay
                yield from queue_delays.put(
                    self, [[due, *e[:4], extra_of(e, 4), 1] for e in entries]
                )
                return entries
            by_priority: dict[int, list[Entry]] = {}
            for p, *entry in entries:
                by_priority.setdefault(p, []).append(entry)
            for p, group in by_priority.items():
                yield from self._put_front(p, group)
        return entries

    # ------------------------------------------------------------------ delayed items
    def delayed(self) -> int:
        return int((self.meta.get("dl") or [0])[0])

    def next_at(self) -> float | None:
        """When something becomes ready by itself: a delayed item due, a lock expiring."""
        times = [lk["exp"] for lk in self.meta["locks"].values()]
        if self.meta.get("dl"):
            times.append(self.meta["dl"][1])
        return min(times, default=None)

    def _open_lock(self, lock_id: str) -> Generator[Need, Any, dict[str, Any]]:
        """The open lock ``lock_id``, or 404/410 (expiry already ran in ``_begin``)."""
        lock = self.meta["locks"].get(lock_id)
        if lock is not None:
            return lock
        if lock_id in self.meta["gone"]:
            raise LockExpired(f"lock {lock_id!r} expired; its items are back in the queue")
        raise LockNotFound(f"no open lock {lock_id!r} on queue {self.queue_id!r}")
        yield  # pragma: no cover - makes this a generator

    # ------------------------------------------------------------------ queries
    def depth(self) -> int:
        return sum(t - h for h, t, _ in self.meta["pri"].values())

    def in_flight(self) -> int:
        return sum(lk["n"] for lk in self.meta["locks"].values())

    def _popped(self, priority: int, entry: Entry, counted: bool = True) -> PoppedItem:
        n, item, enq = entry[:3]
        extra = extra_of(entry, 3)
        return PoppedItem(format_id(n), item, priority, enq,
                          int(extra.get("d", 0)) + (1 if counted else 0),
                          origin_dict(extra))  # fmt: skip

    # ------------------------------------------------------------------ operations
    def push(self, items: list[PushItem], key: str | None = None, fingerprint: str = "") -> Op:
        """Append items (delayed ones into their buckets); returns ``(ids, depth_after,
        replayed)``. All or nothing.

        With an idempotency ``key``: a key seen within the retention window with the same
        ``fingerprint`` (of the body) pushes nothing and answers the first push's ids; with
        another fingerprint it is refused. The key is recorded in this same save.
        """
        yield from self._begin()
        if key is not None:
            seen = yield from queue_idempotency.lookup(self, key, fingerprint)
            if seen is not None:
                ids = [format_id(seen["first"] + i) for i in range(seen["n"])]
                return ids, self.depth(), True
        depth = self.depth()
        held = depth + self.delayed()
        if self.limits.max_depth and held + len(items) > self.limits.max_depth:
            raise QueueFull(
                f"queue {self.queue_id!r} holds {held} items; pushing {len(items)} would "
                f"exceed its max depth of {self.limits.max_depth}"
            )
        first = self.meta["next_id"]
        ids, groups, delayed = self._number(items)
        lazy = key is None and not delayed and queue_tails.push_may_skip_meta(self, groups)
        for priority, entries in groups.items():
            yield from self._append(priority, entries)
        yield from queue_delays.put(self, delayed)
        if key is not None:
            answer = {"first": first, "n": len(ids)}
            yield from queue_idempotency.record(self, key, fingerprint, answer)
        if not lazy:
            self._touch_meta()
        return ids, depth + len(items) - len(delayed), False

    def batch(self, ops: list[Callable[[], Op]]) -> Op:
        """Run several requests' operations in one pass, in order; one result each.

        For coalesced calls (several pushes, or several plain pops, that arrived while the
        actor was busy): they share one load of meta and the queue ends, and one save. A
        request refused by a limit (``QUEUE_FULL``, ``TOO_MANY_LOCKS``) gets its error as
        its result and the next request runs as if it had not been sent: push and pop
        check their limits before they change anything, so a refusal leaves no trace.
        A corruption or a store failure still ends the whole pass (it is the queue's,
        not the request's).
        """
        results: list[Any] = []
        for make in ops:
            try:
                results.append((yield from make()))
            except (QueueFull, TooManyLocks, IdempotencyKeyReused) as err:
                results.append(err)
        return results

    def _number(
        self, items: list[PushItem]
    ) -> tuple[list[str], dict[int, list[Entry]], list[Entry]]:
        meta = self.meta
        ids: list[str] = []
        groups: dict[int, list[Entry]] = {}
        delayed: list[Entry] = []
        for item, priority, *later in items:
            delay = later[0] if later else 0
            n = meta["next_id"]
            meta["next_id"] = n + 1
            ids.append(format_id(n))
            if delay > 0:
                due = self.now + delay
                delayed.append([due, priority, n, item, due, {}, 0])
            else:
                groups.setdefault(priority, []).append([n, item, self.now])
        return ids, groups, delayed

    def pop(self, depth: int, lock_ttl: float | None = None) -> Op:
        """Take up to ``depth`` items in priority order.

        Returns ``(items, lock)`` where ``lock`` is ``(lock_id, expires_at)`` when
        ``lock_ttl`` is given and items were returned, else ``None``.
        """
        yield from self._begin()
        return (yield from self._take(depth, lock_ttl, lazy=lock_ttl is None))

    def _take(self, depth: int, lock_ttl: float | None, lazy: bool = False) -> Op:
        """:meth:`pop` once meta is loaded and checked (``_begin`` has run); ``lazy``: a
        plain pop, which may leave meta unsaved (:mod:`.queue_tails`)."""
        if (
            lock_ttl is not None
            and self.limits.max_locks
            and len(self.meta["locks"]) >= self.limits.max_locks
        ):
            raise TooManyLocks(
                f"queue {self.queue_id!r} has {len(self.meta['locks'])} open locks, the "
                f"configured maximum; acknowledge or release some first"
            )
        taken: list[PoppedItem] = []
        lock_entries: list[Entry] = []
        lazy = lazy and META not in self._dirty  # nothing in meta to save yet
        heads = {p: r[0] for p, r in self.meta["pri"].items()} if lazy else {}
        for p in sorted(self.meta["pri"], key=int):
            if len(taken) >= depth:
                break
            for entry in (yield from self._take_front(int(p), depth - len(taken))):
                popped = self._popped(int(p), entry)
                taken.append(popped)
                extra = {**extra_of(entry, 3), "d": popped.deliveries}
                lock_entries.append([int(p), *entry[:3], extra])
        if not taken:
            return [], None
        if not (lazy and queue_tails.pop_may_skip_meta(self, heads)):
            self._touch_meta()
        if lock_ttl is None:
            return taken, None
        lock_id = self.new_lock_id()
        expires = self.now + lock_ttl
        self.meta["locks"][lock_id] = {"exp": expires, "n": len(taken), "t0": self.now}
        self._set(lock_key(lock_id), {"items": lock_entries})
        return taken, (lock_id, expires)

    def pop_keyed(self, depth: int, lock_ttl: float | None, key: str, fingerprint: str) -> Op:
        """:meth:`pop` that a retry with the same ``key`` answers again: the same items,
        the same lock (``(items, lock, replayed)``). An empty pop is not remembered: it
        took nothing, so its retry may as well take what is there now."""
        yield from self._begin()
        seen = yield from queue_idempotency.lookup(self, key, fingerprint, "pop")
        if seen is not None:
            items = [PoppedItem(**i) for i in seen["items"]]
            return items, tuple(seen["lock"]) if seen["lock"] else None, True
        items, lock = yield from self._take(depth, lock_ttl)
        if items:
            answer = {"items": [vars(i) for i in items], "lock": list(lock) if lock else None}
            yield from queue_idempotency.record(self, key, fingerprint, answer, "pop")
        return items, lock, False

    def acknowledge(self, lock_id: str) -> Op:
        """Drop a lock's items for good; returns how many."""
        yield from self._begin()
        lock = yield from self._open_lock(lock_id)
        del self.meta["locks"][lock_id]
        self._delete(lock_key(lock_id))  # no need to read the items to forget them
        self._touch_meta()
        return int(lock["n"])

    def extend(self, lock_id: str, seconds: float) -> Op:
        """Move a lock's expiry later by ``seconds``; returns the new expiry."""
        yield from self._begin()
        lock = yield from self._open_lock(lock_id)
        cap = self.limits.max_lock_lifetime
        # locks made before "t0" was recorded count from now: never shorter than promised
        born = lock.get("t0", self.now)
        if cap and lock["exp"] + seconds - born > cap:
            raise InvalidRequest(
                "LOCK_LIFETIME_EXCEEDED",
                f"lock {lock_id!r} would live {lock['exp'] + seconds - born:.0f}s from its "
                f"creation; the maximum lock lifetime is {cap:g}s (PUSHPOP_MAX_LOCK_LIFETIME): "
                f"at most {max(0.0, born + cap - lock['exp']):.0f}s more can be added",
            )
        lock["exp"] = lock["exp"] + seconds
        self._touch_meta()
        return lock["exp"]

    def release(self, lock_id: str, delay: float = 0) -> Op:
        """Give a lock's items back to the front, now or after ``delay`` seconds;
        returns how many."""
        yield from self._begin()
        lock = yield from self._open_lock(lock_id)
        yield from self._end_lock(lock_id, give_back=True, delay=delay)
        return int(lock["n"])

    def peek(self, limit: int) -> Op:
        """The next ``limit`` waiting items in pop order, taking and counting nothing."""
        yield from self._begin()
        out: list[PoppedItem] = []
        s = self.seg_size
        for p in sorted(self.meta["pri"], key=int):
            head, tail, _ = self.meta["pri"][p]
            stop = min(tail, head + limit - len(out))
            yield from self._load(self._segs_for(int(p), head, stop))
            pos = head
            while pos < stop:
                seg = self._live_seg(int(p), pos // s)
                for entry in seg["items"][pos - seg["start"] : stop - seg["start"]]:
                    out.append(self._popped(int(p), entry, counted=False))
                pos = min(stop, (pos // s + 1) * s)
            if len(out) >= limit:
                break
        return out

    def stats(self) -> Op:
        yield from self._begin()
        pri = self.meta["pri"]
        summary = summarize(self.meta, self.now)
        return {
            "queue_id": self.queue_id,
            "depth": summary["depth"],
            "by_priority": {p: pri[p][1] - pri[p][0] for p in sorted(pri, key=int)},
            "in_flight": summary["in_flight"],
            "locks": summary["locks"],
            "delayed": summary["delayed"],
            "oldest_enqueued_at": summary["oldest_enqueued_at"],
        }

    def purge(self) -> Op:
        """Remove every queued and locked item; returns how many.

        Touches O(items / segment size) keys: purge is the one operation whose cost
        grows with the queue, as removing N items must.
        """
        yield from self._begin()
        purged = self.depth() + self.in_flight() + self.delayed()
        for key in (yield from queue_delays.bucket_keys(self)):
            self._delete(key)
        if self.meta.pop("dl", None):
            self._delete("dix")
        # both ends of every priority must be where meta says: a corrupted tail must not
        # turn a purge into deleting billions of keys that never existed
        s = self.seg_size
        ends = {
            (int(p), k) for p, (h, t, _) in self.meta["pri"].items() for k in (h // s, (t - 1) // s)
        }
        yield from self._load(seg_key(p, k) for p, k in ends)
        for p, k in ends:
            self._live_seg(p, k)
        for p, (head, tail, _) in self.meta["pri"].items():
            for key in self._segs_for(int(p), head, tail):
                self._delete(key)
        for lid in self.meta["locks"]:
            self._delete(lock_key(lid))
        self.meta["pri"] = {}
        self.meta["locks"] = {}
        self._touch_meta()
        return purged


__all__ = ["QueueState"]
