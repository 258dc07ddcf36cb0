"""Error messages name what the client sent in the API's words, not Python's.

Each request here is refused by the real app (in process, on a real SQLite file), and
the message must say the value as JSON names it (``the string "2"``, ``null``,
``true``) and carry no Python type name or repr quoting.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_helpers import in_process

KEYS = json.dumps([
    {"key": "pusher-key-1", "prefixes": ["jobs-"], "operations": ["push"]},
])  # fmt: skip
# Python type names after "got", Python's constants anywhere, a repr-quoted string
PYTHON = re.compile(
    r"got (str|NoneType|bool|int|float|dict|list)\b|\b(NoneType|True|False|None)\b|'[^' ]*'"
)


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with in_process(tmp_path / "m.sqlite3") as c:
        yield c


def message(r: httpx.Response, status: int, code: str) -> str:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["error"]["code"] == code, body
    text = body["error"]["message"]
    assert not PYTHON.search(text), f"Python leaks into {text!r}"
    return text


@pytest.mark.parametrize(
    ("body", "code", "said"),
    [
        ({"item": {}, "priority": "2"}, "INVALID_PRIORITY",
         'priority must be an integer from 0 to 2147483647, got the string "2"'),
        ({"item": {}, "priority": True}, "INVALID_PRIORITY", "got true"),
        ({"item": {}, "priority": 2.5}, "INVALID_PRIORITY", "got the number 2.5"),
        ({"item": {}, "priority": [1]}, "INVALID_PRIORITY", "got a list"),
        ({"item": {}, "priority": None}, "INVALID_PRIORITY", "got null"),
        ({"item": None}, "INVALID_ITEM", "item must be a JSON object, got null"),
        ({"item": "text"}, "INVALID_ITEM", 'got the string "text"'),
        ({"item": False}, "INVALID_ITEM", "got false"),
        ({"items": [{"item": {}}, {"item": [1]}]}, "INVALID_ITEM",
         "items[1].item must be a JSON object, got a list"),
        ({"items": [{"item": {}}, 7]}, "INVALID_ITEM", "items[1] must be an object"),
        ({"items": [{"priority": 0}]}, "INVALID_ITEM", "items[0] has no item"),
    ],
    ids=repr,
)  # fmt: skip
async def test_push_values_in_json_words(
    client: httpx.AsyncClient, body: Any, code: str, said: str
) -> None:
    r = await client.post("/queue/m/push", json=body)
    assert said in message(r, 400, code)


async def test_duplicate_key_is_quoted_as_json(client: httpx.AsyncClient) -> None:
    r = await client.post("/queue/m/push", content=b'{"item": {"k": 1, "k": 2}}')
    assert 'duplicate key "k"' in message(r, 400, "MALFORMED_JSON")


@pytest.mark.parametrize(
    ("query", "code", "said"),
    [
        ("depth=abc", "INVALID_DEPTH", 'depth must be an integer from 1 to 100, got "abc"'),
        ("require_ack=maybe", "INVALID_PARAMETER",
         'require_ack must be true or false, got "maybe"'),
        ("require_ack=true&ttl_seconds=0", "INVALID_TTL", 'got "0"'),
    ],
)  # fmt: skip
async def test_query_values_quoted_as_sent(
    client: httpx.AsyncClient, query: str, code: str, said: str
) -> None:
    assert said in message(await client.post(f"/queue/m/pop?{query}"), 400, code)


@pytest.mark.parametrize(
    ("body", "said"),
    [
        ({"lock_id": 5}, "got the number 5"),
        ({"lock_id": None}, "got null"),
        ({"lock_id": ""}, 'got the string ""'),
        ({}, "the body has none"),
    ],
    ids=repr,
)
async def test_lock_id_in_json_words(client: httpx.AsyncClient, body: Any, said: str) -> None:
    r = await client.post("/queue/m/acknowledge", json=body)
    assert said in message(r, 400, "INVALID_LOCK_ID")


async def test_ttl_in_json_words(client: httpx.AsyncClient) -> None:
    await client.post("/queue/m/push", json={"item": {}})
    lock = (await client.post("/queue/m/pop?require_ack=true")).json()["lock_id"]
    r = await client.post(
        "/queue/m/extend-lock", json={"lock_id": lock, "additional_ttl_seconds": "9"}
    )
    assert 'got the string "9"' in message(r, 400, "INVALID_TTL")


async def test_content_encoding_quoted_as_sent(client: httpx.AsyncClient) -> None:
    r = await client.post("/queue/m/push", content=b"{}", headers={"Content-Encoding": "gzip"})
    assert 'Content-Encoding "gzip" is not supported' in message(r, 415, "UNSUPPORTED_MEDIA_TYPE")


async def test_forbidden_says_which_permission(tmp_path: Path) -> None:
    async with in_process(tmp_path / "k.sqlite3", api_keys=KEYS) as c:
        auth = {"Authorization": "Bearer pusher-key-1"}
        said = message(await c.get("/queue/jobs-1", headers=auth), 403, "FORBIDDEN")
        assert "lacks the admin permission" in said and "statistics" in said, said
        said = message(await c.post("/queue/jobs-1/pop", headers=auth), 403, "FORBIDDEN")
        assert "lacks the pop permission" in said, said
        r = await c.post("/queue/other/push", json={"item": {}}, headers=auth)
        assert 'may not use the queue "other"' in message(r, 403, "FORBIDDEN")
