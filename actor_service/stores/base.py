"""The storage interface every backend implements, and the key layout they share.

Deliberately narrow (get keys, apply one transaction, ping): it is exactly what a Dapr
actor state store offers, so the embedded runtime cannot grow a dependency on
something ``daprd`` could not give us in Dapr mode.
"""

from __future__ import annotations

import abc
import contextvars
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from actor_service.errors import StoreUnavailable

KEY_SEPARATOR = "||"


def actor_key(app_id: str, actor_type: str, actor_id: str, name: str) -> str:
    """The row key Dapr's state stores use for actor state, so both runtimes share data."""
    return KEY_SEPARATOR.join((app_id, actor_type, actor_id, name))


# The monotonic time by which the caller of the current actor call stops waiting. The
# gateway computes it once per request (api.actor_calls.ActorInvoker.call) and the embedded
# runtime sets it for the call's task (EmbeddedRuntime._run; group commit sets its
# batch's, stores/batching.py); stores read it so that a call answered "503, too slow"
# starts no store work after its deadline and cannot commit after it either (a commit
# that landed after the client gave up would turn a refused push into a stored one).
call_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "pushpop_call_deadline", default=None
)


def time_left(default: float) -> float:
    """Seconds until the current call's deadline, capped at ``default``.

    Raises :class:`StoreUnavailable` once the deadline has passed: nobody waits for the
    answer any more, so the store must not be touched.
    """
    deadline = call_deadline.get()
    if deadline is None:
        return default
    left = deadline - time.monotonic()
    if left <= 0:
        raise StoreUnavailable("the call's deadline passed before the state store answered")
    return min(default, left)


@dataclass
class Transaction:
    """Writes of one actor save: applied all together or not at all."""

    upserts: list[tuple[str, bytes]] = field(default_factory=list)
    deletes: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.upserts or self.deletes)


META_SUFFIX = KEY_SEPARATOR + "meta"
# above every character of a key: the exclusive end of a range of ids sharing a prefix
KEY_MAX_CHAR = "\U0010ffff"


def meta_range(
    app_id: str, actor_type: str, prefix: str, after: str | None
) -> tuple[str, str, str]:
    """Bounds of :meth:`StateStore.list_metas` on :func:`meta_sort_key`: a row is listed
    when ``low <= sort_key``, ``past < sort_key`` and ``sort_key < high``."""
    base = actor_key(app_id, actor_type, "", "")[: -len(KEY_SEPARATOR)]
    return base + prefix, base + (after or ""), base + prefix + KEY_MAX_CHAR


def meta_sort_key(key: str) -> str:
    """What meta rows are listed by: the key less ``||meta``, i.e. ``app||type||actor_id``
    (ids of one type share the head, so this sorts by actor id)."""
    return key[: -len(META_SUFFIX)]


def needs_binary(value: bytes) -> bool:
    """PostgreSQL's jsonb cannot hold U+0000; such values are stored as base64 like Dapr does."""
    return b"\\u0000" in value


class StateStore(abc.ABC):
    """A transactional key-value store of JSON values (as UTF-8 bytes)."""

    name: str = "abstract"

    async def open(self) -> None:  # noqa: B027 - optional hook
        """Connect and create the schema if needed."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections and files."""

    @abc.abstractmethod
    async def get(self, key: str) -> bytes | None:
        """The value of ``key``, or ``None`` when absent."""

    async def get_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        """The values of those ``keys`` that are present (one read where the store can)."""
        values = {key: await self.get(key) for key in keys}
        return {key: value for key, value in values.items() if value is not None}

    @abc.abstractmethod
    async def transact(self, tx: Transaction) -> None:
        """Apply every upsert and delete in one transaction; raise StoreUnavailable if down."""

    @abc.abstractmethod
    async def list_metas(
        self, app_id: str, actor_type: str, prefix: str, after: str | None, limit: int
    ) -> list[tuple[str, bytes]]:
        """Up to ``limit`` ``(actor_id, value)`` of the ``meta`` rows of ``actor_type``'s
        actors whose id starts with ``prefix`` and sorts after ``after`` (``None``: from
        the first), in actor id order (code points, like Python's ``<``).

        The one read that is not a key: ``GET /queues`` and the per-queue gauges list
        queues from it without activating their actors. Actor id order is not key order
        (``||`` sorts after every id character, so ``a-b||meta`` precedes ``a||meta``):
        stores keep an index of their meta rows by actor id (:func:`meta_sort_key`).
        """

    @abc.abstractmethod
    async def ping(self) -> None:
        """Raise :class:`StoreUnavailable` unless the store answers now."""

    @abc.abstractmethod
    def describe(self) -> str:
        """Where the state lives, for the start-up log line (never a password)."""

    async def __aenter__(self) -> StateStore:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def redact(url: str) -> str:
    """A connection URL without its password, for logs."""
    if "://" in url and "@" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}"
    return url


def json_bytes(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


__all__ = [
    "StateStore",
    "StoreUnavailable",
    "Transaction",
    "actor_key",
    "call_deadline",
    "json_bytes",
    "meta_range",
    "meta_sort_key",
    "needs_binary",
    "redact",
    "time_left",
]
