"""Typed results of the pushpop API: one frozen dataclass per answer shape.

Each ``from_json`` reads the fields the contract names and ignores any it does not know,
so a newer server never breaks an older client. Fields a server may not send yet
(``deliveries``, ``delayed``, ``origin``) have the contract's defaults.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

JsonObject = dict[str, Any]


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


@dataclass(frozen=True)
class Message:
    """One item as a pop (or a peek) returns it."""

    id: str
    item: JsonObject
    priority: int
    enqueued_at: float
    deliveries: int = 1
    # set on items moved by dead-letter or redrive: {"queue_id", "id"} they had before
    origin: JsonObject | None = None

    @classmethod
    def from_json(cls, d: JsonObject) -> Message:
        return cls(
            id=str(d["id"]),
            item=d["item"],
            priority=int(d["priority"]),
            enqueued_at=float(d["enqueued_at"]),
            deliveries=int(d.get("deliveries", 1)),
            origin=d.get("origin"),
        )


@dataclass(frozen=True)
class PopResult:
    """A pop's answer: ``lock_id``/``lock_expires_at`` only for a pop with ack and items."""

    items: list[Message]
    lock_id: str | None = None
    lock_expires_at: float | None = None

    @classmethod
    def from_json(cls, d: JsonObject) -> PopResult:
        return cls(
            items=[Message.from_json(m) for m in d.get("items", [])],
            lock_id=d.get("lock_id"),
            lock_expires_at=_opt_float(d.get("lock_expires_at")),
        )

    def __len__(self) -> int:
        return len(self.items)


@dataclass(frozen=True)
class PushResult:
    """``replayed``: the server answered a retry from its idempotency record."""

    pushed: int
    ids: list[str]
    depth: int
    replayed: bool = False

    @classmethod
    def from_json(cls, d: JsonObject, replayed: bool = False) -> PushResult:
        return cls(
            pushed=int(d["pushed"]),
            ids=[str(i) for i in d["ids"]],
            depth=int(d["depth"]),
            replayed=replayed or bool(d.get("replayed", False)),
        )


@dataclass(frozen=True)
class ExtendResult:
    lock_id: str
    lock_expires_at: float

    @classmethod
    def from_json(cls, d: JsonObject) -> ExtendResult:
        return cls(lock_id=str(d["lock_id"]), lock_expires_at=float(d["lock_expires_at"]))


@dataclass(frozen=True)
class DeadLetterResult:
    dead_lettered: int
    dead_letter_queue: str

    @classmethod
    def from_json(cls, d: JsonObject) -> DeadLetterResult:
        return cls(int(d["dead_lettered"]), str(d["dead_letter_queue"]))


@dataclass(frozen=True)
class QueueStats:
    """``GET /queue/{id}``: ``depth`` counts waiting items, ``delayed`` those not yet due."""

    queue_id: str
    depth: int
    in_flight: int
    locks: int
    oldest_enqueued_at: float | None
    by_priority: dict[int, int] = field(default_factory=dict)
    delayed: int = 0

    @classmethod
    def from_json(cls, d: JsonObject) -> QueueStats:
        return cls(
            queue_id=str(d["queue_id"]),
            depth=int(d["depth"]),
            in_flight=int(d.get("in_flight", 0)),
            locks=int(d.get("locks", 0)),
            oldest_enqueued_at=_opt_float(d.get("oldest_enqueued_at")),
            by_priority={int(p): int(n) for p, n in d.get("by_priority", {}).items()},
            delayed=int(d.get("delayed", 0)),
        )


@dataclass(frozen=True)
class QueueSummary:
    """One row of ``GET /queues``."""

    queue_id: str
    depth: int
    in_flight: int
    delayed: int
    locks: int
    oldest_enqueued_at: float | None

    @classmethod
    def from_json(cls, d: JsonObject) -> QueueSummary:
        return cls(
            queue_id=str(d["queue_id"]),
            depth=int(d["depth"]),
            in_flight=int(d.get("in_flight", 0)),
            delayed=int(d.get("delayed", 0)),
            locks=int(d.get("locks", 0)),
            oldest_enqueued_at=_opt_float(d.get("oldest_enqueued_at")),
        )


@dataclass(frozen=True)
class QueuesPage:
    """A page of ``GET /queues``; ``next`` is the cursor for the following page, or None."""

    queues: list[QueueSummary]
    next: str | None

    @classmethod
    def from_json(cls, d: JsonObject) -> QueuesPage:
        return cls([QueueSummary.from_json(q) for q in d["queues"]], d.get("next"))


@dataclass(frozen=True)
class QueueSettings:
    """``max_deliveries`` None: no limit."""

    queue_id: str
    max_deliveries: int | None
    dead_letter_queue: str

    @classmethod
    def from_json(cls, d: JsonObject) -> QueueSettings:
        limit = d.get("max_deliveries")
        return cls(
            str(d["queue_id"]), None if limit is None else int(limit), str(d["dead_letter_queue"])
        )


@dataclass(frozen=True)
class RedriveResult:
    moved: int
    to: str
    remaining: int

    @classmethod
    def from_json(cls, d: JsonObject) -> RedriveResult:
        return cls(int(d["moved"]), str(d["to"]), int(d["remaining"]))


@dataclass(frozen=True)
class Health:
    """``/health`` or ``/ready``; ``store``/``runtime`` only from ``/ready``."""

    status: str
    store: str | None = None
    runtime: str | None = None

    @classmethod
    def from_json(cls, d: JsonObject) -> Health:
        return cls(str(d["status"]), d.get("store"), d.get("runtime"))
