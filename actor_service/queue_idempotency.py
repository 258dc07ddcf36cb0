"""Idempotency keys of a queue's pushes and pops: one row per key, and a log to forget them.

A keyed call's answer and fingerprint are saved with its effect under ``k:{digest}``; the
log ``kl:{k}`` lists keys oldest first, and each keyed push forgets up to two keys older
than ``Limits.idempotency_ttl``, so kept keys stay bounded and a keyed push costs O(1) rows.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from actor_service.errors import IdempotencyKeyReused
from actor_service.queue_layout import IDEM_CHUNK, Need, Op, idem_log_key

if TYPE_CHECKING:
    from collections.abc import Generator

    from actor_service.queue_access import StateAccess


def row_key(key: str, kind: str = "push") -> str:
    """Pushes and pops keep their keys apart: one client key may name one of each."""
    return "k:" + hashlib.sha256(f"{kind}\0{key}".encode()).hexdigest()[:32]


def lookup(
    st: StateAccess, key: str, fingerprint: str, kind: str = "push"
) -> Generator[Need, Any, dict[str, Any] | None]:
    """The answer remembered for ``key``, or ``None``; the same key with another
    ``fingerprint`` (another body, other parameters) is refused."""
    rk = row_key(key, kind)
    yield from st._load([rk])
    row = st._values.get(rk)
    if (
        isinstance(row, dict)
        and row.get("key") == key
        and row.get("at", 0) > st.now - st.limits.idempotency_ttl
    ):
        if row.get("fp") != fingerprint:
            raise IdempotencyKeyReused(
                f"Idempotency-Key {key[:60]!r} was used for another {kind} on queue "
                f"{st.queue_id!r} within the last {st.limits.idempotency_ttl:g} seconds"
            )
        return row["a"]
    return None


def record(
    st: StateAccess, key: str, fingerprint: str, answer: dict[str, Any], kind: str = "push"
) -> Op:
    """Remember a keyed call's answer in this save; forget up to two expired keys."""
    rk = row_key(key, kind)
    st._set(rk, {"key": key, "fp": fingerprint, "a": answer, "at": st.now})
    head, tail = st.meta.get("ik") or (0, 0)
    log_key = idem_log_key(tail // IDEM_CHUNK)
    if tail % IDEM_CHUNK:
        yield from st._load([log_key])
    chunk = st._values.get(log_key) if tail % IDEM_CHUNK else []
    if not isinstance(chunk, list) or len(chunk) != tail % IDEM_CHUNK:
        raise st._corrupt(f"idempotency log row {log_key} does not match meta", log_key)
    st._set(log_key, [*chunk, [st.now, rk]])
    tail += 1
    for _ in range(2):
        if head >= tail:
            break
        first_key = idem_log_key(head // IDEM_CHUNK)
        yield from st._load([first_key])
        rows = st._values.get(first_key)
        if not isinstance(rows, list) or len(rows) <= head % IDEM_CHUNK:
            raise st._corrupt(f"idempotency log row {first_key} is short", first_key)
        at, old_key = rows[head % IDEM_CHUNK]
        if at > st.now - st.limits.idempotency_ttl:
            break
        yield from st._load([old_key])
        old = st._values.get(old_key)
        if isinstance(old, dict) and old.get("at") == at:  # not pushed again since
            st._delete(old_key)
        head += 1
        if head % IDEM_CHUNK == 0:
            st._delete(first_key)
    st.meta["ik"] = [head, tail]
    if head == tail:
        st._delete(idem_log_key(head // IDEM_CHUNK))
        del st.meta["ik"]
