"""Plain JSON for actor messages and state, in both runtimes.

The SDK's ``DefaultJSONSerializer`` decodes with ``DaprJSONDecoder``, which turns any
string that starts like a date (``"2024-01-01 ..."``) into a ``datetime`` and
strings like ``"1h"`` into ``timedelta``: user items would not round-trip. It is
also a pure-Python scanner. This serializer is the standard library's C JSON, with
NaN/Infinity refused so that every stored value is valid JSON (jsonb rejects them).
"""

from __future__ import annotations

import json
import math
from collections import OrderedDict
from collections.abc import Callable
from json.encoder import c_make_encoder, encode_basestring  # type: ignore[attr-defined]
from typing import Any

from dapr.serializers import Serializer

# one encoder for the process: ``json.dumps`` with any non-default option builds a new
# JSONEncoder per call, and ``JSONEncoder.encode`` builds a new C encoder per call; every
# request encodes several values (its save, its reply), so the C encoder is built once.
# No circular-reference check (markers None): these values come from JSON or from the
# state machine, never from a cycle, and a cycle would still end in RecursionError.
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)
_C_ENCODE = (
    c_make_encoder(None, _ENCODER.default, encode_basestring, None, ":", ",", False, False, False)
    if c_make_encoder is not None
    else None
)


def dumps(obj: Any) -> bytes:
    """Compact JSON as UTF-8; NaN and Infinity refused (ValueError)."""
    if _C_ENCODE is None:  # pragma: no cover - CPython has the C encoder
        return _ENCODER.encode(obj).encode()
    return "".join(_C_ENCODE(obj, 0)).encode()


class EncodedItem(dict):  # type: ignore[type-arg]
    """A pushed item (a plain JSON object to every reader) that carries ``dumps`` of
    itself: the gateway encoded it to measure its size, and the save of the segment it
    joins uses those bytes instead of encoding it again (:func:`encode_entry`). Items
    are never edited once pushed, so the bytes stay true; the save drops them once used.
    """

    __slots__ = ("json",)

    def __init__(self, value: dict[str, Any], encoded: bytes) -> None:
        super().__init__(value)
        self.json: bytes | None = encoded


def encode_entry(entry: list[Any]) -> bytes:
    """``dumps(entry)`` for a queued entry ``[id, item, enqueued_at]``, reusing its item's
    bytes when the gateway left them (an :class:`EncodedItem`; the bytes are dropped)."""
    if len(entry) == 3:
        n, item, at = entry
        if type(item) is EncodedItem and item.json is not None and type(n) is int:
            if type(at) is float and math.isfinite(at):
                raw, item.json = item.json, None
                return b"[%d,%b,%b]" % (n, raw, float.__repr__(at).encode())
    return dumps(entry)


class SegmentEncoder:
    """Encodes queue segments without re-encoding the entries that did not change.

    A push appends one entry to its tail segment, and the save rewrites the segment
    whole (up to ``segment_size`` entries): encoding it again was the largest single
    CPU cost of a push. Entries are immutable once made (the state machine moves them
    between lists but never edits one), so an entry's encoding can be kept for as long
    as the very same list object is in the segment. The cache holds the entry itself
    next to its bytes and checks identity, so a recycled ``id()`` can never match, and
    it is bounded (least recently written segments go first): a miss only costs the
    plain encoding.
    """

    def __init__(self, max_segments: int = 1024) -> None:
        self.max_segments = max_segments
        self._cache: OrderedDict[str, dict[int, tuple[Any, bytes]]] = OrderedDict()

    def encode(self, key: str, segment: dict[str, Any]) -> bytes:
        """``segment`` (``{"start": int, "items": [entry, ...]}``) as JSON; ``key`` names it."""
        old = self._cache.pop(key, None) or {}
        new: dict[int, tuple[Any, bytes]] = {}
        parts: list[bytes] = []
        for entry in segment["items"]:
            hit = old.get(id(entry))
            if hit is not None and hit[0] is entry:
                encoded = hit[1]
            else:
                encoded = encode_entry(entry)
            new[id(entry)] = (entry, encoded)
            parts.append(encoded)
        self._cache[key] = new
        if len(self._cache) > self.max_segments:
            self._cache.popitem(last=False)
        return b'{"start":%d,"items":[%b]}' % (segment["start"], b",".join(parts))

    def forget(self, key: str) -> None:
        self._cache.pop(key, None)


class PlainJSONSerializer(Serializer):
    def serialize(self, obj: object, custom_hook: Callable[[object], bytes] | None = None) -> bytes:
        if callable(custom_hook):
            obj = custom_hook(obj)
        if hasattr(obj, "as_dict"):  # ActorRuntimeConfig, answered at /dapr/config
            obj = obj.as_dict()
        return dumps(obj)

    def deserialize(
        self,
        data: bytes,
        data_type: type | None = object,
        custom_hook: Callable[[bytes], object] | None = None,
    ) -> Any:
        obj = json.loads(data) if data else None
        return custom_hook(obj) if callable(custom_hook) else obj
