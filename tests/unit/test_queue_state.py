"""Property tests of the sans-I/O queue state machine against a trivial model.

The model is what docs/api.md (ordering and delivery semantics) promises: a
list per priority kept in message-id order (items given back by a released or
expired lock rejoin the front of their priority in id order, which is the same as
keeping every priority sorted by id), a dict of open locks, a set of expired lock
ids (tombstones), a dead-letter queue fed through an outbox, and a clock that only
the test moves.

The store is a plain dict driven like the actor drives its state manager: every
value an operation loads is a fresh copy (made through JSON, as the real store
serializes), because operations mutate loaded values in place; the operation's
``changes()`` are applied only when it succeeds, and an operation that raises
leaves the store untouched.
"""

from __future__ import annotations

import functools
import itertools
import json
from collections import Counter
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from actor_service.errors import LockExpired, LockNotFound, QueueFull, StateCorrupt, TooManyLocks
from actor_service.queue_layout import (
    DELETED,
    META,
    Limits,
    apply_changes,
    dead_letter_queue,
    deliveries_of,
    extra_of,
    format_id,
    lock_key,
    seg_key,
    transfer_key,
)
from actor_service.queue_state import QueueState

QID = "orders"
DLQ = dead_letter_queue(QID)
PRIORITIES = [0, 1, 2, 7, 2**31 - 1]
T0 = 1_700_000_000.0
UNKNOWN_LOCK_IDS = ["L0", "nope", "L999999", ""]
TTLS = st.integers(1, 30)
CLOCK_STEPS = [0, 0.001, 0.5, 1, 2, 3, 5, 8, 13, 21, 40]  # seconds: mostly small, up to 40
DELIVERY_PLANS = [
    "deliver all, confirm",
    "deliver oldest, confirm",
    "deliver all twice, confirm",
    "deliver all, crash before confirm",
    "deliver oldest twice, crash before confirm",
    "crash before delivering",
]


# ---------------------------------------------------------------------- driver
def _copy(value: Any) -> Any:
    """A deep copy through JSON, like a value that went to the state store and back."""
    return json.loads(json.dumps(value, allow_nan=False))


def _snapshot(store: dict[str, Any]) -> str:
    return json.dumps(store, sort_keys=True)


class Driver:
    """One queue's store, driven like ``run_sync`` but loading copies of the values.

    ``last_keys`` is every key the last operation asked for: the count of keys an
    operation touches in the store.
    """

    def __init__(
        self,
        queue_id: str,
        limits: Limits,
        new_lock_id: Any = None,
        tails_checked: set[int] | None = None,
    ) -> None:
        self.queue_id = queue_id
        self.limits = limits
        counter = itertools.count(1)
        self.new_lock_id = new_lock_id or (lambda: f"L{next(counter)}")
        self.store: dict[str, Any] = {}
        self.last_keys: list[str] = []
        # kept across calls like an actor's activation keeps it; forgotten on a failure
        self.tails_checked = tails_checked

    def _drive(self, now: float, method: str, args: tuple[Any, ...]) -> tuple[Any, dict]:
        state = QueueState(self.queue_id, now, self.new_lock_id, self.limits, self.tails_checked)
        if method == "batch":  # args: (method, args) of each coalesced request
            op = state.batch([functools.partial(getattr(state, m), *a) for m, a in args[0]])
        else:
            op = getattr(state, method)(*args)
        self.last_keys = []
        try:
            need = next(op)
            while True:
                assert need, f"{method} asked for an empty list of keys"
                again = set(need) & set(self.last_keys)
                assert not again, f"{method} asked twice for {sorted(again)}"
                self.last_keys.extend(need)
                need = op.send({k: _copy(self.store.get(k)) for k in need})
        except StopIteration as stop:
            result = stop.value
        except BaseException:
            if self.tails_checked is not None:
                self.tails_checked.clear()
            raise
        changes = {k: v if v is DELETED else _copy(v) for k, v in state.changes().items()}
        return result, changes

    def call(self, now: float, method: str, *args: Any) -> Any:
        """Run ``method`` and commit its changes (nothing is committed if it raises)."""
        result, changes = self._drive(now, method, args)
        apply_changes(self.store, changes)
        return result

    def peek(self, now: float, method: str, *args: Any) -> tuple[Any, dict[str, Any]]:
        """Run ``method`` without committing; returns its result and the store it would leave."""
        result, changes = self._drive(now, method, args)
        view = _copy(self.store)
        apply_changes(view, changes)
        return result, view


# ---------------------------------------------------------------------- store reading
def _segment_keys(store: dict[str, Any]) -> list[str]:
    return [k for k in store if k.startswith("s:")]


