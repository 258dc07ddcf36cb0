"""The hot path (api/asgi.py) answers push and pop exactly as the full FastAPI stack.

Two real servers, identical but for ``PUSHPOP_HOT_PATH``, get the same sequence of
requests (valid ones, and every kind of bad one the routes refuse); status, JSON body
and the headers a client acts on must match, and /metrics must count the hot requests
under the same route labels.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from http_helpers import assert_alike, hot_and_full

from supervise.server import ServerProcess

KEYS = json.dumps([
    {"key": "admin-key", "prefixes": [""], "operations": ["admin", "push", "pop"]},
    {"key": "pusher-key", "prefixes": ["hp-"], "operations": ["push"]},
])  # fmt: skip
ADMIN = {"Authorization": "Bearer admin-key"}
BIG = "x" * 70_000

# typos: a 400 naming the field on both paths, never ignored (test_typos.py has more)
TYPOS: list[tuple[str, str, dict[str, str], Any]] = [
    ("POST", "/queue/hp-a/pop?deph=5", ADMIN, None),
    ("POST", "/queue/hp-a/pop?depth=1&depth=2", ADMIN, None),
    ("POST", "/queue/hp-a/pop?require_ack=yes", ADMIN, None),
    ("POST", "/queue/hp-a/pop?require_ack=1", ADMIN, None),
    ("POST", "/queue/hp-a/pop?require_ack=True", ADMIN, None),
    ("POST", "/queue/hp-a/push?depth=1", ADMIN, {"item": {"n": 9}}),
    ("POST", "/queue/hp-a/push", ADMIN, {"item": {"n": 9}, "prio": 3}),
    ("POST", "/queue/hp-a/push", ADMIN, {"item": {"n": 9}, "items": [{"item": {"n": 9}}]}),
    ("POST", "/queue/hp-a/push", ADMIN, {"items": [{"item": {"n": 9}, "prio": 3}]}),
]
# (method, path, headers, body): body is bytes, or JSON-able
REQUESTS: list[tuple[str, str, dict[str, str], Any]] = [
    ("POST", "/queue/hp-a/push", ADMIN, {"item": {"n": 1}, "priority": 2}),
    (
        "POST",
        "/queue/hp-a/push",
        ADMIN,
        {"items": [{"item": {"n": 2}}, {"item": {"n": 3}, "priority": 0}]},
    ),
    ("POST", "/queue/hp-a/push", ADMIN, {"item": {"n": 4}, "priority": -1}),
    ("POST", "/queue/hp-a/push", ADMIN, {"item": [1, 2]}),
    ("POST", "/queue/hp-a/push", ADMIN, {"item": {"big": BIG}}),
    ("POST", "/queue/hp-a/push", ADMIN, {"items": []}),
    ("POST", "/queue/hp-a/push", ADMIN, b"{not json"),
    ("POST", "/queue/hp-a/push", ADMIN, b""),
    ("POST", "/queue/hp-a/push", {**ADMIN, "Content-Encoding": "gzip"}, {"item": {}}),
    ("POST", "/queue/hp-a/push", {}, {"item": {}}),
    ("POST", "/queue/hp-a/push", {"Authorization": "Bearer nope"}, {"item": {}}),
    ("POST", "/queue/other/push", {"Authorization": "Bearer pusher-key"}, {"item": {}}),
    ("POST", "/queue/hp-a/pop", {"Authorization": "Bearer pusher-key"}, None),
    ("POST", "/queue/bad%20id/push", ADMIN, {"item": {}}),
    ("POST", "/queue/" + "q" * 129 + "/push", ADMIN, {"item": {}}),
    ("POST", "/queue/hp-a%2Fb/push", ADMIN, {"item": {}}),
    ("POST", "/queue/hp-a/pop?depth=0", ADMIN, None),
    ("POST", "/queue/hp-a/pop?depth=abc", ADMIN, None),
    ("POST", "/queue/hp-a/pop?depth=101", ADMIN, None),
    ("POST", "/queue/hp-a/pop?require_ack=maybe", ADMIN, None),
    ("POST", "/queue/hp-a/pop?require_ack=true&ttl_seconds=0", ADMIN, None),
    *TYPOS,
    ("POST", "/queue/hp-a/pop?depth=2", ADMIN, None),
    ("POST", "/queue/hp-a/pop?require_ack=true&ttl_seconds=60", ADMIN, None),
    ("POST", "/queue/hp-a/pop", ADMIN, None),
    ("POST", "/queue/hp-empty/pop?depth=5", ADMIN, None),
    ("GET", "/queue/hp-a/push", ADMIN, None),
    ("POST", "/queue/hp-a/push/", ADMIN, {"item": {}}),
]

# the headers a client acts on
KEPT_HEADERS = ("content-type", "retry-after", "allow", "www-authenticate")
VOLATILE = re.compile(
    r'"(ids|id|lock_id|enqueued_at|lock_expires_at)":("[^"]*"|[0-9.e+]+|\[[^\]]*\])'
)


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ServerProcess]]:
    env = {"PUSHPOP_API_KEYS": KEYS, "PUSHPOP_MAX_ITEM_BYTES": "65536"}
    with hot_and_full(tmp_path_factory.mktemp("hot"), env) as servers:
        yield servers


def test_hot_and_full_stack_answer_alike(pair: dict[str, ServerProcess]) -> None:
    hot = assert_alike(REQUESTS, pair, VOLATILE, KEPT_HEADERS)
    statuses = {a[0] for a in hot}
    assert {200, 400, 401, 403, 413, 415} <= statuses, statuses  # the list covers them
    typos = [a for req, a in zip(REQUESTS, hot, strict=True) if req in TYPOS]
    assert len(typos) == len(TYPOS) and {a[0] for a in typos} == {400}, typos
    # and what the hot path answered is right, not merely the same: every item pushed
    # (n = 1..4, or whichever were accepted) comes out once
    pushed = [
        [e["item"]["n"] for e in (req[3]["items"] if "items" in req[3] else [req[3]])]
        for req, a in zip(REQUESTS, hot, strict=True)
        if req[1] == "/queue/hp-a/push" and a[0] == 200
    ]
    popped = [
        i["item"]["n"]
        for req, a in zip(REQUESTS, hot, strict=True)
        if "/pop" in req[1] and a[0] == 200
        for i in json.loads(a[3])["items"]
    ]
    assert sorted(popped) == sorted(n for p in pushed for n in p) and len(popped) >= 3


def test_hot_requests_are_counted_under_their_route(pair: dict[str, ServerProcess]) -> None:
    server = pair["true"]
    with httpx.Client(base_url=server.url, timeout=30) as c:
        for _ in range(3):
            assert c.post("/queue/hp-m/push", json={"item": {}}, headers=ADMIN).status_code == 200
        assert c.post("/queue/hp-m/pop", headers=ADMIN).status_code == 200
        assert c.post("/queue/hp-m/pop?depth=0", headers=ADMIN).status_code == 400
        text = c.get("/metrics").text

    def count(route: str, status: int) -> float:
        m = re.search(
            rf'^pushpop_http_requests_total{{method="POST",route="{re.escape(route)}",'
            rf'status="{status}"}} (\S+)$', text, re.M,
        )  # fmt: skip
        return float(m.group(1)) if m else 0.0

    assert count("/queue/{queue_id}/push", 200) >= 3
    assert count("/queue/{queue_id}/pop", 200) >= 1
    assert count("/queue/{queue_id}/pop", 400) >= 1
    assert re.search(r'^pushpop_errors_total\{code="INVALID_DEPTH"\} [1-9]', text, re.M), text
