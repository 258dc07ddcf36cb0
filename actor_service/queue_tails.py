"""Meta's tails may lag in the store: how a reader of meta catches them up.

A plain push whose items all land in their priorities' current tail segments saves
those segments alone, not meta: one row written instead of two, the write that costs a
push the most (docs/how-it-works.md, "Key layout"). Every other operation saves meta
whole. So a stored meta may name, per priority, a tail short of the real one, by
entries of that same tail segment only, and a ``next_id`` short by exactly their number.
Whoever reads meta from the store (an activation, a listing) applies :func:`catch_up`.
Pure functions: the state machine and the listing share them.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from typing import Any

from actor_service.queue_access import StateAccess
from actor_service.queue_layout import META, Entry, Need, is_entry, is_int, seg_key


class NotLeftBehind(ValueError):
    """Entries past a tail that no plain push left there: the state contradicts itself."""

    def __init__(self, what: str, *keys: str) -> None:
        super().__init__(what)
        self.what, self.keys = what, keys


def tail_keys(meta: dict[str, Any], s: int) -> dict[str, str]:
    """Each priority's tail segment key (the one holding its last position)."""
    return {p: seg_key(int(p), (rng[1] - 1) // s) for p, rng in meta["pri"].items()}


def catch_up(meta: dict[str, Any], s: int, segments: Mapping[str, Any]) -> bool:
    """Extend ``meta``'s tails over what their tail segments hold past them; True if it did.

    ``segments``: the values of :func:`tail_keys` (absent: ``None``). All or nothing, and
    only when the extra entries are what lagging pushes leave: well-formed, inside their
    segment, with ids exactly ``next_id``, ``next_id + 1``, ...; entries past a tail that
    are not raise :class:`NotLeftBehind`. A tail segment that is missing or starts
    elsewhere is left to the state machine's checks. ``meta`` must have passed
    :func:`~actor_service.queue_invariants.check_meta`.
    """
    new_tails: dict[str, int] = {}
    ids: list[Any] = []
    for p, key in tail_keys(meta, s).items():
        head, tail, _ = meta["pri"][p]
        seg = segments.get(key)
        if not isinstance(seg, dict):
            continue
        start, items = seg.get("start"), seg.get("items")
        k = (tail - 1) // s
        if not (is_int(start) and isinstance(items, list) and start == max(head, k * s)):
            continue
        end = start + len(items)
        if end <= tail:
            continue
        extra = items[tail - start :]
        if end > (k + 1) * s or not all(is_entry(e) and is_int(e[0]) for e in extra):
            raise NotLeftBehind(f"segment {key} holds malformed entries past the tail", key)
        new_tails[p] = end
        ids += [e[0] for e in extra]
    if not ids:
        return False
    first = meta["next_id"]
    if sorted(ids) != list(range(first, first + len(ids))):
        keys = [tail_keys(meta, s)[p] for p in new_tails]
        raise NotLeftBehind(
            f"entries past the tails in {', '.join(keys)} have other ids than the next "
            f"ones ({first}, {first + 1}, ...)", *keys,
        )  # fmt: skip
    for p, end in new_tails.items():
        meta["pri"][p][1] = end
    meta["next_id"] = first + len(ids)
    return True


def read(st: StateAccess) -> Generator[Need, dict[str, Any], bool]:
    """Catch up the meta ``st`` read from the store (once a call); True if it moved."""
    st.catch_up = False
    yield from st._load(tail_keys(st.meta, st.seg_size).values())
    try:
        return catch_up(st.meta, st.seg_size, st._values)
    except NotLeftBehind as err:
        raise st._corrupt(err.what, *err.keys) from None


def may_skip_meta(st: StateAccess, groups: dict[int, list[Entry]]) -> bool:
    """Whether a push appending ``groups`` may leave meta unsaved: nothing in meta is to
    be saved yet in this call, and every group lands in its priority's current tail
    segment (a reader of the stored meta catches it up)."""
    if META in st._dirty:
        return False
    pri, s = st.meta["pri"], st.seg_size
    for priority, entries in groups.items():
        rng = pri.get(str(priority))
        if rng is None or (rng[1] - 1) // s != (rng[1] + len(entries) - 1) // s:
            return False
    return True


__all__ = ["NotLeftBehind", "catch_up", "may_skip_meta", "read", "tail_keys"]
