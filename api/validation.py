"""Strict parsing of requests into plain values, with the error codes of docs/api.md.

Hand-written rather than left to pydantic/FastAPI because the contract wants a
specific code per field (``INVALID_PRIORITY``, ``INVALID_DEPTH`` ...), rejects
booleans and floats where an integer is due, measures item size as stored, and
must never answer FastAPI's default 422.

A body is decoded by msgspec when its value is certainly the one the standard library
gives (see :func:`parse_json`); anything else, every error included, takes the
standard library's path, whose messages the contract's tests pin.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from typing import Any

import msgspec

from actor_service.errors import InvalidRequest, ItemTooLarge
from actor_service.serializer import EncodedItem, dumps
from api.wording import describe, names, quoted

QUEUE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
DIGITS = re.compile(r"[0-9]{1,10}")
DEAD_LETTER_SUFFIX = "-deadletter"
MAX_PRIORITY = 2**31 - 1
MAX_PUSH = 1000
MAX_DEPTH = 100
MAX_TTL = 3600
DEFAULT_PRIORITY = 1
DEFAULT_TTL = 30
# What each endpoint takes, keyed by the actor method its route calls (the key its route
# passes to ``guard``; ``ListQueues`` for ``GET /queues``, ``Health``/``Ready``): a query
# parameter or body field not listed is a typo, answered 400 naming it, never ignored.
# When an endpoint gains a parameter or field, add its name here. An endpoint missing from
# QUERY_PARAMS has its query left unchecked.
QUERY_PARAMS: dict[str, frozenset[str]] = {
    "Push": frozenset(),
    "Pop": frozenset({"depth", "require_ack", "ttl_seconds", "wait_seconds"}),
    "Acknowledge": frozenset(),
    "ExtendLock": frozenset(),
    "Release": frozenset(),
    "DeadLetter": frozenset(),
    "Stats": frozenset(),
    "Purge": frozenset(),
    "Repair": frozenset(),
    "GetSettings": frozenset(),
    "PutSettings": frozenset(),
    "Redrive": frozenset(),
    "Peek": frozenset({"limit"}),
    "ListQueues": frozenset({"prefix", "limit", "after"}),
    "Health": frozenset(),
    "Ready": frozenset(),
}
BODY_FIELDS: dict[str, frozenset[str]] = {
    "Push": frozenset({"item", "priority", "delay_seconds"}),  # the single form; each of items
    "PushBulk": frozenset({"items"}),
    "Acknowledge": frozenset({"lock_id"}),
    "ExtendLock": frozenset({"lock_id", "additional_ttl_seconds"}),
    "Release": frozenset({"lock_id", "delay_seconds"}),
    "DeadLetter": frozenset({"lock_id"}),
    "PutSettings": frozenset({"max_deliveries", "dead_letter_queue"}),
    "Redrive": frozenset({"to", "limit"}),
}

# Deeper items could not be serialised back by the actor (Python's recursion limit sits
# near 1000 frames, some already used by the call); real payloads stay far below this.
MAX_NESTING = 128


def queue_id(value: str) -> str:
    """1-128 allowed characters, a dead-letter queue's name (``{id}-deadletter``) too: the
    contract has no exception, and one let ids of any length through as suffix chains.
    The dead-letter route refuses a move whose target would be longer (see routes.py)."""
    if not QUEUE_ID.fullmatch(value):
        raise InvalidRequest(
            "INVALID_QUEUE_ID",
            "queue_id must be 1-128 characters of A-Z a-z 0-9 . _ : -",
        )
    return value


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        dup = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
        raise ValueError(f"duplicate key {quoted(dup)} in a JSON object")
    return obj


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:40]} is out of range")
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


_decode = msgspec.json.Decoder().decode
_encode = msgspec.json.Encoder().encode
_SLOW: Any = object()  # _fast_json's "ask the standard library"


def _fast_json(body: bytes) -> Any:
    """``body``'s value when msgspec's decoding is certainly :func:`_slow_json`'s, else
    ``_SLOW``. msgspec refuses what the standard library refuses (invalid UTF-8, NaN,
    numbers out of range, 4301-digit integers) and gives the same values otherwise, bar
    two cases: it keeps a duplicate key's last value, and it refuses lone surrogates.
    Those fall back. Duplicates are ruled out by counting colons: the body has one per
    key plus those inside strings (raw, or escaped as ``\\u003a``); the value encoded
    again has one per key it kept plus those inside its strings. A dropped duplicate
    leaves the body with more (an over-counted escape only sends a body the slow way).
    Deep bodies go the slow way too: the standard library's recursion limit decides."""
    if _deep(body):
        return _SLOW
    try:
        value = _decode(body)
        again = _encode(value)
    except Exception:  # whatever it is, the standard library says it in the contract's words
        return _SLOW
    colons = body.count(b":")
    if b"\\" in body:
        colons += body.count(b"\\u003a") + body.count(b"\\u003A")
    return value if colons == again.count(b":") else _SLOW


