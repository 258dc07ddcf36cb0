"""Corrupted queue state: every operation stops in bounded steps, with STATE_CORRUPT.

Pure state-machine tests (no I/O): a queue is built by random operations, then one of
its rows is corrupted the way a split brain, a bad restore or a hand edit would (a row
deleted, a position moved, a count changed, a value of the wrong type), and every
operation is run against it by a driver that counts the keys asked for. The bug these
catch: ``_take_front`` spun for ever on an empty segment, freezing the whole server.
"""

from __future__ import annotations

import contextlib
import json
import signal
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actor_service.errors import PushpopError, StateCorrupt
from actor_service.queue_layout import META, Limits, Op, apply_changes, lock_key, seg_key
from actor_service.queue_repair import repair
from actor_service.queue_state import QueueState

LIMITS = Limits(segment_size=4)
T0 = 1_700_000_000.0


class Budget(Exception):
    pass


@contextlib.contextmanager
def wall_limit(seconds: int) -> Iterator[None]:
    """A spin inside one pure-Python step yields nothing to count: SIGALRM interrupts it."""

    def stop(signum: int, frame: object) -> None:
        raise Budget(f"one step ran for more than {seconds}s")

    old = signal.signal(signal.SIGALRM, stop)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def drive(op: Op, store: dict[str, Any], budget: int) -> Any:
    """``run_sync`` on JSON copies, failing once the operation asks for more than
    ``budget`` keys or yields more than ``budget`` times."""
    asked = turns = 0
    try:
        need = next(op)
        while True:
            turns += 1
            asked += len(need)
            if asked > budget or turns > budget:
                raise Budget(f"asked for {asked} keys in {turns} turns (budget {budget})")
            need = op.send({k: json.loads(json.dumps(store[k])) if k in store else None
                            for k in need})  # fmt: skip
    except StopIteration as stop:
        return stop.value


def run(store: dict[str, Any], make: Any, now: float = T0) -> Any:
    st_ = QueueState("q", now, iter(f"L{i}" for i in range(10**6)).__next__, LIMITS)
    result = drive(make(st_), store, budget=10_000)
    apply_changes(store, st_.changes())
    return result


def build(ops: list[tuple[str, int]]) -> tuple[dict[str, Any], list[str]]:
    store: dict[str, Any] = {}
    locks: list[str] = []
    lock_ids = iter(f"L{i}" for i in range(10**6))
    for kind, n in ops:
        st_ = QueueState("q", T0, lock_ids.__next__, LIMITS)
        if kind == "push":
            op = st_.push([({"n": i}, i % 3) for i in range(n)])
        elif kind == "pop":
            op = st_.pop(n)
        elif kind == "lock":
            op = st_.pop(n, lock_ttl=600)
        else:
            if not locks:
                continue
            lid = locks.pop(n % len(locks))
            op = st_.release(lid) if kind == "release" else st_.dead_letter(lid)
        result = drive(op, store, 10_000)
        apply_changes(store, st_.changes())
        if kind == "lock" and result[1]:
            locks.append(result[1][0])
    return store, locks


HUGE = [2**40, 2**53 - 1, 2**53 + 5, -(2**53), 10**18]
NUMBERS = st.one_of(st.integers(-12, 12), st.sampled_from(HUGE))
JUNK = st.one_of(
    st.none(), st.integers(), st.text(max_size=3), st.lists(st.integers(), max_size=3),
    st.dictionaries(st.sampled_from(["start", "items", "n", "exp"]), st.integers(), max_size=2),
)  # fmt: skip


