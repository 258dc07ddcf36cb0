"""Property test of the workers' semantics in the state machine: delays, deliveries,
max_deliveries, keyed pushes, redrive and the outbox, mixed with pops and locks.

A second machine beside ``test_queue_state`` (whose model keeps every priority sorted by
id, which delayed items falling due at the tail do not): this one follows every item by
its tag and checks what must hold whatever the interleaving:

* conservation: every pushed item is in exactly one place (waiting, delayed, locked, in
  a transfer, in the dead-letter queue, or done), never lost, never twice;
* a delayed item is never handed out before it is due, and is once it is;
* ``deliveries`` counts exactly the handing-outs since the item last moved queues;
* with ``max_deliveries`` set, no item is handed out more often by the source queue;
* a replayed keyed push stores nothing and answers the first push's ids;
* every pop is in strict priority order, and statistics agree with the model.
"""

from __future__ import annotations

import itertools
from collections import Counter
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from actor_service.errors import LockExpired, LockNotFound
from actor_service.queue_layout import Limits, dead_letter_queue
from tests.unit.test_queue_state import Driver

QID = "jobs"
DLQ = dead_letter_queue(QID)
T0 = 1_700_000_000.0


def _tags_in(store: dict[str, Any]) -> Counter[int]:
    """Tags of every item a queue's rows hold: segments, delay buckets, locks, transfers."""
    out: Counter[int] = Counter()
    item_index = {"s:": 1, "d:": 3, "l:": 2, "x:": 2}
    for key, value in store.items():
        at = item_index.get(key[:2])
        if at is None:
            continue
        rows = value if key.startswith("d:") else value["items"]
        out.update(e[at]["tag"] for e in rows)
    return out


class WorkersMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.now = T0
        self.tags = itertools.count(1)
        self.where: dict[int, str] = {}  # tag -> "src" | "dlq" | "done"
        self.due: dict[int, float] = {}  # tag -> when it may be handed out (in src)
        self.deliveries: Counter[int] = Counter()  # since the tag last changed queue
        self.locks: dict[str, tuple[float, list[int]]] = {}  # lock id -> (expiry, tags)
        self.max_deliveries: int | None = None
        self.allowed: dict[int, int] = {}  # tag -> deliveries it may reach despite the limit
        self.keys: dict[str, tuple[list[Any], list[str]]] = {}  # key -> (items, ids)

    @initialize(segment_size=st.integers(1, 4))
    def setup(self, segment_size: int) -> None:
        # keys outlive the run here: their pruning has a test of its own
        limits = Limits(segment_size=segment_size, idempotency_ttl=10**9)
        self.src = Driver(QID, limits)
        self.dlq = Driver(DLQ, limits)

    # ------------------------------------------------------------------ helpers
    def _expire(self) -> None:
        for lid, (exp, tags) in list(self.locks.items()):
            if self.now >= exp:
                del self.locks[lid]
                self._given_back(tags, 0)

    def _given_back(self, tags: list[int], delay: float) -> None:
        for t in tags:
            if self.max_deliveries and self.deliveries[t] >= self.max_deliveries:
                self._moved(t, "dlq")
            else:
                self.due[t] = self.now + delay

    def _moved(self, tag: int, to: str) -> None:
        self.allowed.pop(tag, None)
        self.where[tag] = to
        self.deliveries[tag] = 0
        self.due[tag] = self.now

    def _deliver(self, source: Driver, target: Driver) -> None:
        """The actor's outbox flush: every pending transfer to its target, then confirm."""
        transfers = source.call(self.now, "pending_transfers")
        for t in transfers:
            assert t.target == target.queue_id
            target.call(self.now, "receive", source.queue_id, t.seq, t.entries, source.queue_id)
        if transfers:
            source.call(self.now, "confirm", [t.seq for t in transfers])

    def _src(self, method: str, *args: Any) -> Any:
        self._expire()
        result = self.src.call(self.now, method, *args)
        self._deliver(self.src, self.dlq)
        return result

    def _check_popped(self, items: list[Any], queue: str) -> None:
        keys = [(it.priority, int(it.id)) for it in items]
        assert keys == sorted(keys, key=lambda k: k[0]), f"not in priority order: {keys}"
        for it in items:
            tag = it.item["tag"]
            assert self.where.get(tag) == queue, f"tag {tag} popped from {queue}"
            assert self.due[tag] <= self.now, f"tag {tag} handed out before it was due"
            self.deliveries[tag] += 1
            assert it.deliveries == self.deliveries[tag]
            if queue == "src" and self.max_deliveries:
                # the limit applies when a lock ends: an item already waiting when it was
                # lowered may be handed out once more
                assert it.deliveries <= max(self.max_deliveries, self.allowed.get(tag, 0))

    # ------------------------------------------------------------------ rules
    @rule(
        specs=st.lists(
            st.tuples(st.integers(0, 2), st.sampled_from([0, 0, 0, 1, 2, 5])),
            min_size=1,
            max_size=6,
        ),
        keyed=st.booleans(),
    )
    def push(self, specs: list[tuple[int, int]], keyed: bool) -> None:
        items = [({"tag": next(self.tags)}, p, d) for p, d in specs]
        key = f"k{len(self.keys)}" if keyed else None
        ids, _depth, replayed = self._src("push", items, key, "fp" + str(items))
        assert not replayed
        for item, _p, delay in items:
            self.where[item["tag"]] = "src"
            self.due[item["tag"]] = self.now + delay
        if key:
            self.keys[key] = (items, ids)

    @precondition(lambda self: self.keys)
    @rule(data=st.data())
    def replay_a_keyed_push(self, data: st.DataObject) -> None:
        key = data.draw(st.sampled_from(sorted(self.keys)))
        items, ids = self.keys[key]
        before = _tags_in(self.src.store) + _tags_in(self.dlq.store)
        got, _depth, replayed = self._src("push", items, key, "fp" + str(items))
        assert replayed and got == ids
        assert _tags_in(self.src.store) + _tags_in(self.dlq.store) == before

    @rule(depth=st.integers(1, 6), ttl=st.sampled_from([None, 1, 3, 30]))
    def pop(self, depth: int, ttl: int | None) -> None:
        items, lock = self._src("pop", depth, ttl)
        self._check_popped(items, "src")
        tags = [it.item["tag"] for it in items]
        if lock is None:
            for t in tags:
                self.where[t] = "done"
        else:
            self.locks[lock[0]] = (lock[1], tags)

    @precondition(lambda self: self.locks)
    @rule(data=st.data(), how=st.sampled_from(["acknowledge", "release", "release later"]))
    def end_a_lock(self, data: st.DataObject, how: str) -> None:
        lid = data.draw(st.sampled_from(sorted(self.locks)))
        self._expire()
        if lid not in self.locks:  # expired just now: the late call is refused
            try:
                self._src("acknowledge", lid)
            except (LockExpired, LockNotFound):
                return
            raise AssertionError("an expired lock was acknowledged")
        _, tags = self.locks.pop(lid)
        if how == "acknowledge":
            assert self._src("acknowledge", lid) == len(tags)
            for t in tags:
                self.where[t] = "done"
            return
        delay = 2 if how == "release later" else 0
        assert self._src("release", lid, delay) == len(tags)
        self._given_back(tags, delay)

    @rule(limit=st.sampled_from([None, 1, 2, 3]))
    def set_max_deliveries(self, limit: int | None) -> None:
        got = self._src("put_settings", {"max_deliveries": limit})
        assert got["max_deliveries"] == limit and got["dead_letter_queue"] == DLQ
        self.max_deliveries = limit
        locked = {t for _, tags in self.locks.values() for t in tags}
        for t, w in self.where.items():
            if w == "src" and t not in locked:
                self.allowed[t] = self.deliveries[t] + 1

    @rule(seconds=st.sampled_from([0.25, 0.5, 1, 2, 5, 31]))
    def advance_clock(self, seconds: float) -> None:
        self.now += seconds

    @rule(depth=st.integers(1, 6))
    def pop_dead_letter_queue(self, depth: int) -> None:
        items, _ = self.dlq.call(self.now, "pop", depth)
        self._check_popped(items, "dlq")
        for it in items:
            assert it.origin is not None and it.origin["queue_id"] == QID
            self.where[it.item["tag"]] = "done"

    @rule(limit=st.integers(1, 5))
    def redrive(self, limit: int) -> None:
        waiting = self.dlq.call(self.now, "peek", 100)
        moved, remaining = self.dlq.call(self.now, "redrive", QID, limit)
        assert moved == min(limit, len(waiting)) and remaining == len(waiting) - moved
        self._expire()
        self._deliver(self.dlq, self.src)
        for it in waiting[:moved]:
            self._moved(it.item["tag"], "src")

    # ------------------------------------------------------------------ invariants
    @invariant()
    def every_item_is_in_exactly_one_place(self) -> None:
        if not hasattr(self, "src"):
            return
        self._expire()
        self.src.call(self.now, "stats")  # materialise due items and expiries
        self._deliver(self.src, self.dlq)
        held = _tags_in(self.src.store) + _tags_in(self.dlq.store)
        assert held == Counter(t for t, w in self.where.items() if w != "done")

    @invariant()
    def statistics_agree(self) -> None:
        if not hasattr(self, "src"):
            return
        stats = self.src.call(self.now, "stats")
        self._deliver(self.src, self.dlq)
        in_src = [t for t, w in self.where.items() if w == "src"]
        locked = {t for _, tags in self.locks.values() for t in tags}
        assert stats["in_flight"] == len(locked)
        delayed = [t for t in in_src if t not in locked and self.due[t] > self.now]
        assert stats["delayed"] == len(delayed)

    @invariant()
    def ready_items_can_be_seen(self) -> None:
        """Nothing due stays hidden: peek shows as many items as are ready (up to 100)."""
        if not hasattr(self, "src"):
            return
        self._expire()
        peeked = self.src.call(self.now, "peek", 100)
        self._deliver(self.src, self.dlq)
        locked = {t for _, tags in self.locks.values() for t in tags}
        ready = [
            t
            for t, w in self.where.items()
            if w == "src" and t not in locked and self.due[t] <= self.now
        ]
        assert len(peeked) == min(100, len(ready))


