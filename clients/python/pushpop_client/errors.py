"""The errors a pushpop server answers, one exception class per error ``code``.

:func:`error_from_answer` turns ``{"error": {"code", "message"}}`` into its code's class
(an unknown code: :class:`RetryableError` for 429/503/507, else :class:`PushpopError`), so
callers branch on classes; each carries ``status``, ``code``, ``message``, ``retry_after``.
"""

from __future__ import annotations

RETRYABLE_STATUSES = frozenset({429, 503, 507})


class PushpopError(Exception):
    """Base of every error this client raises."""

    status: int = 0
    code: str = ""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code
        self.retry_after = retry_after

    def __str__(self) -> str:
        return f"{self.status} {self.code}: {self.message}"


class ConnectionFailedError(PushpopError):
    """No answer from the server (refused, reset, timed out) after the allowed retries.

    ``status`` is 0; the transport error is the ``__cause__``.
    """

    code = "CONNECTION_FAILED"


class RetryableError(PushpopError):
    """An answer worth retrying later (429, 503, 507); the client already retried it."""


class LockError(PushpopError):
    """The lock named is gone: never existed or already ended (404), or expired (410)."""


# 400: the request is wrong; retrying it unchanged gives the same answer
class MalformedJsonError(PushpopError):
    status, code = 400, "MALFORMED_JSON"


class NoItemsError(PushpopError):
    status, code = 400, "NO_ITEMS"


class TooManyItemsError(PushpopError):
    status, code = 400, "TOO_MANY_ITEMS"


class InvalidItemError(PushpopError):
    status, code = 400, "INVALID_ITEM"


class InvalidPriorityError(PushpopError):
    status, code = 400, "INVALID_PRIORITY"


class InvalidQueueIdError(PushpopError):
    status, code = 400, "INVALID_QUEUE_ID"


class InvalidDepthError(PushpopError):
    status, code = 400, "INVALID_DEPTH"


class InvalidTtlError(PushpopError):
    status, code = 400, "INVALID_TTL"


class InvalidLockIdError(PushpopError):
    status, code = 400, "INVALID_LOCK_ID"


class LockLifetimeExceededError(PushpopError):
    status, code = 400, "LOCK_LIFETIME_EXCEEDED"


class InvalidParameterError(PushpopError):
    status, code = 400, "INVALID_PARAMETER"


class InvalidRequestError(PushpopError):
    status, code = 400, "INVALID_REQUEST"


class InvalidDelayError(PushpopError):
    status, code = 400, "INVALID_DELAY"


class InvalidIdempotencyKeyError(PushpopError):
    status, code = 400, "INVALID_IDEMPOTENCY_KEY"


class InvalidSettingsError(PushpopError):
    status, code = 400, "INVALID_SETTINGS"


class BadRequestError(PushpopError):
    status, code = 400, "BAD_REQUEST"


class UnauthenticatedError(PushpopError):
    status, code = 401, "UNAUTHENTICATED"


class ForbiddenError(PushpopError):
    status, code = 403, "FORBIDDEN"


class LockNotFoundError(LockError):
    status, code = 404, "LOCK_NOT_FOUND"


class NotFoundError(PushpopError):
    status, code = 404, "NOT_FOUND"


class MethodNotAllowedError(PushpopError):
    status, code = 405, "METHOD_NOT_ALLOWED"


class HttpError(PushpopError):
    code = "HTTP_ERROR"


class RequestTimeoutError(PushpopError):
    status, code = 408, "REQUEST_TIMEOUT"


class LockExpiredError(LockError):
    status, code = 410, "LOCK_EXPIRED"


class ItemTooLargeError(PushpopError):
    status, code = 413, "ITEM_TOO_LARGE"


class BodyTooLargeError(PushpopError):
    status, code = 413, "BODY_TOO_LARGE"


class UriTooLongError(PushpopError):
    status, code = 414, "URI_TOO_LONG"


class UnsupportedMediaTypeError(PushpopError):
    status, code = 415, "UNSUPPORTED_MEDIA_TYPE"


class IdempotencyKeyReusedError(PushpopError):
    status, code = 422, "IDEMPOTENCY_KEY_REUSED"


class QueueFullError(RetryableError):
    status, code = 429, "QUEUE_FULL"


class TooManyLocksError(RetryableError):
    status, code = 429, "TOO_MANY_LOCKS"


class HeadersTooLargeError(PushpopError):
    status, code = 431, "HEADERS_TOO_LARGE"


class StateCorruptError(PushpopError):
    status, code = 500, "STATE_CORRUPT"


class InternalError(PushpopError):
    status, code = 500, "INTERNAL"


class StoreUnavailableError(RetryableError):
    status, code = 503, "STORE_UNAVAILABLE"


class RuntimeUnavailableError(RetryableError):
    status, code = 503, "RUNTIME_UNAVAILABLE"


class OutcomeUnknownError(RetryableError):
    """The call was sent and its answer lost (Dapr mode, a sidecar that died): it may have
    been applied. Retried only with an ``Idempotency-Key`` (pushes, and pops by default)."""

    status, code = 502, "OUTCOME_UNKNOWN"


class TooManyConnectionsError(RetryableError):
    status, code = 503, "TOO_MANY_CONNECTIONS"


class ShuttingDownError(RetryableError):
    status, code = 503, "SHUTTING_DOWN"


class InsufficientStorageError(RetryableError):
    status, code = 507, "INSUFFICIENT_STORAGE"


def _registered(cls: type[PushpopError]) -> list[type[PushpopError]]:
    found: list[type[PushpopError]] = []
    for sub in cls.__subclasses__():
        if sub.code and sub is not ConnectionFailedError:
            found.append(sub)
        found.extend(_registered(sub))
    return found


BY_CODE: dict[str, type[PushpopError]] = {cls.code: cls for cls in _registered(PushpopError)}

# codes whose answer says the server did nothing: even a request that must not run twice
# (a plain pop, an acknowledge) may be sent again after one of these. OUTCOME_UNKNOWN is
# not one (the call may have run), and neither is RUNTIME_UNAVAILABLE from servers that
# predate OUTCOME_UNKNOWN, which answered it for both cases.
NOTHING_DONE_CODES = frozenset(
    {
        "QUEUE_FULL",
        "TOO_MANY_LOCKS",
        "STORE_UNAVAILABLE",
        "TOO_MANY_CONNECTIONS",
        "SHUTTING_DOWN",
        "INSUFFICIENT_STORAGE",
    }
)


def error_from_answer(
    status: int, code: str | None, message: str, retry_after: float | None
) -> PushpopError:
    """The exception for an error answer (``code`` None: the body was not the contract's)."""
    cls = BY_CODE.get(code or "")
    if cls is None:
        cls = RetryableError if status in RETRYABLE_STATUSES else PushpopError
    return cls(message, status=status, code=code or f"HTTP_{status}", retry_after=retry_after)