@st.composite
def corruption(draw: st.DrawFn, store: dict[str, Any]) -> str:
    """Corrupt ``store`` in place; returns a description for the failure message."""
    keys = sorted(store)
    kind = draw(st.sampled_from(["delete", "junk", "meta", "segment", "lock-n"]))
    if kind == "delete" and keys:
        k = draw(st.sampled_from(keys))
        del store[k]
        return f"deleted {k}"
    if kind == "junk" and keys:
        k = draw(st.sampled_from(keys))
        store[k] = draw(JUNK)
        return f"{k} := {store[k]!r}"
    meta = store.get(META)
    if kind == "meta" and meta:
        field = draw(st.sampled_from(["head", "tail", "next_id"]))
        if field == "next_id":
            meta["next_id"] = draw(NUMBERS) if draw(st.booleans()) else meta["next_id"] - 3
            return f"next_id := {meta['next_id']}"
        if meta["pri"]:
            p = draw(st.sampled_from(sorted(meta["pri"])))
            i = 0 if field == "head" else 1
            delta = draw(NUMBERS)
            meta["pri"][p][i] = delta if abs(delta) > 100 else meta["pri"][p][i] + delta
            return f"pri[{p}][{i}] := {meta['pri'][p][i]}"
    segs = [k for k in keys if k.startswith("s:")]
    if kind == "segment" and segs:
        k = draw(st.sampled_from(segs))
        seg = store[k]
        what = draw(st.sampled_from(["start", "drop", "dup"]))
        if what == "start":
            seg["start"] += draw(st.sampled_from([-1, 1, 4, -4]))
        elif what == "drop" and seg["items"]:
            seg["items"].pop(draw(st.integers(0, len(seg["items"]) - 1)))
        elif seg["items"]:
            seg["items"].append(seg["items"][0])
        return f"{k}: {what}"
    if kind == "lock-n" and meta and meta["locks"]:
        lid = draw(st.sampled_from(sorted(meta["locks"])))
        meta["locks"][lid]["n"] = draw(NUMBERS)
        return f"lock {lid} n := {meta['locks'][lid]['n']}"
    return "nothing"


OPS = st.lists(
    st.tuples(st.sampled_from(["push", "push", "pop", "lock", "release", "dead"]),
              st.integers(1, 9)),
    min_size=1, max_size=12,
)  # fmt: skip
# what the actor turns into STATE_CORRUPT when the state machine's own checks miss it
CONVERTED = (KeyError, TypeError, ValueError, IndexError, AttributeError)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=OPS, data=st.data())
def test_any_corruption_ends_every_operation_in_bounded_steps(ops: list, data: Any) -> None:
    store, _ = build(ops)
    what = data.draw(corruption(store))
    rows = len(store)
    meta = store.get(META) if isinstance(store.get(META), dict) else {}
    lock_ids = list(meta.get("locks", {}) if isinstance(meta.get("locks"), dict) else [])
    operations = {
        "push": lambda s: s.push([({"x": 1}, 1)] * 5),
        "pop": lambda s: s.pop(10),
        "pop-ack": lambda s: s.pop(10, lock_ttl=5),
        "stats": lambda s: s.stats(),
        "purge": lambda s: s.purge(),
        "transfers": lambda s: s.pending_transfers(),
        "expire-all": None,  # every lock expired: give-backs through _put_front
        **{f"release {lid}": (lambda s, lid=lid: s.release(lid)) for lid in lock_ids[:2]},
        **{f"ack {lid}": (lambda s, lid=lid: s.acknowledge(lid)) for lid in lock_ids[:1]},
    }
    for name, make in operations.items():
        now = T0 + (10**4 if name == "expire-all" else 0)
        st_ = QueueState("q", now, iter(f"N{i}" for i in range(100)).__next__, LIMITS)
        op = (make or (lambda s: s.stats()))(st_)
        # O(depth + segments + locks): each operation here pops at most 10, pushes 5
        budget = 4 * (10 + rows + len(lock_ids)) + 8
        try:
            with wall_limit(2):
                drive(op, store, budget)
        except Budget as exc:
            pytest.fail(f"{name} after [{what}]: {exc}")
        except StateCorrupt as exc:
            assert "q" in exc.message and exc.keys, (name, what, exc)
        except PushpopError:
            pass  # 404/410 of a lock, 429: answers the contract knows
        except CONVERTED:
            pass
        # the changes of a failed operation are never applied: the store stays as it was
        assert len(st_.changes()) <= budget, (name, what, len(st_.changes()))


