"""pushpop-client: the Python client of the pushpop priority-queue service.

``Client`` (blocking) and ``AsyncClient`` (asyncio) cover every endpoint, with typed
results and safe retries; ``Worker`` / ``AsyncWorker`` run a handler on every message of
a queue with acknowledgements, lock keep-alive, backoff and dead-lettering.
"""

from __future__ import annotations

from . import errors
from ._calls import UNSET, RetryPolicy
from .client import AsyncClient, Client
from .errors import (
    ConnectionFailedError,
    LockError,
    LockExpiredError,
    LockNotFoundError,
    OutcomeUnknownError,
    PushpopError,
    RetryableError,
)
from .models import (
    DeadLetterResult,
    ExtendResult,
    Health,
    Message,
    PopResult,
    PushResult,
    QueueSettings,
    QueuesPage,
    QueueStats,
    QueueSummary,
    RedriveResult,
)
from .worker import AsyncWorker, Worker, WorkerStats, default_backoff

__version__ = "0.1.0"
__all__ = [
    "UNSET",
    "AsyncClient",
    "AsyncWorker",
    "Client",
    "ConnectionFailedError",
    "DeadLetterResult",
    "ExtendResult",
    "Health",
    "LockError",
    "LockExpiredError",
    "LockNotFoundError",
    "Message",
    "OutcomeUnknownError",
    "PopResult",
    "PushResult",
    "PushpopError",
    "QueueSettings",
    "QueueStats",
    "QueueSummary",
    "QueuesPage",
    "RedriveResult",
    "RetryPolicy",
    "RetryableError",
    "Worker",
    "WorkerStats",
    "default_backoff",
    "errors",
]
