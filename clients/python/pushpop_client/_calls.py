"""The API's requests without I/O: what to send, how to read the answer, when resending is safe.

:class:`~pushpop_client.Client` and :class:`~pushpop_client.AsyncClient` only run these,
so both speak the same protocol and retry by the same rules (``Call.retry``): ``ALWAYS``
(harmless twice: reads, settings, purge, extend-lock, pushes with their key),
``IF_NOT_DONE`` (only when the request cannot have reached the server, or the answer's
code says nothing was done: ``NOTHING_DONE_CODES``) and ``NEVER`` (probes).
"""

from __future__ import annotations

import enum
import random
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx

from . import errors
from .models import (
    DeadLetterResult,
    ExtendResult,
    Health,
    JsonObject,
    Message,
    PopResult,
    PushResult,
    QueueSettings,
    QueuesPage,
    QueueStats,
    RedriveResult,
)

T = TypeVar("T")


class Retry(enum.Enum):
    ALWAYS = "always"
    IF_NOT_DONE = "if_not_done"
    NEVER = "never"


class Unset(enum.Enum):
    """The type of :data:`UNSET`: a settings field left as it is (``None`` resets it)."""

    UNSET = "unset"


UNSET = Unset.UNSET

# transport errors raised before a byte of the request left: the server saw nothing
UNSENT_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)

PushEntry = Mapping[str, Any] | tuple[Any, ...]


@dataclass(frozen=True)
class Call(Generic[T]):
    """One API request: method, path, query, JSON body, headers, retry rule, answer reader."""

    method: str
    path: str
    read: Callable[[httpx.Response], T]
    retry: Retry
    params: dict[str, str | int] = field(default_factory=dict)
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    extra_timeout: float = 0.0  # a long-poll pop waits this long before answering