def _deep(body: bytes) -> bool:
    """Whether ``body`` may nest deeper than :data:`MAX_NESTING` (it has more brackets)."""
    return body.count(b"{") + body.count(b"[") > MAX_NESTING


def parse_json(body: bytes) -> Any:
    """Decode a request body; anything that is not exactly one valid JSON value is 400."""
    value = _fast_json(body)
    return _slow_json(body) if value is _SLOW else value


def _slow_json(body: bytes) -> Any:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidRequest(
            "MALFORMED_JSON", f"body is not valid UTF-8 (byte {exc.start})"
        ) from exc
    try:
        return json.loads(
            text,
            object_pairs_hook=_no_duplicates,
            parse_float=_finite,
            parse_constant=_no_constant,
        )
    except RecursionError as exc:
        raise InvalidRequest("MALFORMED_JSON", "body is nested too deeply") from exc
    except ValueError as exc:  # JSONDecodeError is a ValueError
        raise InvalidRequest("MALFORMED_JSON", f"body is not valid JSON: {exc}") from exc


def query_params(pairs: list[tuple[str, str]], endpoint: str) -> None:
    """400 INVALID_PARAMETER for a name ``endpoint`` does not take, or one given twice
    (``depth=1&depth=5``: which one was meant?). ``pairs``: the query as sent, in order."""
    allowed = QUERY_PARAMS.get(endpoint)
    if allowed is None:
        return
    seen: set[str] = set()
    for name, _ in pairs:
        if name not in allowed:
            takes = f"takes {names(allowed)}" if allowed else "takes no query parameters"
            raise InvalidRequest(
                "INVALID_PARAMETER",
                f"unknown query parameter {quoted(name)}: this endpoint {takes}",
            )
        if name in seen:
            raise InvalidRequest(
                "INVALID_PARAMETER", f"query parameter {name} is given more than once; give it once"
            )
        seen.add(name)


def known_fields(
    data: dict[str, Any], endpoint: str, where: str = "the body", code: str = "INVALID_REQUEST"
) -> None:
    """400 ``code`` naming the first field of ``data`` that ``endpoint`` does not take."""
    allowed = BODY_FIELDS[endpoint]
    if data.keys() <= allowed:
        return
    for name in data:
        if name not in allowed:
            raise InvalidRequest(
                code, f"{where} has an unknown field {quoted(name)}; it takes {names(allowed)}"
            )


def json_object(body: bytes) -> dict[str, Any]:
    data = parse_json(body)
    if not isinstance(data, dict):
        raise InvalidRequest("MALFORMED_JSON", "request body must be a JSON object")
    return data


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def priority(value: Any, where: str) -> int:
    """An entry's priority; absent is the default, ``null`` is refused like any non-integer."""
    if not _int(value) or not 0 <= value <= MAX_PRIORITY:
        raise InvalidRequest(
            "INVALID_PRIORITY",
            f"{where}priority must be an integer from 0 to {MAX_PRIORITY}, got {describe(value)}",
        )
    return value


def _utf8(text: str) -> bool:
    """False for strings holding lone surrogates (JSON ``"\\ud800"``): not storable text."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def nesting_within(value: Any, limit: int) -> bool:
    """Whether ``value`` nests at most ``limit`` arrays/objects deep (iteratively: no
    recursion limit to hit on the way)."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node
        for child in children:
            if isinstance(child, dict | list):
                if depth >= limit:
                    return False
                stack.append((child, depth + 1))
    return True


def item(value: Any, where: str, max_bytes: int, check_nesting: bool = True) -> dict[str, Any]:
    """``check_nesting=False`` when the caller knows the body cannot nest that deep."""
    if not isinstance(value, dict):
        raise InvalidRequest(
            "INVALID_ITEM", f"{where}item must be a JSON object, got {describe(value)}"
        )
    if check_nesting and not nesting_within(value, MAX_NESTING):
        raise InvalidRequest(
            "INVALID_ITEM", f"{where}item nests deeper than {MAX_NESTING} arrays/objects"
        )
    try:
        encoded = dumps(value)
    except UnicodeEncodeError as exc:
        raise InvalidRequest("INVALID_ITEM", f"{where}item holds an unpaired surrogate") from exc
    except ValueError as exc:
        raise InvalidRequest("INVALID_ITEM", f"{where}item is not storable JSON: {exc}") from exc
    if len(encoded) > max_bytes:
        raise ItemTooLarge(
            f"{where}item is {len(encoded)} bytes serialized; the limit is {max_bytes}"
        )
    return EncodedItem(value, encoded)  # the save writes these bytes (SegmentEncoder)


