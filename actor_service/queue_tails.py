"""Meta's ends may lag in the store: how a reader of meta catches them up.

A plain push whose items all land in their priorities' current tail segments saves those
segments alone, not meta, and so does a plain pop that leaves every priority it takes from
non-empty with its head in the same segment: one row written instead of two, the write
that costs a push or a pop the most (docs/how-it-works.md, "Key layout"). Every other
operation saves meta whole. So a stored meta may name, per priority, a head and a tail
short of the real ones, each within its segment, and a ``next_id`` short of the ids those
pushes gave. Whoever reads meta from the store (an activation, a listing) applies
:func:`catch_up`. Pure functions: the state machine and the listing share them.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from itertools import pairwise
from typing import Any

from actor_service.queue_access import StateAccess
from actor_service.queue_layout import META, Entry, Need, is_entry, is_int, is_number, seg_key


class NotLeftBehind(ValueError):
    """Entries past a tail that no plain push left there: the state contradicts itself."""

    def __init__(self, what: str, *keys: str) -> None:
        super().__init__(what)
        self.what, self.keys = what, keys


def end_keys(meta: dict[str, Any], s: int) -> list[str]:
    """The segment keys holding each priority's first and last positions."""
    keys = []
    for p, (head, tail, _) in meta["pri"].items():
        keys += [seg_key(int(p), head // s), seg_key(int(p), (tail - 1) // s)]
    return list(dict.fromkeys(keys))


def _segment(value: Any) -> tuple[int, list[Any]] | None:
    if not isinstance(value, dict):
        return None
    start, items = value.get("start"), value.get("items")
    return (start, items) if is_int(start) and isinstance(items, list) else None


def catch_up(meta: dict[str, Any], s: int, segments: Mapping[str, Any]) -> bool:
    """Move ``meta``'s heads and tails to where their segments say; True if it did.

    ``segments``: the values of :func:`end_keys` (absent: ``None``). A head moves to its
    segment's start when that lies further inside the segment; a tail over the entries
    its segment holds past it, when they are what plain pushes leave: well-formed, in
    the segment, with ids from ``next_id`` up, rising, none twice (else
    :class:`NotLeftBehind`). ``next_id`` moves past the largest: a pop that left meta
    behind never takes a priority's last entry, so the newest id is still there. A
    segment missing or starting elsewhere is left to the state machine's checks.
    ``meta`` must have passed :func:`~actor_service.queue_invariants.check_meta`.
    """
    pri, first = meta["pri"], meta["next_id"]
    heads: dict[str, tuple[int, float]] = {}
    tails: dict[str, int] = {}
    ids: set[int] = set()
    for p, (head, tail, _) in pri.items():
        k = head // s
        seg = _segment(segments.get(seg_key(int(p), k)))
        if seg is not None and head < seg[0] < (k + 1) * s and seg[1]:
            start, items = seg
            if is_entry(items[0]) and is_number(items[0][2]):
                heads[p] = (start, items[0][2])
        head = heads.get(p, (head, 0.0))[0]
        key = seg_key(int(p), (tail - 1) // s)
        seg = _segment(segments.get(key))
        if seg is None or seg[0] != max(head, (tail - 1) // s * s):
            continue
        start, items = seg
        end = start + len(items)
        if end <= tail:
            continue
        extra = items[max(tail, start) - start :]
        if end > ((tail - 1) // s + 1) * s or not all(
            is_entry(e) and is_int(e[0]) and e[0] >= first for e in extra
        ):
            raise NotLeftBehind(f"segment {key} holds entries past the tail no push left", key)
        new = [e[0] for e in extra]
        if any(a >= b for a, b in pairwise(new)) or ids.intersection(new):
            raise NotLeftBehind(f"segment {key} holds entries past the tail out of order", key)
        ids.update(new)
        tails[p] = end
    if not heads and not tails:
        return False
    for p, (head, enqueued) in heads.items():
        pri[p][0], pri[p][2] = head, enqueued
    for p, end in tails.items():
        pri[p][1] = end
    meta["next_id"] = max(first, max(ids, default=first - 1) + 1)
    return True


def read(st: StateAccess) -> Generator[Need, dict[str, Any], bool]:
    """Catch up the meta ``st`` read from the store (once a call); True if it moved."""
    st.catch_up = False
    yield from st._load(end_keys(st.meta, st.seg_size))
    try:
        return catch_up(st.meta, st.seg_size, st._values)
    except NotLeftBehind as err:
        raise st._corrupt(err.what, *err.keys) from None


def push_may_skip_meta(st: StateAccess, groups: dict[int, list[Entry]]) -> bool:
    """Whether a push appending ``groups`` may leave meta unsaved: nothing in meta is to
    be saved yet in this call, and every group lands in its priority's current tail
    segment."""
    if META in st._dirty:
        return False
    pri, s = st.meta["pri"], st.seg_size
    for priority, entries in groups.items():
        rng = pri.get(str(priority))
        if rng is None or (rng[1] - 1) // s != (rng[1] + len(entries) - 1) // s:
            return False
    return True


def pop_may_skip_meta(st: StateAccess, heads: dict[str, int]) -> bool:
    """Whether a pop that found the priorities' heads at ``heads`` (before it, with
    nothing in meta to be saved then) may leave meta unsaved: every priority is still
    there, its head in the same segment."""
    pri, s = st.meta["pri"], st.seg_size
    return all(p in pri and pri[p][0] // s == head // s for p, head in heads.items())


__all__ = [
    "NotLeftBehind",
    "catch_up",
    "end_keys",
    "pop_may_skip_meta",
    "push_may_skip_meta",
    "read",
]