@dataclass(frozen=True)
class RetryPolicy:
    """Capped exponential backoff with jitter; ``Retry-After`` is honoured (up to ``max_delay``).

    ``attempts`` counts every send, the first included (1: never retry).
    """

    attempts: int = 10
    base_delay: float = 0.2
    max_backoff: float = 5.0
    max_delay: float = 60.0

    def backoff(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before send number ``attempt + 2``."""
        ceiling = min(self.max_backoff, self.base_delay * 2.0**attempt)
        wait = ceiling * random.uniform(0.5, 1.0)
        if retry_after is not None:
            wait = max(wait, retry_after)
        return min(wait, self.max_delay)


@dataclass(frozen=True)
class Wait:
    """The outcome "send it again after ``seconds``"."""

    seconds: float


def outcome(
    call: Call[T], policy: RetryPolicy, attempt: int, answer: httpx.Response | httpx.TransportError
) -> T | Wait:
    """What the answer to send number ``attempt + 1`` means: the result, a wait before the
    next send, or an exception (raised)."""
    last = attempt + 1 >= policy.attempts or call.retry is Retry.NEVER
    if isinstance(answer, httpx.TransportError):
        unsent = isinstance(answer, UNSENT_ERRORS)
        if last or not (unsent or call.retry is Retry.ALWAYS):
            raise errors.ConnectionFailedError(
                f"{call.method} {call.path}: {answer.__class__.__name__}: {answer}"
                + ("" if unsent or call.retry is Retry.ALWAYS else " (not retried: not safe)")
            ) from answer
        return Wait(policy.backoff(attempt))
    if answer.status_code < 300:
        return call.read(answer)
    exc = error_of(answer)
    safe = call.retry is Retry.ALWAYS or exc.code in errors.NOTHING_DONE_CODES
    if last or not isinstance(exc, errors.RetryableError) or not safe:
        raise exc
    return Wait(policy.backoff(attempt, exc.retry_after))


def error_of(r: httpx.Response) -> errors.PushpopError:
    retry_after: float | None = None
    try:
        retry_after = float(r.headers["retry-after"])
    except (KeyError, ValueError):
        pass
    code: str | None = None
    message = r.text[:500] or r.reason_phrase
    try:
        err = r.json()["error"]
        code, message = str(err["code"]), str(err["message"])
    except (ValueError, KeyError, TypeError):
        pass
    return errors.error_from_answer(r.status_code, code, message, retry_after)


def _q(queue: str) -> str:
    return "/queue/" + quote(queue, safe=":")


def _json(r: httpx.Response) -> JsonObject:
    body = r.json()
    if not isinstance(body, dict):
        raise errors.PushpopError(
            f"answer is not a JSON object: {r.text[:200]}", status=r.status_code
        )
    return body


def _field(name: str) -> Callable[[httpx.Response], Any]:
    return lambda r: _json(r)[name]


def entry(e: PushEntry) -> JsonObject:
    """A push entry from ``{"item", "priority"?, "delay_seconds"?}`` or
    ``(item[, priority[, delay_seconds]])``; ``None`` fields are left out."""
    if isinstance(e, tuple):
        if not 1 <= len(e) <= 3:
            raise ValueError(f"a push tuple is (item[, priority[, delay_seconds]]), got {e!r}")
        e = dict(zip(("item", "priority", "delay_seconds"), e, strict=False))
    if "item" not in e:
        raise ValueError(f"a push entry needs an 'item' key: {e!r}")
    return {k: v for k, v in e.items() if v is not None}


def _read_push(r: httpx.Response) -> PushResult:
    replayed = r.headers.get("idempotent-replayed", "").lower() == "true"
    return PushResult.from_json(_json(r), replayed=replayed)


def _push(queue: str, body: JsonObject, idempotency_key: str | None) -> Call[PushResult]:
    key = idempotency_key or uuid.uuid4().hex  # one key for every send of this push
    return Call(
        "POST", _q(queue) + "/push", _read_push, Retry.ALWAYS,
        body=body, headers={"Idempotency-Key": key},
    )  # fmt: skip


def push_many(
    queue: str, entries: Iterable[PushEntry], idempotency_key: str | None = None
) -> Call[PushResult]:
    return _push(queue, {"items": [entry(e) for e in entries]}, idempotency_key)


def push(
    queue: str,
    item: JsonObject,
    priority: int | None,
    delay_seconds: int | None,
    idempotency_key: str | None,
) -> Call[PushResult]:
    one = entry({"item": item, "priority": priority, "delay_seconds": delay_seconds})
    return _push(queue, one, idempotency_key)


def pop(
    queue: str,
    depth: int,
    require_ack: bool,
    ttl_seconds: int | None,
    wait_seconds: int | None,
    idempotency_key: str | None = None,
) -> Call[PopResult]:
    params: dict[str, str | int] = {"depth": depth}
    if require_ack:
        params["require_ack"] = "true"
    if ttl_seconds is not None:
        params["ttl_seconds"] = ttl_seconds
    if wait_seconds is not None:
        params["wait_seconds"] = wait_seconds
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
    return Call(
        "POST", _q(queue) + "/pop", lambda r: PopResult.from_json(_json(r)),
        Retry.ALWAYS if idempotency_key else Retry.IF_NOT_DONE,
        params=params, headers=headers, extra_timeout=float(wait_seconds or 0),
    )  # fmt: skip


def _lock_call(
    queue: str, op: str, lock_id: str, read: Callable[[httpx.Response], T], retry: Retry,
    **extra: int | None,
) -> Call[T]:  # fmt: skip
    body: JsonObject = {"lock_id": lock_id}
    body.update({k: v for k, v in extra.items() if v is not None})
    return Call("POST", f"{_q(queue)}/{op}", read, retry, body=body)


def acknowledge(queue: str, lock_id: str) -> Call[int]:
    return _lock_call(queue, "acknowledge", lock_id, _field("acknowledged"), Retry.IF_NOT_DONE)


def release(queue: str, lock_id: str, delay_seconds: int | None) -> Call[int]:
    return _lock_call(
        queue, "release", lock_id, _field("released"), Retry.IF_NOT_DONE,
        delay_seconds=delay_seconds,
    )  # fmt: skip


def extend_lock(queue: str, lock_id: str, additional_ttl_seconds: int | None) -> Call[ExtendResult]:
    return _lock_call(
        queue, "extend-lock", lock_id, lambda r: ExtendResult.from_json(_json(r)), Retry.ALWAYS,
        additional_ttl_seconds=additional_ttl_seconds,
    )  # fmt: skip


def dead_letter(queue: str, lock_id: str) -> Call[DeadLetterResult]:
    return _lock_call(
        queue, "dead-letter", lock_id, lambda r: DeadLetterResult.from_json(_json(r)),
        Retry.IF_NOT_DONE,
    )  # fmt: skip


def stats(queue: str) -> Call[QueueStats]:
    return Call("GET", _q(queue), lambda r: QueueStats.from_json(_json(r)), Retry.ALWAYS)


def purge(queue: str) -> Call[int]:
    return Call("DELETE", _q(queue), _field("purged"), Retry.ALWAYS)


def peek(queue: str, limit: int | None) -> Call[list[Message]]:
    params: dict[str, str | int] = {} if limit is None else {"limit": limit}
    return Call(
        "GET", _q(queue) + "/items",
        lambda r: [Message.from_json(m) for m in _json(r)["items"]], Retry.ALWAYS, params=params,
    )  # fmt: skip


def queues(prefix: str | None, limit: int | None, after: str | None) -> Call[QueuesPage]:
    given = {"prefix": prefix, "limit": limit, "after": after}
    params: dict[str, str | int] = {k: v for k, v in given.items() if v is not None}
    return Call(
        "GET", "/queues", lambda r: QueuesPage.from_json(_json(r)), Retry.ALWAYS, params=params
    )


def _read_settings(r: httpx.Response) -> QueueSettings:
    return QueueSettings.from_json(_json(r))


def get_settings(queue: str) -> Call[QueueSettings]:
    return Call("GET", _q(queue) + "/settings", _read_settings, Retry.ALWAYS)


def set_settings(
    queue: str, max_deliveries: int | Unset | None, dead_letter_queue: str | Unset | None
) -> Call[QueueSettings]:
    given = {"max_deliveries": max_deliveries, "dead_letter_queue": dead_letter_queue}
    body = {k: v for k, v in given.items() if v is not UNSET}
    return Call("PUT", _q(queue) + "/settings", _read_settings, Retry.ALWAYS, body=body)


def redrive(queue: str, to: str | None, limit: int | None) -> Call[RedriveResult]:
    given = {"to": to, "limit": limit}
    body = {k: v for k, v in given.items() if v is not None}
    return Call(
        "POST", _q(queue) + "/redrive", lambda r: RedriveResult.from_json(_json(r)),
        Retry.IF_NOT_DONE, body=body,
    )  # fmt: skip


def probe(path: str) -> Call[Health]:
    return Call("GET", path, lambda r: Health.from_json(_json(r)), Retry.NEVER)
