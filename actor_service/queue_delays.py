"""Delayed items of a queue: filed by the second they fall due, released when it comes.

Functions over one call's :class:`~actor_service.queue_state.QueueState` (as
:mod:`queue_repair` is), driven by its operations: see "Delayed items" in
:mod:`actor_service.queue_layout` for the rows they use and why a pop of ready items
reads none of them.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from actor_service.queue_layout import (
    DELAY_CHUNK,
    MAX_DUE_PER_CALL,
    Entry,
    Op,
    delay_key,
    with_extra,
)

if TYPE_CHECKING:
    from actor_service.queue_access import StateAccess

# a delayed entry: [due, priority, id, item, enqueued_at, extras, front (1: released)]
DUE = 0


def put(st: StateAccess, entries: list[Entry]) -> Op:
    """File delayed entries (``[due, priority, id, item, enq, extras, front]``) into
    their seconds' buckets: one append to each bucket's last row, and ``dix``."""
    if not entries:
        return
    yield from st._load(["dix"])
    dix = st._values.get("dix") or {}
    appends: dict[str, list[Entry]] = {}
    for e in entries:
        sec = str(math.floor(e[DUE]))
        n, low = dix.get(sec, (0, e[DUE]))
        key = delay_key(int(sec), n // DELAY_CHUNK)
        if key not in appends:
            if n % DELAY_CHUNK:
                yield from st._load([key])
                row = st._values.get(key)
                if not isinstance(row, list) or len(row) != n % DELAY_CHUNK:
                    raise st._corrupt(f"delay bucket row {key} does not hold its items",
                                        key, "dix")  # fmt: skip
                appends[key] = list(row)
            else:
                appends[key] = []
        appends[key].append(e)
        dix[sec] = [n + 1, min(low, e[DUE])]
    for key, row in appends.items():
        st._set(key, row)
    st._set("dix", dix)
    count, due = st.meta.get("dl") or (0, math.inf)
    st.meta["dl"] = [count + len(entries), min(due, *(e[DUE] for e in entries))]
    st._touch_meta()


def release_due(st: StateAccess) -> Op:
    """Take delayed items whose time has come out of their buckets, at most
    :data:`MAX_DUE_PER_CALL` per call (the rest stay due for the next call); returns
    them by priority as queued entries, ``(to the back, to the front)``, in due order."""
    yield from st._load(["dix"])
    dix = st._values.get("dix")
    if not isinstance(dix, dict):
        raise st._corrupt("meta counts delayed items but their index is missing", "dix")
    released: list[Entry] = []
    for sec in sorted(dix, key=int):
        n, low = dix[sec]
        if low > st.now or len(released) >= MAX_DUE_PER_CALL:
            break
        keys = [delay_key(int(sec), k) for k in range(-(-n // DELAY_CHUNK))]
        yield from st._load(keys)
        bucket: list[Entry] = []
        for key in keys:
            row = st._values.get(key)
            if not isinstance(row, list):
                raise st._corrupt(f"delay bucket row {key} is missing", key, "dix")
            bucket.extend(row)
            st._delete(key)
        if len(bucket) != n:
            raise st._corrupt(f"delay bucket {sec} holds {len(bucket)} items, not {n}",
                                *keys, "dix")  # fmt: skip
        released.extend(e for e in bucket if e[DUE] <= st.now)
        rest = [e for e in bucket if e[DUE] > st.now]
        if rest:
            for k in range(0, len(rest), DELAY_CHUNK):
                st._set(delay_key(int(sec), k // DELAY_CHUNK), rest[k : k + DELAY_CHUNK])
            dix[sec] = [len(rest), min(e[DUE] for e in rest)]
        else:
            del dix[sec]
    count = st.meta["dl"][0] - len(released)
    if dix:
        st.meta["dl"] = [count, min(v[1] for v in dix.values())]
        st._set("dix", dix)
    else:
        if count != 0:
            raise st._corrupt(f"meta counts {count} more delayed items than exist", "dix")
        del st.meta["dl"]
        st._delete("dix")
    st._touch_meta()
    released.sort(key=lambda e: (e[DUE], e[2]))
    back: dict[int, list[Entry]] = {}
    front: dict[int, list[Entry]] = {}
    for _due, p, n, item, enq, extra, is_front in released:
        (front if is_front else back).setdefault(int(p), []).append(
            with_extra([n, item, enq], extra)
        )
    return back, front


def bucket_keys(st: StateAccess) -> Op:
    """Every delay bucket row (for purge): O(delayed items / chunk)."""
    if not st.meta.get("dl"):
        return []
    yield from st._load(["dix"])
    dix = st._values.get("dix") or {}
    return [delay_key(int(sec), k) for sec, (n, _) in dix.items()
            for k in range(-(-n // DELAY_CHUNK))]  # fmt: skip
