"""Optional API keys: each key may use some operations on queues under some id prefixes.

Configured with ``PUSHPOP_API_KEYS`` (JSON) or ``PUSHPOP_API_KEYS_FILE`` (a JSON file):

    [{"key": "s3cret", "prefixes": ["orders-"], "operations": ["push", "pop"]},
     {"key": "ops-key", "prefixes": [""], "operations": ["push", "pop", "admin"]}]

``push`` allows push; ``pop`` allows pop and the lock operations (acknowledge,
extend, release, dead-letter); ``admin`` allows stats and purge, and ``/metrics``
when ``PUSHPOP_PROTECT_METRICS=1``. Keys are kept only as SHA-256 digests and every
presented key is compared with all of them in constant time, so neither the
comparison nor the log gives a key away. The key travels as ``Authorization:
Bearer <key>`` or ``X-API-Key: <key>``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from pathlib import Path

from actor_service.errors import Forbidden, Unauthenticated
from api.settings import Settings
from api.wording import quoted

OPERATIONS = ("push", "pop", "admin")
# what each operation allows, in the API's words (for 403 messages)
NEEDS = {
    "push": "pushes",
    "pop": "pops and the lock endpoints (acknowledge, extend-lock, release, dead-letter)",
    "admin": "the admin endpoints (statistics, purge, repair, queue settings, listing) and, "
    "when protected, /metrics",
}

# which operation each actor method needs
METHOD_OPERATION = {
    "Push": "push",
    "Pop": "pop",
    "PopWithAck": "pop",
    "Acknowledge": "pop",
    "ExtendLock": "pop",
    "Release": "pop",
    "DeadLetter": "pop",
    "Stats": "admin",
    "Purge": "admin",
    "Repair": "admin",
    "GetSettings": "admin",
    "PutSettings": "admin",
    "Redrive": "admin",
    "Peek": "admin",
}


@dataclass(frozen=True)
class Grant:
    digest: bytes
    name: str  # a non-secret label for logs: the digest's first hex digits
    prefixes: tuple[str, ...]
    operations: frozenset[str]


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


class KeyRing:
    def __init__(self, grants: list[Grant]) -> None:
        self.grants = grants

    @property
    def enabled(self) -> bool:
        return bool(self.grants)

    @classmethod
    def from_settings(cls, settings: Settings) -> KeyRing:
        raw = settings.api_keys.strip()
        path = settings.api_keys_file.strip()
        if path:
            raw = Path(path).read_text()
        return cls.parse(raw) if raw else cls([])

    @classmethod
    def parse(cls, raw: str) -> KeyRing:
        try:
            entries = json.loads(raw)
        except ValueError as exc:
            raise ValueError(f"API keys are not valid JSON: {exc}") from None
        if not isinstance(entries, list):
            raise ValueError("API keys must be a JSON list of {key, prefixes, operations}")
        grants = []
        for i, e in enumerate(entries):
            key = e.get("key") if isinstance(e, dict) else None
            if not isinstance(key, str) or len(key) < 8:
                raise ValueError(f"API key #{i}: 'key' must be a string of at least 8 characters")
            ops = frozenset(e.get("operations", OPERATIONS))
            if not ops <= set(OPERATIONS):
                raise ValueError(f"API key #{i}: operations must be among {OPERATIONS}")
            prefixes = tuple(e.get("prefixes", [""]))
            digest = _digest(key)
            grants.append(Grant(digest, digest.hex()[:8], prefixes, ops))
        return cls(grants)

    def _find(self, presented: str | None) -> Grant:
        if not presented:
            raise Unauthenticated("an API key is required: send 'Authorization: Bearer <key>'")
        digest = _digest(presented)
        found = None
        for g in self.grants:  # compare with every key: time does not depend on which matched
            if hmac.compare_digest(g.digest, digest):
                found = g
        if found is None:
            raise Unauthenticated("the API key is not valid")
        return found

    def check(self, presented: str | None, queue_id: str | None, operation: str) -> None:
        """Raise 401 (no or unknown key) or 403 (key not allowed here); no-op when disabled."""
        if not self.enabled:
            return
        grant = self._find(presented)
        if operation not in grant.operations:
            raise Forbidden(
                f"this API key lacks the {operation} permission, which {NEEDS[operation]} need"
            )
        if queue_id is not None and not any(queue_id.startswith(p) for p in grant.prefixes):
            raise Forbidden(
                f"this API key may not use the queue {quoted(queue_id)}: its id starts with "
                "none of the key's prefixes"
            )

    def check_headers(self, headers: object, queue_id: str | None, operation: str) -> None:
        """:meth:`check` with the key ``headers`` present; without keys configured, the
        headers are not even read."""
        if self.grants:
            self.check(presented_key(headers), queue_id, operation)


def presented_key(headers: object) -> str | None:
    get = headers.get  # type: ignore[attr-defined]
    auth = get("authorization")
    if auth and auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return get("x-api-key")
