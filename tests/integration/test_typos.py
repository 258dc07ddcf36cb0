"""Typos are refused, never taken silently, on the hot path and the full stack alike.

An unknown or repeated query parameter, an unknown body field, ``item`` beside ``items``
or ``require_ack=yes`` must be a 400 naming the field (``INVALID_PARAMETER`` for the
query, ``INVALID_REQUEST`` for the body). Two in-process apps on real SQLite files,
identical but for ``hot_path``, must answer alike and leave the queue unchanged.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_helpers import in_process

from api import validation as v

Q = "/queue/typo"
# (method, path, JSON body or None, code, words the message must hold)
TYPOS: list[tuple[str, str, Any, str, tuple[str, ...]]] = [
    ("POST", f"{Q}/pop?deph=5", None, "INVALID_PARAMETER", ('"deph"', "depth")),
    ("POST", f"{Q}/pop?depth=1&depth=5", None, "INVALID_PARAMETER", ("depth", "more than once")),
    ("POST", f"{Q}/pop?require_ack=true&require_ack=false", None, "INVALID_PARAMETER",
     ("require_ack",)),
    ("POST", f"{Q}/pop?require_ack=yes", None, "INVALID_PARAMETER", ("require_ack", '"yes"')),
    ("POST", f"{Q}/pop?require_ack=1", None, "INVALID_PARAMETER", ("require_ack", '"1"')),
    ("POST", f"{Q}/pop?require_ack=True", None, "INVALID_PARAMETER", ("require_ack", '"True"')),
    ("POST", f"{Q}/pop?require_ack=FALSE", None, "INVALID_PARAMETER", ("require_ack",)),
    ("POST", f"{Q}/pop?Depth=2", None, "INVALID_PARAMETER", ('"Depth"',)),
    ("POST", f"{Q}/push?priority=0", {"item": {}}, "INVALID_PARAMETER",
     ('"priority"', "no query parameters")),
    ("POST", f"{Q}/push", {"item": {"n": 9}, "prio": 3}, "INVALID_REQUEST", ('"prio"', "priority")),
    ("POST", f"{Q}/push", {"item": {"n": 9}, "items": [{"item": {"n": 10}}]}, "INVALID_REQUEST",
     ("item", "items")),
    ("POST", f"{Q}/push", {"items": [{"item": {"n": 9}, "prio": 3}]}, "INVALID_REQUEST",
     ("items[0]", '"prio"')),
    ("POST", f"{Q}/push", {"items": [{"item": {"n": 9}}], "priority": 0}, "INVALID_REQUEST",
     ('"priority"', "items")),
    ("POST", f"{Q}/acknowledge", {"lock_id": "x", "lockid": "y"}, "INVALID_REQUEST", ('"lockid"',)),
    ("POST", f"{Q}/extend-lock", {"lock_id": "x", "ttl_seconds": 5}, "INVALID_REQUEST",
     ('"ttl_seconds"', "additional_ttl_seconds")),
    ("POST", f"{Q}/release", {"lock_id": "x", "delay": 5}, "INVALID_REQUEST", ('"delay"',)),
    ("POST", f"{Q}/dead-letter", {"lock_id": "x", "to": "q"}, "INVALID_REQUEST", ('"to"',)),
    ("POST", f"{Q}/acknowledge?lock_id=x", {"lock_id": "x"}, "INVALID_PARAMETER", ('"lock_id"',)),
    ("GET", f"{Q}?verbose=1", None, "INVALID_PARAMETER", ('"verbose"',)),
    ("DELETE", f"{Q}?force=true", None, "INVALID_PARAMETER", ('"force"',)),
    ("POST", f"{Q}/repair?all=1", None, "INVALID_PARAMETER", ('"all"',)),
    ("GET", "/health?deep=1", None, "INVALID_PARAMETER", ('"deep"',)),
    ("GET", "/ready?x=", None, "INVALID_PARAMETER", ('"x"',)),
]  # fmt: skip


@pytest.fixture
async def apps(tmp_path: Path) -> AsyncIterator[dict[bool, httpx.AsyncClient]]:
    async with AsyncExitStack() as stack:
        yield {
            hot: await stack.enter_async_context(
                in_process(tmp_path / f"hot-{hot}.sqlite3", hot_path=hot)
            )
            for hot in (True, False)
        }


async def snapshot(c: httpx.AsyncClient) -> dict[str, Any]:
    r = await c.get(Q)
    assert r.status_code == 200, r.text
    return r.json()


async def test_every_typo_is_the_same_400_on_both_paths(
    apps: dict[bool, httpx.AsyncClient],
) -> None:
    for c in apps.values():
        r = await c.post(f"{Q}/push", json={"items": [{"item": {"n": 1}}, {"item": {"n": 2}}]})
        assert r.status_code == 200, r.text
    before = {hot: await snapshot(c) for hot, c in apps.items()}
    for method, path, body, code, words in TYPOS:
        got = {hot: await c.request(method, path, json=body) for hot, c in apps.items()}
        for hot, r in got.items():
            where = f"{method} {path} {body} (hot path {hot})"
            assert r.status_code == 400, f"{where}: {r.status_code} {r.text}"
            error = r.json()["error"]
            assert error["code"] == code, f"{where}: {error}"
            assert all(w in error["message"] for w in words), f"{where}: {error['message']}"
        assert got[True].json() == got[False].json(), path
    # nothing was pushed, popped or locked by any of them
    assert {hot: await snapshot(c) for hot, c in apps.items()} == before
    assert before[True]["depth"] == 2 and before[True]["locks"] == 0


@pytest.mark.parametrize(
    "query", ["require_ack=true", "require_ack=false", "depth=2&ttl_seconds=9"]
)
async def test_exact_spellings_still_work(apps: dict[bool, httpx.AsyncClient], query: str) -> None:
    for c in apps.values():
        assert (await c.post(f"{Q}/push", json={"item": {}, "priority": 0})).status_code == 200
        r = await c.post(f"{Q}/pop?{query}")
        assert r.status_code == 200 and len(r.json()["items"]) == 1, r.text
        assert ("lock_id" in r.json()) == ("require_ack=true" in query)


def test_tables_take_the_parameters_of_the_new_endpoints() -> None:
    """Long-poll pops, delayed pushes and releases, peek and the queue list are not typos."""
    v.query_params([("depth", "1"), ("wait_seconds", "5")], "Pop")
    v.query_params([("limit", "5")], "Peek")
    v.query_params([("prefix", "a"), ("limit", "5"), ("after", "a1")], "ListQueues")
    v.known_fields({"item": {}, "priority": 1, "delay_seconds": 5}, "Push")
    v.known_fields({"lock_id": "x", "delay_seconds": 5}, "Release")
    v.known_fields({"to": "q", "limit": 5}, "Redrive")
    v.known_fields({"max_deliveries": 3, "dead_letter_queue": None}, "PutSettings")
