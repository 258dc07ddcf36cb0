"""What every operation checks of a queue's meta before it trusts it.

A pure function of meta's value, apart from the state machine, so that property tests
can feed it arbitrary corruptions and the state machine stays about queue operations.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from actor_service.errors import StateCorrupt
from actor_service.queue_layout import (
    MAX_ID,
    MAX_SEGMENT_SIZE,
    is_int,
    is_int_text,
    is_number,
    lock_key,
)


def check_meta(
    m: Any,
    corrupt: Callable[..., StateCorrupt],
    segment_keys: Callable[[int, int, int], list[str]],
) -> None:
    """O(priorities + locks) shape and bound checks of meta, run by every operation.

    Every live item (queued or locked) carries a distinct id below ``next_id``, so the
    positions meta names can never outnumber the ids issued: that bound is what keeps
    a corrupted head or tail from sending a loop over billions of positions.
    """
    if not isinstance(m, dict):
        raise corrupt("meta is not an object")
    try:
        next_id = m["next_id"]
        pri, locks = m["pri"], m["locks"]
        ok = (
            is_int(next_id)
            and 1 <= next_id <= MAX_ID
            and isinstance(pri, dict)
            and isinstance(locks, dict)
            and isinstance(m["gone"], dict)
            and is_int(m["xseq"])
            and isinstance(m["out"], list)
            and all(is_int(x) for x in m["out"])
            and isinstance(m["recv"], dict)
        )
    except KeyError as exc:
        raise corrupt(f"meta lacks {exc.args[0]!r}") from None
    if not ok:
        raise corrupt("meta has a field of the wrong type or out of range")
    if "S" in m and not (is_int(m["S"]) and 1 <= m["S"] <= MAX_SEGMENT_SIZE):
        raise corrupt(f"meta's segment size {m['S']!r} is not 1..{MAX_SEGMENT_SIZE}")
    live = 0
    for p, rng in pri.items():
        if not (
            is_int_text(p)
            and isinstance(rng, list)
            and len(rng) == 3
            and is_int(rng[0])
            and is_int(rng[1])
            and is_number(rng[2])
        ):
            raise corrupt(f"priority {p!r} has a malformed range {rng!r}")
        head, tail = rng[0], rng[1]
        if head >= tail:
            raise corrupt(
                f"priority {p} has head {head} at or past tail {tail}",
                *segment_keys(int(p), tail - 1, tail),
            )
        live += tail - head
    for lid, lk in locks.items():
        if not (isinstance(lk, dict) and is_number(lk.get("exp")) and is_int(lk.get("n"))
                and lk["n"] >= 1):  # fmt: skip
            raise corrupt(f"lock {lid!r} is malformed in meta", lock_key(str(lid)))
        live += lk["n"]
    if live >= next_id:
        raise corrupt(f"meta names {live} live items but only {next_id - 1} ids were ever issued")