def push_body(body: bytes, max_item_bytes: int) -> list[dict[str, Any]]:
    """``{"items": [...]}`` or ``{"item": ..., "priority": ...}`` -> list of entries, each
    item an :class:`EncodedItem` (its bytes measured here are the ones stored)."""
    # no item can nest deeper than the body has brackets: skip the walk when few
    deep = _deep(body)
    data = json_object(body)
    bulk = "items" in data
    if bulk and "item" in data:
        raise InvalidRequest(
            "INVALID_REQUEST",
            "the body has both item (one item) and items (a list of them); send one form",
        )
    if bulk:
        known_fields(data, "PushBulk")
        entries = data["items"]
        if not isinstance(entries, list):
            raise InvalidRequest("NO_ITEMS", "items must be a list of {item, priority} objects")
        if not entries:
            raise InvalidRequest("NO_ITEMS", f"items must hold 1 to {MAX_PUSH} entries, got 0")
        if len(entries) > MAX_PUSH:
            raise InvalidRequest(
                "TOO_MANY_ITEMS", f"items must hold 1 to {MAX_PUSH} entries, got {len(entries)}"
            )
    elif "item" in data:
        known_fields(data, "Push")
        entries = [data]
    else:
        raise InvalidRequest("NO_ITEMS", "body must have 'item' (single) or 'items' (bulk)")
    out = []
    for i, entry in enumerate(entries):
        where = f"items[{i}]." if bulk else ""
        if not isinstance(entry, dict):
            raise InvalidRequest(
                "INVALID_ITEM", f"items[{i}] must be an object with item, got {describe(entry)}"
            )
        if "item" not in entry:
            raise InvalidRequest("INVALID_ITEM", f"items[{i}] has no item (the object to queue)")
        if bulk:
            known_fields(entry, "Push", f"items[{i}]")
        parsed = {
            "item": item(entry["item"], where, max_item_bytes, check_nesting=deep),
            "priority": priority(entry["priority"], where)
            if "priority" in entry
            else DEFAULT_PRIORITY,
        }
        if "delay_seconds" in entry:
            delay = delay_value(entry, f"{where}delay_seconds")
            if delay:
                parsed["delay_seconds"] = delay
        out.append(parsed)
    return out


def fingerprint(entries: list[dict[str, Any]]) -> str:
    """SHA-256 of ``dumps(entries)``, the push as parsed (a retry's formatting does not
    matter), built from the bytes its items carry (:func:`item`) rather than encoded again."""
    parts = []
    for entry in entries:
        value = entry["item"]
        raw = value.json if type(value) is EncodedItem else None
        if raw is None:
            return hashlib.sha256(dumps(entries)).hexdigest()
        delay = entry.get("delay_seconds")
        tail = b"" if delay is None else b',"delay_seconds":%d' % delay
        parts.append(b'{"item":%b,"priority":%d%b}' % (raw, entry["priority"], tail))
    return hashlib.sha256(b"[%b]" % b",".join(parts)).hexdigest()


def int_param(raw: str | None, name: str, code: str, lo: int, hi: int, default: int) -> int:
    if raw is None:
        return default
    if not DIGITS.fullmatch(raw) or not lo <= int(raw) <= hi:
        raise InvalidRequest(
            code, f"{name} must be an integer from {lo} to {hi}, got {quoted(raw)}"
        )
    return int(raw)


def bool_param(raw: str | None, name: str) -> bool:
    if raw is None or raw == "false":
        return False
    if raw == "true":
        return True
    raise InvalidRequest("INVALID_PARAMETER", f"{name} must be true or false, got {quoted(raw)}")


def lock_body(body: bytes, endpoint: str = "Acknowledge") -> dict[str, Any]:
    data = json_object(body)
    known_fields(data, endpoint)
    lock_id = data.get("lock_id")
    if not isinstance(lock_id, str) or not 1 <= len(lock_id) <= 128 or not _utf8(lock_id):
        got = f"got {describe(lock_id)}" if "lock_id" in data else "the body has none"
        raise InvalidRequest(
            "INVALID_LOCK_ID", f"lock_id must be a string of 1-128 characters; {got}"
        )
    return data


