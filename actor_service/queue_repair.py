"""Admin repair of a queue whose state contradicts itself (``POST /queue/{id}/repair``).

Apart from the state machine because it is the one operation that may *decide* rows are
gone. It drives a :class:`~actor_service.queue_state.QueueState` through the same key
access (``_load``/``_set``/``_delete``/``_append``): a friend of that class, not a second
implementation of the layout.
"""

from __future__ import annotations

import contextlib
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from actor_service.queue_layout import (
    MAX_REPAIR_SEGMENTS,
    MAX_SEGMENT_SIZE,
    META,
    Entry,
    Need,
    Op,
    is_entry,
    is_int,
    is_int_text,
    is_locked_entry,
    is_number,
    lock_key,
    new_meta,
    seg_key,
    transfer_key,
)
from actor_service.queue_tails import catch_up, end_keys

if TYPE_CHECKING:  # the class it drives; not imported at run time (no cycle)
    from actor_service.queue_state import QueueState


def walk_segments(
    st: QueueState, priority: int, first: int, last: int
) -> Generator[Need, Any, list[str]]:
    """Keys of the existing segments reached by walking both ways from ``first`` and
    from ``last`` until a row is missing (past the range too: a head moved forward by
    a corruption leaves the real items below it). O(segments that exist), wherever a
    corruption moved either end: a head moved to 2**40 costs one read, not billions."""
    found: list[str] = []
    for start, step in ((first, 1), (first - 1, -1), (last, -1), (last + 1, 1)):
        for n in range(MAX_REPAIR_SEGMENTS):
            key = seg_key(priority, start + n * step)
            if key in found:
                break
            yield from st._load([key])
            if st._values.get(key) is None:
                break
            found.append(key)
    return found


def repair(st: QueueState) -> Op:
    """Make a corrupted queue consistent again, keeping every item that can be read.

    Explicit (``POST /queue/{id}/repair``, admin), never run on its own: it decides
    that rows which cannot be found are gone. Each priority's segments named by meta
    are read, their well-formed entries kept (sorted by id, duplicates dropped) and
    laid out afresh from the old head; a lock or transfer whose row is missing is
    dropped, a lock's count set to its row's; ``next_id`` moves past every id seen.
    Costs O(segments named) reads, capped at :data:`MAX_REPAIR_SEGMENTS` per priority.
    Returns a report of what was kept and what was lost.
    """
    yield from st._load([META])
    report: dict[str, Any] = {
        "queue_id": st.queue_id, "repaired": False, "items_kept": 0, "items_lost": 0,
        "locks_dropped": [], "transfers_dropped": [], "notes": [],
    }  # fmt: skip
    m = st._values[META]
    if m is None:  # an untouched queue: nothing to repair, and no row is written
        st._values[META] = new_meta(st.limits.segment_size)
        return report
    fresh = new_meta(st.limits.segment_size)
    pri_ok = isinstance(m, dict) and isinstance(m.get("pri"), dict)
    if pri_ok:
        pri_ok = all(
            is_int_text(p) and isinstance(r, list) and len(r) == 3
            and all(isinstance(x, int) and not isinstance(x, bool) for x in r[:2])
            for p, r in m["pri"].items()
        )  # fmt: skip
    if not pri_ok:
        # without meta's positions no row of the queue can be found (keys cannot be
        # listed): only the database can clear them
        report["notes"].append(
            "meta's positions are unreadable, so the queue's rows cannot be found: delete the "
            "rows whose key starts with this queue's actor key prefix in the database"
        )
        return report
    # the rows were laid out with the size meta records (or the legacy one): read them
    # with it, and lay them out again with it
    s = m.get("S", st.limits.legacy_segment_size)
    if not (is_int(s) and 1 <= s <= MAX_SEGMENT_SIZE):
        report["notes"].append(f"meta's segment size {s!r} is invalid; read as legacy")
        s = st.limits.legacy_segment_size
    m["S"] = s
    for name, default in fresh.items():
        if not isinstance(m.get(name), type(default)):
            report["notes"].append(f"meta field {name!r} reset")
            m[name] = default
    # ends a plain push or pop left behind are no loss: count from where they are
    yield from st._load(end_keys(m, s))
    with contextlib.suppress(ValueError, TypeError, KeyError, IndexError):
        catch_up(m, s, st._values)
    seen_max = 0
    locked: set[int] = set()
    for lid, lk in list(m["locks"].items()):
        key = lock_key(str(lid))
        yield from st._load([key])
        row = st._values.get(key)
        items = row.get("items") if isinstance(row, dict) else None
        good = [e for e in items if is_locked_entry(e)] if isinstance(items, list) else []
        if not good or not isinstance(lk, dict) or not is_number(lk.get("exp")):
            del m["locks"][lid]
            st._delete(key)
            report["locks_dropped"].append(str(lid))
            report["items_lost"] += lk.get("n", 0) if isinstance(lk, dict) else 0
            continue
        if len(good) != len(items) or lk.get("n") != len(good):
            report["notes"].append(f"lock {lid!r}: count set to its row's {len(good)}")
            st._set(key, {"items": good})
        lk["n"] = len(good)
        locked.update(e[1] for e in good)
        seen_max = max(seen_max, *(e[1] for e in good))
    for seq in list(m["out"]):
        key = transfer_key(seq) if is_int(seq) else ""
        if key:
            yield from st._load([key])
        rec = st._values.get(key) if key else None
        if not (isinstance(rec, dict) and isinstance(rec.get("items"), list)):
            m["out"].remove(seq)
            report["transfers_dropped"].append(seq)
    pri: dict[str, Any] = {}
    for p, rng in list(m["pri"].items()):
        lo, hi = sorted((rng[0], rng[1]))
        keys = yield from walk_segments(st, int(p), lo // s, (hi - 1) // s)
        entries: dict[int, Entry] = {}
        for key in keys:
            seg = st._values.get(key)
            items = seg.get("items") if isinstance(seg, dict) else None
            for e in items if isinstance(items, list) else []:
                if is_entry(e) and e[0] not in locked:
                    entries.setdefault(e[0], e)
            st._delete(key)
        # meta's claim, but never more than the ids ever issued (a moved end is no loss)
        issued = m["next_id"] if is_int(m["next_id"]) else hi - lo
        report["items_lost"] += max(0, min(hi - lo, issued) - len(entries))
        if not entries:
            continue
        ordered = [entries[i] for i in sorted(entries)]
        seen_max = max(seen_max, ordered[-1][0])
        report["items_kept"] += len(ordered)
        # lay them out again from the lowest segment found: a position meta got wrong
        # (2**60, say) is not carried over
        head = min(int(k.rsplit(":", 1)[1]) for k in keys) * s
        pri[p] = [head, head, ordered[0][2]]
        m["pri"] = pri  # _append works on meta's ranges
        yield from st._append(int(p), ordered)
    m["pri"] = pri
    if not is_int(m["next_id"]) or m["next_id"] <= seen_max:
        report["notes"].append(f"next_id moved past the largest id seen ({seen_max})")
        m["next_id"] = seen_max + 1
    live = st.depth() + st.in_flight()
    if live >= m["next_id"]:
        m["next_id"] = live + 1
    st._check_meta()  # what repair wrote must pass what every operation checks
    st._touch_meta()
    report["repaired"] = True
    return report
