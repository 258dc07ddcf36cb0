"""The key layout of one queue's state, its value shapes and their checks.

One place says what a key and a well-formed value look like, for the state machine
(:mod:`.queue_state`), its repair (:mod:`.queue_repair`) and the embedded runtime. Keys:
``meta``, segments ``s:{priority}:{k}``, locks ``l:{lock_id}``, outbox ``x:{seq}``, delayed
items ``dix`` and ``d:{second}:{k}``, idempotency keys ``k:{digest}`` and ``kl:{k}``; each
value's shape and the rule for segments past a tail: docs/how-it-works.md, "Key layout".
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

META = "meta"
DELETED: Any = object()  # marker in changes(): remove this key

Need = list[str]
Op = Generator[Need, dict[str, Any], Any]

# An item inside the queue: [message id, item, enqueued_at]. Inside a lock or a
# transfer it is prefixed with its priority: [priority, id, item, enqueued_at].
Entry = list[Any]

MAX_TOMBSTONES = 1024
# ids and positions are JSON numbers: beyond 2**53 they stop being exact in many clients
MAX_ID = 2**53
MAX_REPAIR_SEGMENTS = 100_000


def format_id(n: int) -> str:
    """Message ids are decimal, zero-padded so that they sort the same as text and as ints."""
    return f"{n:016d}"


def seg_key(priority: int, k: int) -> str:
    return f"s:{priority}:{k}"


def is_segment_key(key: str) -> bool:
    return key.startswith("s:")


def lock_key(lock_id: str) -> str:
    return f"l:{lock_id}"


def transfer_key(seq: int) -> str:
    return f"x:{seq}"


# A queue's segment size is fixed when the queue is created and kept in its meta
# (``S``): positions map to keys through it, so it can never change under live rows.
# Queues written before meta recorded it used the then-default 100.
DEFAULT_SEGMENT_SIZE = 16
LEGACY_SEGMENT_SIZE = 100
MAX_SEGMENT_SIZE = 10_000


def new_meta(segment_size: int = DEFAULT_SEGMENT_SIZE) -> dict[str, Any]:
    return {
        "S": segment_size,  # items per segment row, fixed for the queue's life
        "next_id": 1,
        "pri": {},  # str(priority) -> [head, tail, head_enqueued_at]
        "locks": {},  # lock_id -> {"exp": float, "n": int}
        "gone": {},  # lock_id -> expired_at   (tombstones, so late acks get 410)
        "xseq": 0,  # last dead-letter transfer sequence number issued
        "out": [],  # transfer sequence numbers not yet confirmed delivered
        "recv": {},  # source queue -> last transfer sequence number applied
    }


@dataclass(frozen=True)
class Limits:
    """Configurable limits; ``0`` means unlimited."""

    # items per segment row of *new* queues: a push rewrites its tail segment, so small
    # segments keep a push's write small (half a segment on average); a pop of depth d
    # still reads O(d / S + 1) rows. Existing queues keep the size their meta records.
    segment_size: int = DEFAULT_SEGMENT_SIZE
    # the size of queues whose meta predates ``S`` (they were written with this setting)
    legacy_segment_size: int = LEGACY_SEGMENT_SIZE
    max_depth: int = 0
    max_locks: int = 0
    # seconds from a lock's creation past which no extend may push its expiry (SQS caps
    # a message's visibility the same way): each extend is capped, the total must be too
    max_lock_lifetime: float = 0
    # seconds an idempotency key (and the answer it replays) is kept
    idempotency_ttl: float = 600


@dataclass
class PoppedItem:
    id: str
    item: dict[str, Any]
    priority: int
    enqueued_at: float
    deliveries: int = 1
    origin: dict[str, str] | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {
            "id": self.id,
            "item": self.item,
            "priority": self.priority,
            "enqueued_at": self.enqueued_at,
            "deliveries": self.deliveries,
        }
        if self.origin is not None:
            out["origin"] = self.origin
        return out


@dataclass
class Transfer:
    """A dead-letter move recorded in the source's outbox, to be delivered idempotently."""

    seq: int
    target: str
    entries: list[Entry] = field(default_factory=list)


DELAY_CHUNK = 256
IDEM_CHUNK = 16
# entries moved out of the delay buckets per call: a million items falling due at once
# are released over many calls, each bounded
MAX_DUE_PER_CALL = 1000
MAX_DELAY = 86_400
MAX_QUEUE_ID = 128  # characters: a dead-letter target longer than this cannot be reached


def delay_key(second: int, k: int) -> str:
    return f"d:{second}:{k}"


def idem_log_key(k: int) -> str:
    return f"kl:{k}"


def extra_of(entry: Entry, at: int) -> dict[str, Any]:
    """The optional extras dict of an entry whose fixed part has ``at`` elements."""
    return entry[at] if len(entry) > at else {}


def deliveries_of(entry: Entry, at: int) -> int:
    return int(extra_of(entry, at).get("d", 0))


def with_extra(fixed: list[Any], extra: dict[str, Any]) -> Entry:
    return [*fixed, extra] if extra else fixed


def origin_dict(extra: dict[str, Any]) -> dict[str, str] | None:
    o = extra.get("o")
    return {"queue_id": o[0], "id": o[1]} if o else None


def summarize(meta: dict[str, Any], now: float) -> dict[str, Any]:
    """What a listing shows of a queue, from its meta row alone (no other read)."""
    pri = meta.get("pri") or {}
    locks = meta.get("locks") or {}
    oldest = min((v[2] for v in pri.values()), default=None)
    return {
        "depth": sum(t - h for h, t, _ in pri.values()),
        "in_flight": sum(lk["n"] for lk in locks.values()),
        "delayed": (meta.get("dl") or [0])[0],
        "locks": len(locks),
        "oldest_enqueued_at": oldest,
    }


def dead_letter_queue(queue_id: str) -> str:
    return f"{queue_id}-deadletter"


def is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and -MAX_ID <= v <= MAX_ID


def is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def is_entry(e: Any) -> bool:
    """A queued entry: ``[id, item, enqueued_at]`` or ``[id, item, enqueued_at, extras]``."""
    return (
        isinstance(e, list)
        and (len(e) == 3 or (len(e) == 4 and isinstance(e[3], dict)))
        and is_int(e[0])
        and isinstance(e[1], dict)
        and is_number(e[2])
    )


def is_locked_entry(e: Any) -> bool:
    """An entry inside a lock: ``[priority, id, item, enqueued_at]``."""
    return isinstance(e, list) and len(e) in (4, 5) and is_int(e[0]) and is_entry(e[1:])


def is_int_text(v: Any) -> bool:
    return isinstance(v, str) and v.lstrip("-").isdigit() and len(v) <= 20


def run_sync(op: Op, store: dict[str, Any]) -> Any:
    """Drive an operation against a plain dict (unit tests and the in-memory twin)."""
    try:
        need = next(op)
        while True:
            need = op.send({k: store.get(k) for k in need})
    except StopIteration as stop:
        return stop.value


def apply_changes(store: dict[str, Any], changes: dict[str, Any]) -> None:
    for k, v in changes.items():
        if v is DELETED:
            store.pop(k, None)
        else:
            store[k] = v