def ttl_value(value: Any, name: str) -> int:
    if not _int(value) or not 1 <= value <= MAX_TTL:
        raise InvalidRequest(
            "INVALID_TTL", f"{name} must be an integer from 1 to {MAX_TTL}, got {describe(value)}"
        )
    return value


MAX_DELAY = 86_400
MAX_DELIVERIES = 1000
MAX_REDRIVE = 10_000
IDEMPOTENCY_KEY = re.compile(r"[\x20-\x7e]{1,255}")


def delay_value(body: dict[str, Any], name: str) -> int:
    """``delay_seconds`` of ``body``: an integer from 0 to 86400 (absent: 0; null is not
    an integer)."""
    if "delay_seconds" not in body:
        return 0
    value = body["delay_seconds"]
    if not _int(value) or not 0 <= value <= MAX_DELAY:
        raise InvalidRequest(
            "INVALID_DELAY",
            f"{name} must be an integer from 0 to {MAX_DELAY}, got {describe(value)}",
        )
    return int(value)


def header(scope: dict[str, Any], name: bytes) -> str | None:
    """The first ``name`` header (lower case) of an ASGI request, as Starlette's
    ``request.headers.get`` reads it (latin-1), in one pass over the raw list."""
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


def idempotency_key(raw: str | None) -> str | None:
    """The ``Idempotency-Key`` header: 1-255 printable ASCII characters, or absent."""
    if raw is None:
        return None
    if not IDEMPOTENCY_KEY.fullmatch(raw):
        raise InvalidRequest(
            "INVALID_IDEMPOTENCY_KEY",
            f"Idempotency-Key must be 1-255 printable ASCII characters, got {len(raw)} "
            "characters" + ("" if raw.isascii() else " with some outside ASCII"),
        )
    return raw


def settings_body(body: bytes) -> dict[str, Any]:
    """``PUT /queue/{id}/settings``: any of max_deliveries (1-1000 or null) and
    dead_letter_queue (a queue id or null); anything else is 400 INVALID_SETTINGS."""
    data = json_object(body)
    known_fields(data, "PutSettings", code="INVALID_SETTINGS")
    if "max_deliveries" in data:
        md = data["max_deliveries"]
        if md is not None and (not _int(md) or not 1 <= md <= MAX_DELIVERIES):
            raise InvalidRequest(
                "INVALID_SETTINGS",
                f"max_deliveries must be an integer from 1 to {MAX_DELIVERIES} or null, "
                f"got {describe(md)}",
            )
    if "dead_letter_queue" in data:
        dlq = data["dead_letter_queue"]
        if dlq is not None and not (isinstance(dlq, str) and QUEUE_ID.fullmatch(dlq)):
            raise InvalidRequest(
                "INVALID_SETTINGS",
                "dead_letter_queue must be a queue id (1-128 characters of A-Z a-z 0-9 . _ : -) "
                f"or null, got {describe(dlq)}",
            )
    return data


def redrive_body(body: bytes, source: str) -> tuple[str, int]:
    """``POST /queue/{id}/redrive``: ``to`` (default: the id less ``-deadletter``) and
    ``limit`` (1-10000, default 10000)."""
    data = json_object(body) if body.strip() else {}
    known_fields(data, "Redrive")
    to = data.get("to")
    if to is None:
        if not source.endswith(DEAD_LETTER_SUFFIX) or source == DEAD_LETTER_SUFFIX:
            raise InvalidRequest(
                "INVALID_REQUEST",
                f"queue {quoted(source)} is not a dead-letter queue (no {DEAD_LETTER_SUFFIX} "
                'suffix): say where to move its items with "to"',
            )
        to = source[: -len(DEAD_LETTER_SUFFIX)]
    if not isinstance(to, str) or not QUEUE_ID.fullmatch(to):
        raise InvalidRequest(
            "INVALID_QUEUE_ID", f"to must be a queue id (1-128 characters), got {describe(to)}"
        )
    if to == source:
        raise InvalidRequest("INVALID_REQUEST", "to must name another queue than this one")
    limit = data.get("limit", MAX_REDRIVE)
    if not _int(limit) or not 1 <= limit <= MAX_REDRIVE:
        raise InvalidRequest(
            "INVALID_PARAMETER",
            f"limit must be an integer from 1 to {MAX_REDRIVE}, got {describe(limit)}",
        )
    return to, int(limit)
