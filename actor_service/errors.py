"""Errors that cross layers: the state machine, the actor, the runtimes and the gateway.

Each carries the HTTP status and the ``SNAKE_CASE`` code of docs/api.md, so the gateway
never guesses, and travels over the Dapr actor boundary as plain data
(``to_dict``/``from_dict``): the SDK turns exceptions into opaque 500s, losing the code.
"""

from __future__ import annotations

from typing import Any


class PushpopError(Exception):
    """Base of every error that maps to an API error body."""

    status = 500
    code = "INTERNAL"

    def __init__(self, message: str, *, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "code": self.code, "message": self.message}

    @staticmethod
    def from_dict(data: dict[str, Any]) -> PushpopError:
        cls = _BY_CODE.get(data.get("code", ""), PushpopError)
        err = cls(str(data.get("message", "")))
        if cls is PushpopError:  # unknown code: keep what the other side said
            err.status = int(data.get("status", 500))
            err.code = str(data.get("code", "INTERNAL"))
        return err


class InvalidRequest(PushpopError):
    """A 400 whose code is chosen by the validator (INVALID_ITEM, INVALID_DEPTH, ...)."""

    status = 400

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class ItemTooLarge(PushpopError):
    status = 413
    code = "ITEM_TOO_LARGE"


class BodyTooLarge(PushpopError):
    status = 413
    code = "BODY_TOO_LARGE"


class LockNotFound(PushpopError):
    status = 404
    code = "LOCK_NOT_FOUND"


class LockExpired(PushpopError):
    status = 410
    code = "LOCK_EXPIRED"


class QueueFull(PushpopError):
    status = 429
    code = "QUEUE_FULL"


class TooManyLocks(PushpopError):
    status = 429
    code = "TOO_MANY_LOCKS"


class StoreUnavailable(PushpopError):
    """The state store is down, saturated or too slow; the client should retry."""

    status = 503
    code = "STORE_UNAVAILABLE"

    def __init__(self, message: str, *, retry_after: int = 1) -> None:
        super().__init__(message, retry_after=retry_after)


class RuntimeUnavailable(PushpopError):
    """The actor runtime (the Dapr sidecar or placement) cannot be reached."""

    status = 503
    code = "RUNTIME_UNAVAILABLE"

    def __init__(self, message: str, *, retry_after: int = 1) -> None:
        super().__init__(message, retry_after=retry_after)


class IdempotencyKeyReused(PushpopError):
    """The same ``Idempotency-Key`` came with a different body."""

    status = 422
    code = "IDEMPOTENCY_KEY_REUSED"


class OutcomeUnknown(PushpopError):
    """The call was sent to the actor runtime and its answer was lost (the sidecar died
    or timed out after taking it): it may or may not have been applied. Unlike a 503,
    this does not say "nothing happened"; a retry is safe with an ``Idempotency-Key``."""

    status = 502
    code = "OUTCOME_UNKNOWN"

    def __init__(self, message: str, *, retry_after: int = 1) -> None:
        super().__init__(message, retry_after=retry_after)


class StateCorrupt(PushpopError):
    """A queue's stored rows contradict each other (meta vs. segments, a lock without its row).

    Raised instead of guessing: serving from such a state could lose or duplicate items.
    Only this queue answers 500; ``keys`` names the rows involved, for the log line and for
    the admin repair (``POST /queue/{id}/repair``).
    """

    status = 500
    code = "STATE_CORRUPT"

    def __init__(self, message: str, *, keys: list[str] | None = None) -> None:
        super().__init__(message)
        self.keys = list(keys or [])


class Unauthenticated(PushpopError):
    status = 401
    code = "UNAUTHENTICATED"


class Forbidden(PushpopError):
    status = 403
    code = "FORBIDDEN"


_BY_CODE: dict[str, type[PushpopError]] = {
    cls.code: cls
    for cls in (
        ItemTooLarge,
        BodyTooLarge,
        LockNotFound,
        LockExpired,
        QueueFull,
        TooManyLocks,
        IdempotencyKeyReused,
        OutcomeUnknown,
        StoreUnavailable,
        RuntimeUnavailable,
        StateCorrupt,
        Unauthenticated,
        Forbidden,
    )
}


class StorageFull(PushpopError):
    """The state store's disk (or its configured size cap) is full.

    507 rather than 503: retrying soon does not help until an operator frees space or
    consumers drain queues, and the message names the real cause instead of a generic
    "store unavailable". Writes that free space (purge, acknowledge, pop) still run.
    """

    status = 507
    code = "INSUFFICIENT_STORAGE"

    def __init__(self, message: str, *, retry_after: int = 30) -> None:
        super().__init__(message, retry_after=retry_after)


class UnsupportedMediaType(PushpopError):
    """A request body in an encoding the service does not decode (gzip, br, ...)."""

    status = 415
    code = "UNSUPPORTED_MEDIA_TYPE"


_BY_CODE.update({cls.code: cls for cls in (StorageFull, UnsupportedMediaType)})