def test_empty_segment_row_is_state_corrupt_not_a_spin() -> None:
    """The issue's repro: meta names items whose segment row is gone."""
    store, _ = build([("push", 9)])
    seg = seg_key(0, 0)
    assert seg in store
    del store[seg]
    with pytest.raises(StateCorrupt) as info:
        run(store, lambda s: s.pop(20))
    assert seg in info.value.keys and META in info.value.keys
    assert "'q'" in info.value.message


@pytest.mark.parametrize(
    ("corrupt", "key"),
    [
        (lambda s: s[META]["pri"]["1"].__setitem__(0, s[META]["pri"]["1"][1] + 2), META),
        (lambda s: s.pop(lock_key("L0")), lock_key("L0")),
        (lambda s: s[META].__setitem__("next_id", 2), META),
    ],
    ids=["head past tail", "lock row missing", "more items than ids"],
)
def test_named_corruptions_name_their_keys(corrupt: Any, key: str) -> None:
    store, locks = build([("push", 9), ("lock", 2)])
    assert locks == ["L0"]
    corrupt(store)
    before = json.dumps(store, sort_keys=True)
    with pytest.raises(StateCorrupt) as info:
        run(store, lambda s: s.release("L0"))
    assert key in info.value.keys
    assert json.dumps(store, sort_keys=True) == before  # nothing applied


def _all_ids(store: dict[str, Any]) -> list[int]:
    """Every message id the queue holds, queued or locked."""
    out: list[int] = []
    for k, v in store.items():
        if not isinstance(v, dict):
            continue
        if k.startswith("s:"):
            out.extend(e[0] for e in v["items"])
        elif k.startswith("l:"):
            out.extend(e[1] for e in v["items"])
    return out


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=OPS, data=st.data())
def test_repair_leaves_a_consistent_queue_and_duplicates_nothing(ops: list, data: Any) -> None:
    store, _ = build(ops)
    before = set(_all_ids(store))
    what = data.draw(corruption(store))
    with wall_limit(5):
        report = run(store, repair)
    if store.get(META) is None:
        return
    if not report["repaired"]:  # only when meta's positions are gone: it says so
        assert "database" in report["notes"][0], (what, report)
        assert what.startswith(("meta :=", "deleted meta")), (what, report)
        return
    assert report["repaired"], (what, report)
    ids = _all_ids(store)
    assert len(ids) == len(set(ids)), f"repair after [{what}] duplicated an item"
    assert set(ids) <= before | set(range(10**6)), what
    # every operation now works on the repaired queue; draining it returns what it kept
    stats = run(store, lambda s: s.stats())
    assert stats["depth"] == report["items_kept"], (what, report, stats)
    drained: list[str] = []
    while got := run(store, lambda s: s.pop(7))[0]:
        drained.extend(i.id for i in got)
    assert len(drained) == report["items_kept"] == len(set(drained)), (what, report)
    run(store, lambda s: s.push([({"after": 1}, 1)]))
    assert run(store, lambda s: s.purge()) >= 1


def test_repair_keeps_what_is_readable() -> None:
    store, _ = build([("push", 9)])  # priorities 0,1,2: three items each, one segment each
    del store[seg_key(1, 0)]
    report = run(store, repair)
    assert report["items_kept"] == 6 and report["items_lost"] == 3, report
    got = run(store, lambda s: s.pop(20))[0]
    assert [i.item["n"] for i in got] == [0, 3, 6, 2, 5, 8]


def test_repair_of_a_queue_that_never_existed_writes_nothing() -> None:
    store: dict[str, Any] = {}
    st_ = QueueState("q", T0, lambda: "L", LIMITS)
    report = drive(repair(st_), store, 10)
    assert report["repaired"] is False and report["items_kept"] == 0
    assert st_.changes() == {} and st_.meta["pri"] == {}