WorkersMachine.TestCase.settings = settings(
    max_examples=300,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestWorkersMachine = WorkersMachine.TestCase


def test_idempotency_keys_are_forgotten_after_their_retention_two_per_push() -> None:
    """Kept keys stay bounded: each keyed push forgets up to two expired ones, so rows
    of keys older than the retention do not pile up, and a key past it pushes anew."""
    drv = Driver(QID, Limits(idempotency_ttl=10))
    now = T0
    for i in range(40):  # 40 keys, one a second
        drv.call(now + i, "push", [({"n": i}, 1)], f"key-{i}", "fp")
    now += 40
    key_rows = [k for k in drv.store if k.startswith("k:")]
    # keys younger than 10 s, plus the few not yet pruned (two go per push)
    assert 10 <= len(key_rows) <= 12, len(key_rows)
    ids, _, replayed = drv.call(now, "push", [({"n": 0}, 1)], "key-0", "fp")
    assert not replayed, "a key past its retention is new again"
    ids2, _, replayed2 = drv.call(now + 1, "push", [({"n": 0}, 1)], "key-0", "fp")
    assert replayed2 and ids2 == ids
    for i in range(60):  # then quiet keys go, and the log with them
        drv.call(now + 100 + i, "push", [({"n": i}, 1)], f"late-{i}", "fp")
    assert len([k for k in drv.store if k.startswith("k:")]) <= 12
    assert len([k for k in drv.store if k.startswith("kl:")]) <= 2
