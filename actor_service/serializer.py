"""Plain JSON for actor messages and state, in both runtimes.

The SDK's ``DefaultJSONSerializer`` decodes with ``DaprJSONDecoder``, which turns any
string that starts like a date (``"2024-01-01 ..."``) into a ``datetime`` and
strings like ``"1h"`` into ``timedelta``: user items would not round-trip. It is
also a pure-Python scanner. This serializer is the standard library's C JSON, with
NaN/Infinity refused so that every stored value is valid JSON (jsonb rejects them).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from dapr.serializers import Serializer


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


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