def _stored_meta(store: dict[str, Any], s: int) -> dict[str, Any]:
    """Meta as the documented rule reads it from the store: a plain push or pop may leave
    a priority's tail or head behind, within its segment, and ``next_id`` behind the ids
    of the entries past the tail (docs/how-it-works.md, "Key layout")."""
    meta = _copy(store[META])
    extra: list[int] = []
    for p, rng in meta["pri"].items():
        seg = store.get(seg_key(int(p), rng[0] // s))
        if seg is not None and seg["items"] and rng[0] < seg["start"] < (rng[0] // s + 1) * s:
            rng[0], rng[2] = seg["start"], seg["items"][0][2]
        seg = store.get(seg_key(int(p), (rng[1] - 1) // s))
        if seg is not None and seg["start"] + len(seg["items"]) > rng[1]:
            extra += [e[0] for e in seg["items"][max(rng[1], seg["start"]) - seg["start"] :]]
            rng[1] = seg["start"] + len(seg["items"])
    assert len(set(extra)) == len(extra) and all(i >= meta["next_id"] for i in extra), extra
    meta["next_id"] = max([meta["next_id"] - 1, *extra]) + 1
    return meta


def _check_layout(store: dict[str, Any], limits: Limits) -> dict[int, list[list[Any]]]:
    """Assert the documented key layout exactly; return the queued entries per priority.

    Every stored key is ``meta``, a segment holding live positions of a non-empty
    priority, the lock record of an open lock or a pending outbox transfer: nothing
    is left behind for an empty priority or a closed lock.
    """
    s = limits.segment_size
    if META not in store:
        assert store == {}, f"keys stored without meta: {sorted(store)}"
        return {}
    meta = _stored_meta(store, s)
    expected_keys = {META}
    queued: dict[int, list[list[Any]]] = {}
    for p_text, (head, tail, head_enq) in meta["pri"].items():
        p = int(p_text)
        assert p_text == str(p)
        assert tail > head, f"priority {p} is listed but empty: [{head}, {tail})"
        entries: list[list[Any]] = []
        for k in range(head // s, (tail - 1) // s + 1):
            key = seg_key(p, k)
            expected_keys.add(key)
            assert key in store, f"segment {key} of live positions [{head}, {tail}) is missing"
            seg = store[key]
            start = max(head, k * s)
            end = min(tail, (k + 1) * s)
            assert seg["start"] == start, f"{key}: start {seg['start']} != {start}"
            assert len(seg["items"]) == end - start, f"{key}: holds {len(seg['items'])} items"
            entries.extend(seg["items"])
        ids = [e[0] for e in entries]
        assert ids == sorted(set(ids)), f"priority {p} is not in strict id order: {ids}"
        assert head_enq == entries[0][2], f"priority {p}: head enqueued_at is stale"
        queued[p] = entries
    expected_keys |= {lock_key(lid) for lid in meta["locks"]}
    expected_keys |= {transfer_key(seq) for seq in meta["out"]}
    assert set(store) == expected_keys, (
        f"stray keys {sorted(set(store) - expected_keys)}, "
        f"missing keys {sorted(expected_keys - set(store))}"
    )
    # the same thing said as a size bound: keys stay O(items / segment size + locks)
    items = sum(len(e) for e in queued.values())
    bound = (
        1
        + len(meta["locks"])
        + len(meta["out"])
        + sum(-(-len(e) // s) + 1 for e in queued.values())
    )
    assert len(store) <= bound, f"{len(store)} keys for {items} queued items"
    return queued


def _tags(entries: list[list[Any]], item_index: int) -> Counter[int]:
    return Counter(e[item_index]["tag"] for e in entries)


def _stored_tags(store: dict[str, Any]) -> Counter[int]:
    """Tags of every item held in segments or lock records (stray keys included)."""
    out: Counter[int] = Counter()
    for key, value in store.items():
        if key.startswith("s:"):
            out += _tags(value["items"], 1)
        elif key.startswith("l:"):
            out += _tags(value["items"], 2)
    return out


def _undelivered_tags(source: dict[str, Any], target: dict[str, Any]) -> Counter[int]:
    """Tags in the source's outbox that the target has not applied yet."""
    done = target.get(META, {}).get("recv", {}).get(QID, 0)
    out: Counter[int] = Counter()
    for key, value in source.items():
        if key.startswith("x:") and int(key[2:]) > done:
            out += _tags(value["items"], 2)
    return out


def _assert_strict_order(items: list[Any]) -> None:
    """Popped items come out in strict priority order, then id order."""
    keys = [(it.priority, it.id) for it in items]
    assert all(a < b for a, b in itertools.pairwise(keys)), keys
    for it in items:
        assert it.id == format_id(int(it.id))


# ---------------------------------------------------------------------- model
class ModelQueue:
    """The specification: per priority, ``[id, item, enqueued_at]`` sorted by id."""

    def __init__(self, queue_id: str) -> None:
        self.queue_id = queue_id
        self.by_p: dict[int, list[list[Any]]] = {}
        self.next_id = 1

    def append(self, priority: int, item: dict[str, Any], enqueued_at: float) -> int:
        n = self.next_id
        self.next_id += 1
        self.by_p.setdefault(priority, []).append([n, item, enqueued_at])
        return n

    def take(self, depth: int) -> list[list[Any]]:
        """Remove up to ``depth`` items: ``[[priority, id, item, enqueued_at], ...]``."""
        out: list[list[Any]] = []
        for p in sorted(self.by_p):
            q = self.by_p[p]
            while q and len(out) < depth:
                out.append([p, *q.pop(0)])
            if not q:
                del self.by_p[p]
        return out

    def give_back(self, entries: list[list[Any]]) -> None:
        """Locked entries back to the front; they keep their extras (deliveries)."""
        for p, *entry in entries:
            self.by_p.setdefault(p, []).append(entry)
        for q in self.by_p.values():
            q.sort(key=lambda e: e[0])

    def depth(self) -> int:
        return sum(len(q) for q in self.by_p.values())

    def stats(self, locks: dict[str, list[Any]]) -> dict[str, Any]:
        enqueued = [e[2] for q in self.by_p.values() for e in q]
        return {
            "queue_id": self.queue_id,
            "depth": self.depth(),
            "by_priority": {str(p): len(self.by_p[p]) for p in sorted(self.by_p)},
            "in_flight": sum(len(entries) for _, entries in locks.values()),
            "locks": len(locks),
            "delayed": 0,
            "oldest_enqueued_at": min(enqueued, default=None),
        }


# ---------------------------------------------------------------------- the machine
class QueueMachine(RuleBasedStateMachine):
    """``QueueState`` (source queue and its dead-letter queue) against the model."""

    def __init__(self) -> None:
        super().__init__()
        self.now = T0
        self.tags = itertools.count(1)
        self.src: Driver | None = None
        self.dlq: Driver | None = None
        self.model = ModelQueue(QID)
        self.dlq_model = ModelQueue(DLQ)
        self.model_locks: dict[str, list[Any]] = {}  # lock id -> [expires_at, entries]
        self.gone: set[str] = set()  # tombstones: locks that expired
        self.pending: list[tuple[int, list[list[Any]]]] = []  # outbox: (seq, entries)
        self.xseq = 0
        self.dlq_applied = 0  # last transfer sequence the dead-letter queue applied
        self.last_id = ""
        self.ops = 0  # operations run on the source queue
        self.next_purge = 15
        # where every pushed item went, as seen in the outputs of the code under test
        self.pushed: Counter[int] = Counter()
        self.plain_popped: Counter[int] = Counter()
        self.acknowledged: Counter[int] = Counter()
        self.dlq_popped: Counter[int] = Counter()
        self.purged: Counter[int] = Counter()
        self.lock_tags: dict[str, Counter[int]] = {}

    def activation(self) -> set[int] | None:
        """What a driver keeps across calls: nothing, so every call reads what it writes."""
        return None

    @initialize(
        segment_size=st.integers(1, 5),
        prefill=st.lists(st.sampled_from(PRIORITIES), max_size=30),
    )
    def setup(self, segment_size: int, prefill: list[int]) -> None:
        self.limits = Limits(segment_size=segment_size)
        self.src = Driver(QID, self.limits, tails_checked=self.activation())
        self.dlq = Driver(DLQ, self.limits, tails_checked=self.activation())
        if prefill:  # start from a non-empty queue more often than rule choice alone would
            self.push(prefill)

    # -------------------------------------------------------------- helpers
    def _expire(self) -> None:
        """Locks at or past their expiry give their items back (``now >= expires_at``)."""
        for lid, (exp, entries) in list(self.model_locks.items()):
            if self.now >= exp:
                del self.model_locks[lid]
                self.gone.add(lid)
                self.model.give_back(entries)

    @staticmethod
    def _newest_first(lock_ids: Any) -> list[str]:
        """Lock ids, most recently issued first: ending locks out of pop order is the
        interesting case (items must still rejoin their priority in id order), and
        Hypothesis favours the first choices."""
        return sorted(lock_ids, key=lambda lid: -int(lid[1:]))

    def _src(self, method: str, *args: Any) -> Any:
        self._expire()
        self.ops += 1
        return self.src.call(self.now, method, *args)

    def _dlq(self, method: str, *args: Any) -> Any:
        return self.dlq.call(self.now, method, *args)

    def _expect_error(self, error: type[Exception], method: str, *args: Any) -> None:
        before = _snapshot(self.src.store)
        with pytest.raises(error) as info:
            self.src.call(self.now, method, *args)
        assert info.value.status == {LockNotFound: 404, LockExpired: 410}[error]
        assert _snapshot(self.src.store) == before, f"a failed {method} changed the store"

    def _act_on_lock(self, action: str, lock_id: str, seconds: int = 5) -> None:
        self._expire()
        args: tuple[Any, ...] = (lock_id, seconds) if action == "extend" else (lock_id,)
        if lock_id not in self.model_locks:
            error = LockExpired if lock_id in self.gone else LockNotFound
            event(f"{action}: {error.__name__}")
            self._expect_error(error, action, *args)
            return
        exp, entries = self.model_locks[lock_id]
        event(f"{action}: open lock")
        result = self._src(action, *args)
        if action == "extend":
            assert result == exp + seconds
            self.model_locks[lock_id][0] = exp + seconds
            return
        del self.model_locks[lock_id]
        if action == "acknowledge":
            assert result == len(entries)
            self.acknowledged += self.lock_tags[lock_id]
        elif action == "release":
            assert result == len(entries)
            self.model.give_back(entries)
        else:
            assert result == (len(entries), DLQ)
            self.xseq += 1
            self.pending.append((self.xseq, entries))

    # -------------------------------------------------------------- rules
    @rule(priorities=st.lists(st.sampled_from(PRIORITIES), min_size=1, max_size=12))
    def push(self, priorities: list[int]) -> None:
        items = [({"tag": next(self.tags), "body": {"p": p}}, p) for p in priorities]
        ids, depth, _ = self._src("push", items)
        expected = [self.model.append(p, item, self.now) for item, p in items]
        assert ids == [format_id(n) for n in expected]
        for message_id in ids:
            assert len(message_id) == 16 and message_id.isdigit()
            assert message_id > self.last_id, "message ids must increase in push order"
            self.last_id = message_id
        assert depth == self.model.depth()
        self.pushed.update(item["tag"] for item, _ in items)

    @rule(depth=st.integers(1, 15), ttl=st.one_of(st.none(), TTLS))
    def pop(self, depth: int, ttl: int | None) -> None:
        """A plain pop (``ttl`` None) or a pop with ack."""
        items, lock = self._src("pop", depth) if ttl is None else self._src("pop", depth, ttl)
        _assert_strict_order(items)
        taken = self.model.take(depth)
        expected = [e[:4] for e in taken]
        got = [[it.priority, int(it.id), it.item, it.enqueued_at] for it in items]
        assert got == expected
        # each item counts its deliveries: this one, plus one per earlier lock it left
        assert [it.deliveries for it in items] == [deliveries_of(e, 4) + 1 for e in taken]
        expected = [[*e[:4], {**extra_of(e, 4), "d": deliveries_of(e, 4) + 1}] for e in taken]
        tags = Counter(it.item["tag"] for it in items)
        if ttl is None or not expected:
            assert lock is None
            self.plain_popped += tags
            return
        lock_id, expires_at = lock
        assert expires_at == self.now + ttl
        assert lock_id not in self.lock_tags, "lock ids must be fresh"
        self.model_locks[lock_id] = [expires_at, expected]
        self.lock_tags[lock_id] = tags

    @rule(
        action=st.sampled_from(["acknowledge", "extend", "release", "dead_letter"]),
        whose=st.sampled_from(
            ["an open lock", "any lock ever issued", "an expired lock", "a never-issued id"]
        ),
        data=st.data(),
        seconds=TTLS,
    )
    def act_on_a_lock(self, action: str, whose: str, data: st.DataObject, seconds: int) -> None:
        """Acknowledge, extend, release or dead-letter a lock id.

        The id is one the model holds open, any this queue ever issued (open,
        expired, acknowledged, released, dead-lettered or purged), one the model
        saw expire, or one never issued (also when there is none of the kind asked). After
        a dead-letter the outbox is flushed at once, as the actor does.
        """
        self._expire()
        candidates = {
            "an open lock": self._newest_first(self.model_locks),
            "any lock ever issued": self._newest_first(self.lock_tags),
            "an expired lock": self._newest_first(self.gone),
            "a never-issued id": UNKNOWN_LOCK_IDS,
        }[whose] or UNKNOWN_LOCK_IDS
        lock_id = data.draw(st.sampled_from(candidates), label="lock_id")
        self._act_on_lock(action, lock_id, seconds)
        if action == "dead_letter" and self.pending:
            self.deliver_dead_letters(data.draw(st.sampled_from(DELIVERY_PLANS), label="flush"))

    @precondition(lambda self: self.model_locks)
    @rule(data=st.data(), plan=st.sampled_from(DELIVERY_PLANS))
    def dead_letter_an_open_lock(self, data: st.DataObject, plan: str) -> None:
        """Dead-letter, then flush the outbox at once as the actor does after each call."""
        self._expire()
        candidates = self._newest_first(self.model_locks) or UNKNOWN_LOCK_IDS
        lock_id = data.draw(st.sampled_from(candidates), label="lock_id")
        self._act_on_lock("dead_letter", lock_id)
        if self.pending:
            self.deliver_dead_letters(plan)

    @precondition(lambda self: self.pending)
    @rule(plan=st.sampled_from(DELIVERY_PLANS))
    def deliver_dead_letters(self, plan: str) -> None:
        """The actor's outbox flush: deliver pending transfers oldest first, then confirm.

        A transfer delivered twice must be a no-op the second time; a crash before
        the confirmation leaves the transfers pending, for a later flush to redeliver.
        """
        transfers = self._src("pending_transfers")
        assert [(t.seq, t.target, t.entries) for t in transfers] == [
            (seq, DLQ, entries) for seq, entries in self.pending
        ]
        if plan == "crash before delivering":
            return
        delivered: list[int] = []
        for t in transfers[:1] if "oldest" in plan else transfers:
            for attempt in range(2 if "twice" in plan else 1):
                n = self._dlq("receive", QID, t.seq, t.entries)
                if attempt == 0 and t.seq > self.dlq_applied:
                    assert n == len(t.entries)
                    event("dead-letter transfer applied")
                    self.dlq_applied = t.seq
                    # enqueued_at restarts at arrival in the dead-letter queue
                    for p, _old_id, item, *_ in t.entries:
                        self.dlq_model.append(p, item, self.now)
                else:
                    assert n == 0, f"transfer {t.seq} was applied twice"
                    event("dead-letter transfer redelivered")
            delivered.append(t.seq)
        if "crash before confirm" not in plan:
            assert self._src("confirm", delivered) == len(delivered)
            self.pending = [(seq, e) for seq, e in self.pending if seq not in delivered]

    @precondition(lambda self: self.dlq_model.by_p)
    @rule(depth=st.integers(1, 15))
    def pop_dead_letter_queue(self, depth: int) -> None:
        items, lock = self._dlq("pop", depth)
        assert lock is None
        _assert_strict_order(items)
        got = [[it.priority, int(it.id), it.item, it.enqueued_at] for it in items]
        assert got == [e[:4] for e in self.dlq_model.take(depth)]
        self.dlq_popped.update(it.item["tag"] for it in items)

    @rule(seconds=st.sampled_from(CLOCK_STEPS))
    def advance_clock(self, seconds: float) -> None:
        self.now += seconds

    @precondition(lambda self: self.model_locks)
    @rule(data=st.data(), offset=st.sampled_from([-0.001, 0.0, 0.001]))
    def advance_clock_to_a_lock_expiry(self, data: st.DataObject, offset: float) -> None:
        lock_id = data.draw(st.sampled_from(self._newest_first(self.model_locks)), label="lock")
        self.now = max(self.now, self.model_locks[lock_id][0] + offset)

    # a purge wipes the state the other rules build up: allow it once in a while
    @precondition(lambda self: self.ops >= self.next_purge)
    @rule(queue=st.sampled_from(["source", "dead-letter queue"]))
    def purge(self, queue: str) -> None:
        """Purge the queue or its dead-letter queue (whose duplicate check must survive)."""
        self.next_purge = self.ops + 15
        self._expire()
        if queue == "source":
            drv, model, locks = self.src, self.model, self.model_locks
        else:
            drv, model, locks = self.dlq, self.dlq_model, {}
        held = _stored_tags(drv.store)
        purged = drv.call(self.now, "purge")
        assert purged == model.depth() + sum(len(e) for _, e in locks.values())
        assert purged == sum(held.values())
        self.purged += held
        model.by_p = {}  # ids keep counting: next_id survives a purge
        locks.clear()  # purged, not expired: acting on them later is 404

    @rule(queue=st.sampled_from(["source", "dead-letter queue"]))
    def stats(self, queue: str) -> None:
        """A committed stats call (on the source it persists any lazy expiry)."""
        if queue == "source":
            assert self._src("stats") == self.model.stats(self.model_locks)
        else:
            assert self._dlq("stats") == self.dlq_model.stats({})

    # -------------------------------------------------------------- invariants
    @invariant()
    def agrees_with_the_model(self) -> None:
        if self.src is None:
            return
        self._expire()
        # Not committed, so that expiry keeps happening lazily inside other operations.
        stats, view = self.src.peek(self.now, "stats")
        assert stats == self.model.stats(self.model_locks)
        dlq_stats, dlq_view = self.dlq.peek(self.now, "stats")
        assert dlq_stats == self.dlq_model.stats({})

        _check_layout(self.src.store, self.limits)
        _check_layout(self.dlq.store, self.limits)
        assert _check_layout(view, self.limits) == self.model.by_p
        assert _check_layout(dlq_view, self.limits) == self.dlq_model.by_p

        if view:
            meta = _stored_meta(view, self.limits.segment_size)
            assert {lid: lk["exp"] for lid, lk in meta["locks"].items()} == {
                lid: exp for lid, (exp, _) in self.model_locks.items()
            }
            for lid, (_, entries) in self.model_locks.items():
                assert view[lock_key(lid)]["items"] == entries
            assert set(meta["gone"]) == self.gone
            assert meta["out"] == [seq for seq, _ in self.pending]
        if not self.model.by_p and not self.model_locks:
            # a drained queue keeps only meta, plus outbox entries while transfers are pending
            assert set(view) <= {META} | {transfer_key(seq) for seq, _ in self.pending}

    @invariant()
    def nothing_lost_or_duplicated(self) -> None:
        if self.src is None:
            return
        accounted = (
            _stored_tags(self.src.store)
            + _undelivered_tags(self.src.store, self.dlq.store)
            + _stored_tags(self.dlq.store)
            + self.acknowledged
            + self.plain_popped
            + self.dlq_popped
            + self.purged
        )
        assert accounted == self.pushed, (
            f"lost {self.pushed - accounted}, duplicated {accounted - self.pushed}"
        )


QueueMachine.TestCase.settings = settings(
    max_examples=300,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestQueueStateMachine = QueueMachine.TestCase


class ActorQueueMachine(QueueMachine):
    """The same, driven as an actor's activation drives it: what was read past each
    priority's tail is kept across calls, so pushes into new segments read nothing."""

    def activation(self) -> set[int] | None:
        return set()


ActorQueueMachine.TestCase.settings = QueueMachine.TestCase.settings
TestActorQueueStateMachine = ActorQueueMachine.TestCase


# ---------------------------------------------------------------------- coalesced calls
_request = st.one_of(
    st.tuples(
        st.just("push"),
        st.lists(st.tuples(st.fixed_dictionaries({"n": st.integers(0, 99)}), st.integers(0, 2)),
                 min_size=1, max_size=4).map(lambda items: (items,)),
    ),
    st.tuples(st.just("pop"), st.integers(1, 5).map(lambda d: (d,))),
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(
    initial=st.lists(st.integers(0, 2), max_size=12),
    requests=st.lists(_request, min_size=1, max_size=10),
    max_depth=st.sampled_from([0, 6, 12]),
)
def test_a_batch_is_its_requests_one_call_at_a_time(
    initial: list[int], requests: list[tuple[str, tuple[Any, ...]]], max_depth: int
) -> None:
    """Coalescing is invisible: a Batch gives every request the result it would have had
    alone, in arrival order (a QUEUE_FULL one changes nothing), and leaves the same store."""
    limits = Limits(segment_size=3, max_depth=max_depth)
    alone, together = Driver(QID, limits), Driver(QID, limits)
    for drv in (alone, together):
        for n, p in enumerate(initial):
            if not max_depth or n < max_depth:
                drv.call(T0, "push", [({"pre": n}, p)])

    def plain(result: Any) -> Any:
        if isinstance(result, QueueFull):
            return "QUEUE_FULL"
        if isinstance(result, tuple) and isinstance(result[0], list) and result[1] is None:
            return [i.to_dict() for i in result[0]]  # a pop
        return result

    expected = []
    for method, args in requests:
        try:
            expected.append(plain(alone.call(T0 + 1, method, *args)))
        except QueueFull as err:
            expected.append(plain(err))
    got = together.call(T0 + 1, "batch", requests)
    assert [plain(r) for r in got] == expected
    # the same queue: meta may lag in one and not the other (a batch saves it once)
    read = [{**d.store, META: _stored_meta(d.store, 3)} if META in d.store else d.store
            for d in (together, alone)]  # fmt: skip
    assert _snapshot(read[0]) == _snapshot(read[1])
    _check_layout(together.store, limits)


# ---------------------------------------------------------------------- examples
def _fill(drv: Driver, n: int, priority: int = 1, now: float = T0) -> None:
    for start in range(0, n, 1000):
        batch = [({"n": i}, priority) for i in range(start, min(n, start + 1000))]
        drv.call(now, "push", batch)


def test_push_and_pop_touch_a_constant_number_of_keys() -> None:
    """On a queue of 50,000 items, a push of 1 asks for <= 4 keys, a pop of 10 for <= 5
    (each call here reads meta from the store, so it also reads both ends' segments to
    catch meta up: queue_tails)."""
    limits = Limits(segment_size=100)
    drv = Driver(QID, limits)
    _fill(drv, 50_000)
    assert len(drv.store) <= 1 + 50_000 // 100 + 1
    worst_push = worst_pop = 0
    # move the head through every offset within a segment, and across boundaries
    for step in range(1, 120):
        drv.call(T0, "push", [({"n": -step}, 1)])
        worst_push = max(worst_push, len(drv.last_keys))
        items, _ = drv.call(T0, "pop", 10)
        assert len(items) == 10
        worst_pop = max(worst_pop, len(drv.last_keys))
        drv.call(T0, "pop", step % 7 + 1)  # shift the head's offset
    # also from given-back items at negative positions in front of the head
    items, (lock_id, _) = drv.call(T0, "pop", 10, 30)
    drv.call(T0, "release", lock_id)
    for _ in range(3):
        items, _ = drv.call(T0, "pop", 10)
        worst_pop = max(worst_pop, len(drv.last_keys))
    assert worst_push <= 4, f"a push of 1 item asked for {worst_push} keys"
    assert worst_pop <= 5, f"a pop of depth 10 asked for {worst_pop} keys"
    # and it is the same count as on a small queue: cost does not grow with depth
    small = Driver(QID, limits)
    _fill(small, 30)
    small.call(T0, "push", [({"n": 0}, 1)])
    assert len(small.last_keys) <= worst_push
    small.call(T0, "pop", 10)
    assert len(small.last_keys) <= worst_pop


@pytest.mark.parametrize("segment_size", [1, 2, 3, 100])
def test_locks_ending_out_of_order_keep_fifo(segment_size: int) -> None:
    drv = Driver(QID, Limits(segment_size=segment_size))
    drv.call(T0, "push", [({"n": i}, 1) for i in range(1, 9)])
    first, (lock_a, _) = drv.call(T0, "pop", 2, 20)  # ids 1, 2: expires at T0 + 20
    second, (lock_b, _) = drv.call(T0, "pop", 3, 5)  # ids 3, 4, 5: expires at T0 + 5
    assert [it.id for it in first + second] == [format_id(i) for i in range(1, 6)]
    # B expires first: its items go back in front of 6, 7, 8
    stats = drv.call(T0 + 6, "stats")
    assert stats["depth"] == 6 and stats["in_flight"] == 2
    # then A: its items go in front of B's
    stats = drv.call(T0 + 21, "stats")
    assert stats["depth"] == 8 and stats["in_flight"] == 0
    assert stats["oldest_enqueued_at"] == T0
    items, _ = drv.call(T0 + 21, "pop", 100)
    assert [it.id for it in items] == [format_id(i) for i in range(1, 9)]
    assert [it.item["n"] for it in items] == list(range(1, 9))
    assert set(drv.store) == {META}
    # the late acknowledgements are 410, not 404
    for lock_id in (lock_a, lock_b):
        with pytest.raises(LockExpired):
            drv.call(T0 + 22, "acknowledge", lock_id)


def test_released_locks_interleaved_with_pushes_keep_fifo() -> None:
    drv = Driver(QID, Limits(segment_size=2))
    drv.call(T0, "push", [({"n": i}, i % 2) for i in range(1, 11)])
    _, (a, _) = drv.call(T0, "pop", 3, 30)
    _, (b, _) = drv.call(T0, "pop", 3, 30)
    drv.call(T0, "push", [({"n": 11}, 0), ({"n": 12}, 1)])
    drv.call(T0, "release", b)
    _, (c, _) = drv.call(T0, "pop", 2, 30)
    drv.call(T0, "release", a)
    drv.call(T0, "release", c)
    items, _ = drv.call(T0, "pop", 100)
    assert [it.item["n"] for it in items] == [2, 4, 6, 8, 10, 11, 1, 3, 5, 7, 9, 12]
    assert set(drv.store) == {META}


def test_lock_expiry_is_exact() -> None:
    drv = Driver(QID, Limits(segment_size=3))
    drv.call(T0, "push", [({"n": 1}, 1), ({"n": 2}, 1)])
    _, (lock_id, expires_at) = drv.call(T0, "pop", 1, 10)
    assert expires_at == T0 + 10
    assert drv.call(expires_at - 0.001, "extend", lock_id, 1) == T0 + 11
    before = _snapshot(drv.store)
    with pytest.raises(LockExpired) as info:
        drv.call(T0 + 11, "acknowledge", lock_id)
    assert info.value.status == 410
    assert _snapshot(drv.store) == before
    with pytest.raises(LockNotFound) as info:
        drv.call(T0 + 11, "acknowledge", "never-issued")
    assert info.value.status == 404
    items, _ = drv.call(T0 + 11, "pop", 5)
    assert [it.item["n"] for it in items] == [1, 2]


def test_dead_letter_survives_a_crash_between_delivery_and_confirm() -> None:
    limits = Limits(segment_size=2)
    src, dlq = Driver(QID, limits), Driver(DLQ, limits)
    src.call(T0, "push", [({"n": i}, [7, 0, 7][i]) for i in range(3)])
    _, (lock_id, _) = src.call(T0, "pop", 3, 30)
    assert src.call(T0, "dead_letter", lock_id) == (3, DLQ)
    with pytest.raises(LockNotFound):
        src.call(T0, "acknowledge", lock_id)
    (transfer,) = src.call(T0, "pending_transfers")
    assert dlq.call(T0, "receive", QID, transfer.seq, transfer.entries) == 3
    # crash: not confirmed, so the flush after restart delivers it again
    (again,) = src.call(T0 + 1, "pending_transfers")
    assert again.seq == transfer.seq
    assert dlq.call(T0 + 1, "receive", QID, again.seq, again.entries) == 0
    assert src.call(T0 + 1, "confirm", [again.seq]) == 1
    assert src.call(T0 + 1, "pending_transfers") == []
    assert set(src.store) == {META}
    items, _ = dlq.call(T0 + 1, "pop", 10)
    assert [(it.priority, it.item["n"]) for it in items] == [(0, 1), (7, 0), (7, 2)]
    assert [it.enqueued_at for it in items] == [T0] * 3


def test_dead_letter_queue_reports_its_oldest_item() -> None:
    """Dead-lettering the newer lock first must not hide the oldest item from ``stats``.

    Items get new ids in the dead-letter queue, so if they kept their original
    ``enqueued_at`` it would not be ordered like ids there, and the head of a
    priority would not be its oldest item (``stats`` reported T0 + 5 here while an
    item from T0 was queued). ``enqueued_at`` restarts at arrival instead.
    """
    limits = Limits(segment_size=1)
    src, dlq = Driver(QID, limits), Driver(DLQ, limits)
    src.call(T0, "push", [({"n": 1}, 0)])
    src.call(T0 + 5, "push", [({"n": 2}, 0)])
    _, (older, _) = src.call(T0 + 5, "pop", 1, 30)
    _, (newer, _) = src.call(T0 + 5, "pop", 1, 30)
    for now, lock_id in ((T0 + 6, newer), (T0 + 7, older)):
        src.call(now, "dead_letter", lock_id)
        for t in src.call(now, "pending_transfers"):
            dlq.call(now, "receive", QID, t.seq, t.entries)
            src.call(now, "confirm", [t.seq])
    stats = dlq.call(T0 + 8, "stats")
    assert stats["depth"] == 2
    items, _ = dlq.call(T0 + 8, "pop", 10, 30)
    assert [it.item["n"] for it in items] == [2, 1]  # in order of arrival
    assert [it.enqueued_at for it in items] == [T0 + 6, T0 + 7]
    assert stats["oldest_enqueued_at"] == min(it.enqueued_at for it in items)


def test_failed_operations_leave_the_store_untouched() -> None:
    drv = Driver(QID, Limits(segment_size=2, max_depth=3, max_locks=1))
    drv.call(T0, "push", [({"n": i}, 1) for i in range(3)])
    drv.call(T0, "pop", 1, 30)
    before = _snapshot(drv.store)
    with pytest.raises(QueueFull):
        drv.call(T0, "push", [({"n": 9}, 0), ({"n": 10}, 0)])
    with pytest.raises(TooManyLocks):
        drv.call(T0, "pop", 1, 30)
    assert _snapshot(drv.store) == before


@given(st.integers(0, 10**16 - 1), st.integers(0, 10**16 - 1))
def test_format_id_sorts_as_text_like_as_numbers(a: int, b: int) -> None:
    fa, fb = format_id(a), format_id(b)
    assert len(fa) == len(fb) == 16
    assert (fa < fb) == (a < b) and (fa == fb) == (a == b)
    assert int(fa) == a


def test_format_id_examples() -> None:
    assert format_id(1) == "0000000000000001"
    assert format_id(9) < format_id(10) < format_id(100) < format_id(10**15)
    assert sorted(format_id(n) for n in (10, 9, 1000, 99)) == [
        format_id(n) for n in (9, 10, 99, 1000)
    ]


# ---------------------------------------------------------------------- segment size
def test_queues_keep_the_segment_size_they_were_created_with() -> None:
    """A queue written before meta recorded ``S`` (legacy 100-item segments) and one
    created under another setting stay readable whatever the host's setting now is."""
    legacy = Driver(QID, Limits(segment_size=100))
    _fill(legacy, 250, priority=1)
    _fill(legacy, 30, priority=0)
    del legacy.store[META]["S"]  # what a queue written by an older version looks like
    legacy.limits = Limits(segment_size=4)  # the host now creates 4-item segments
    got = [i.item["n"] for i in legacy.call(T0, "pop", 40)[0]]
    assert got == list(range(30)) + list(range(10)), got
    legacy.call(T0, "push", [({"n": 250}, 1)])
    rest = []
    while items := legacy.call(T0, "pop", 100)[0]:
        rest += [i.item["n"] for i in items]
    assert rest == list(range(10, 251))
    _check_layout(legacy.store, Limits(segment_size=100))

    recorded = Driver(QID, Limits(segment_size=3))
    _fill(recorded, 20)
    assert recorded.store[META]["S"] == 3
    recorded.limits = Limits(segment_size=50)
    assert [i.item["n"] for i in recorded.call(T0, "pop", 20)[0]] == list(range(20))


def test_a_push_rewrites_at_most_one_small_segment() -> None:
    """Write proportional to the change: with the default size a push of one item to a
    long queue writes meta and a segment of at most DEFAULT_SEGMENT_SIZE entries."""
    drv = Driver(QID, Limits())
    _fill(drv, 5000)
    for n in range(40):
        _, changes = drv._drive(T0, "push", ([({"n": n}, 1)],))
        segs = [v for k, v in changes.items() if k.startswith("s:")]
        assert len(changes) <= 3 and all(len(s["items"]) <= 16 for s in segs), changes.keys()
        drv.call(T0, "push", [({"n": n}, 1)])


def test_an_activation_reads_past_a_tail_once_per_priority() -> None:
    """A push into a new segment reads it (checked empty) the first time an activation
    meets that priority's tail, and never again: a hot queue's batch crosses a segment
    boundary every turn, and each such read was a store round trip."""
    limits = Limits(segment_size=4)
    kept = Driver(QID, limits, tails_checked=set())
    plain = Driver(QID, limits)
    for drv in (kept, plain):
        _fill(drv, 4)  # tail at a boundary: the next push starts segment 1
    kept.tails_checked = set()  # a new activation
    reads: dict[str, list[str]] = {"kept": [], "plain": []}
    for n in range(9):
        for name, drv in (("kept", kept), ("plain", plain)):
            tail = _stored_meta(drv.store, 4)["pri"]["1"][1]
            drv.call(T0, "push", [({"n": n}, 1)])
            past = seg_key(1, tail // 4)  # the segment a push at a boundary starts
            reads[name] += [k for k in drv.last_keys if k == past and tail % 4 == 0]
    assert reads["plain"] == ["s:1:1", "s:1:2", "s:1:3"]
    assert reads["kept"] == ["s:1:1"], reads["kept"]  # the first one, then none
    assert _snapshot(kept.store) == _snapshot(plain.store)


def test_a_row_past_the_tail_is_caught_by_a_new_activation() -> None:
    """Meta rolled back past a segment that still holds items: the first push of an
    activation into that segment answers STATE_CORRUPT instead of overwriting them."""
    limits = Limits(segment_size=4)
    drv = Driver(QID, limits, tails_checked=set())
    _fill(drv, 9)
    drv.store[META]["pri"]["1"][1] = 8  # segment 2 (position 8) is now past the tail
    drv.tails_checked = set()  # a new activation
    with pytest.raises(StateCorrupt, match="s:1:2"):
        drv.call(T0, "push", [({"n": 99}, 1)])
    assert drv.store["s:1:2"]["items"][0][1] == {"n": 8}
    assert drv.tails_checked == set()  # forgotten with the failure: the next push reads again
    with pytest.raises(StateCorrupt, match="s:1:2"):
        drv.call(T0, "push", [({"n": 99}, 1)])


# ---------------------------------------------------------------------- meta left behind
def test_a_plain_push_into_its_tail_segment_saves_that_segment_alone() -> None:
    """One row per push instead of two (queue_tails): only a push that starts a segment
    or a priority, carries an Idempotency-Key or a delay, saves meta too."""
    drv = Driver(QID, Limits(segment_size=4))

    def saved(*args: Any) -> set[str]:
        _, changes = drv._drive(T0, "push", args)
        apply_changes(drv.store, changes)
        return set(changes)

    assert saved([({"n": 0}, 1)]) == {META, "s:1:0"}  # a new priority
    assert saved([({"n": 1}, 1)]) == {"s:1:0"}
    assert saved([({"n": 2}, 1), ({"n": 3}, 1)]) == {"s:1:0"}  # fills the segment
    assert saved([({"n": 4}, 1)]) == {META, "s:1:1"}  # starts segment 1
    assert saved([({"n": 5}, 1), ({"n": 6}, 1)]) == {"s:1:1"}
    assert saved([({"n": 7}, 1), ({"n": 8}, 1)]) == {META, "s:1:1", "s:1:2"}  # across
    assert saved([({"n": 9}, 1), ({"x": 0}, 2)]) == {META, "s:1:2", "s:2:0"}
    assert META in saved([({"n": 10}, 1)], "key-1", "fp")
    assert META in saved([({"n": 11}, 1, 30)])  # delayed
    assert saved([({"n": 12}, 1)]) == {"s:1:2"}
    stored, read = drv.store[META], _stored_meta(drv.store, 4)
    assert (stored["pri"]["1"][1], stored["next_id"]) == (11, 14)  # left behind by one
    assert (read["pri"]["1"][1], read["next_id"]) == (12, 15)
    popped = drv.call(T0, "pop", 20)[0]  # the delayed n=11 is not due
    assert [i.item for i in popped] == [*({"n": n} for n in (*range(11), 12)), {"x": 0}]
    assert [i.id for i in popped][-2:] == [format_id(14), format_id(11)]


def test_a_tail_segment_that_does_not_read_as_left_behind_is_a_corruption() -> None:
    """Entries past meta's tail are caught up only when their ids are new ones (from
    ``next_id`` up, rising): anything else is reported, not adopted."""
    for tamper in ("below next_id", "duplicate", "bad entry"):
        drv = Driver(QID, Limits(segment_size=8))
        _fill(drv, 1)
        for n in (1, 2):
            drv.call(T0, "push", [({"n": n}, 1)])
        assert drv.store[META]["pri"]["1"][1] == 1  # two pushes left meta behind
        items = drv.store["s:1:0"]["items"]
        if tamper == "below next_id":
            items[2][0] = items[0][0]
        elif tamper == "duplicate":
            items[2][0] = items[1][0]
        else:
            items[2] = "not an entry"
        with pytest.raises(StateCorrupt, match="s:1:0") as info:
            drv.call(T0, "stats")
        assert "s:1:0" in info.value.keys


def test_a_plain_pop_inside_its_head_segment_saves_that_segment_alone() -> None:
    """A pop that leaves its priorities non-empty, their heads in the same segments,
    saves those segments alone; one that empties a segment or locks saves meta too."""
    drv = Driver(QID, Limits(segment_size=4))
    _fill(drv, 10)

    def saved(*args: Any) -> set[str]:
        _, changes = drv._drive(T0, "pop", args)
        apply_changes(drv.store, changes)
        return set(changes)

    assert saved(1) == {"s:1:0"}
    assert saved(2) == {"s:1:0"}
    assert saved(1) == {META, "s:1:0"}  # empties segment 0: the head moves on
    assert META in saved(1, 30)  # a lock
    read = _stored_meta(drv.store, 4)
    assert read["pri"]["1"][:2] == [5, 10] and drv.store[META]["pri"]["1"][:2] == [5, 10]
    assert saved(2) == {"s:1:1"}
    assert _stored_meta(drv.store, 4)["pri"]["1"][0] == 7 > drv.store[META]["pri"]["1"][0]
    assert [i.item["n"] for i in drv.call(T0, "pop", 10)[0]] == [7, 8, 9]
