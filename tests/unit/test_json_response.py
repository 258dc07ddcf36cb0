"""``api.routes.Json`` answers with the bytes and headers Starlette's JSONResponse gives.

Json builds a plain answer's headers itself (the hot routes answer with one per
request); any other answer goes through Starlette's own ``init_headers``.
"""

from __future__ import annotations

from typing import Any

import pytest
from starlette.responses import JSONResponse

from api.routes import Json


@pytest.mark.parametrize(
    "args",
    [
        ({"pushed": 1, "ids": ["0000000000000001"], "depth": 3},),
        ({"items": [{"item": {"é": "😀"}, "enqueued_at": 1765000000.125}]},),
        ({"error": {"code": "INVALID_ITEM", "message": "x"}}, 400),
        ({"a": 1}, 200, {"Idempotent-Replayed": "true"}),
        ({"a": 1}, 503, {"Retry-After": "1"}),
        ({"a": 1}, 200, {"Content-Type": "application/problem+json"}),
        ({}, 204),
        ({}, 304),
        ({}, 101),
    ],
)
def test_headers_and_body_are_starlettes(args: tuple[Any, ...]) -> None:
    ours, theirs = Json(*args), JSONResponse(*args)
    assert ours.raw_headers == theirs.raw_headers
    assert ours.body == theirs.body
    assert ours.status_code == theirs.status_code


def test_another_media_type_keeps_starlettes_headers() -> None:
    ours = Json({"a": 1}, media_type="application/x-ndjson")
    theirs = JSONResponse({"a": 1}, media_type="application/x-ndjson")
    assert ours.raw_headers == theirs.raw_headers
