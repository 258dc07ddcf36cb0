"""Dapr mode's actor routes answer daprd alike with and without the hot path.

Two real Dapr-mode apps (external sidecar, direct state in SQLite), identical but for
``PUSHPOP_HOT_PATH``, get the same actor calls, good and bad (bodies, methods, tokens, the
routes that must take the full path); status, content type and body must match, and
/metrics must count the hot calls under the route's label.
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

TOKEN = "actor-route-token"
AUTH = {"dapr-api-token": TOKEN}
ROUTE = "/actors/{actor_type_name}/{actor_id}/method/{method_name}"
PUSH = {"items": [{"item": {"n": 1}, "priority": 1}, {"item": {"n": 2}, "priority": 0}]}

# (method, path, headers, body)
CALLS: list[tuple[str, str, dict[str, str], Any]] = [
    ("PUT", "/actors/QueueActor/ar-a/method/Push", AUTH, PUSH),
    ("PUT", "/actors/QueueActor/ar-a/method/Stats", AUTH, {}),
    ("PUT", "/actors/QueueActor/ar-a/method/Pop", AUTH, {"depth": 1}),
    ("PUT", "/actors/QueueActor/ar-a/method/Push", AUTH, {"items": "not a list"}),
    ("PUT", "/actors/QueueActor/ar-a/method/Push", AUTH, b"{not json"),
    ("PUT", "/actors/QueueActor/ar-a/method/NoSuchMethod", AUTH, {}),
    ("PUT", "/actors/NoSuchActor/ar-a/method/Stats", AUTH, {}),
    ("PUT", "/actors/QueueActor/ar-a/method/Stats", {}, {}),
    ("PUT", "/actors/QueueActor/ar-a/method/Stats", {"dapr-api-token": "wrong"}, {}),
    ("PUT", "/actors/QueueActor/ar-a/method/timer/tick", AUTH, {}),
    ("PUT", "/actors/QueueActor/ar-a/method/remind/nope", AUTH, {}),
    ("PUT", "/actors/QueueActor/ar%2Fb/method/Stats", AUTH, {}),
    ("POST", "/actors/QueueActor/ar-a/method/Stats", AUTH, {}),
    ("PUT", "/actors/QueueActor/ar-a/method/Pop", AUTH, {"depth": 5}),
    ("DELETE", "/actors/QueueActor/ar-a", AUTH, None),
    ("PUT", "/actors/QueueActor/ar-a/method/Stats", AUTH, {}),
    ("GET", "/dapr/config", AUTH, None),
    ("GET", "/healthz", AUTH, None),
]

VOLATILE = re.compile(
    r'"(ids|id|enqueued_at|oldest_enqueued_at|created_at)":("[^"]*"|[0-9.e+]+|\[[^\]]*\])'
)


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ServerProcess]]:
    env = {"PUSHPOP_DAPR_SIDECAR": "external", "PUSHPOP_DAPR_STATE": "direct",
           "APP_API_TOKEN": TOKEN}  # fmt: skip
    with hot_and_full(tmp_path_factory.mktemp("actor-route"), env, runtime="dapr") as servers:
        yield servers


def test_hot_and_full_actor_routes_answer_alike(pair: dict[str, ServerProcess]) -> None:
    hot = assert_alike(CALLS, pair, VOLATILE)
    # right, not merely the same: the push stored both items, the pops take them in
    # priority order, the bad calls are refused, the token is required
    push, stats, pop1, bad_items, bad_json, no_method, no_type, no_token, wrong = hot[:9]
    assert push[0] == 200 and json.loads(push[3])["ok"]["pushed"] == 2
    assert json.loads(stats[3])["ok"]["depth"] == 2
    assert [i["item"]["n"] for i in json.loads(pop1[3])["ok"]["items"]] == [2]
    # what the gateway never sends raises in the actor: DaprActor's 500 with the exception
    assert bad_items[0] == bad_json[0] == no_method[0] == no_type[0] == 500
    assert json.loads(no_type[3])["errorCode"]
    assert no_token[0] == wrong[0] == 401
    pop_rest = hot[13]
    assert [i["item"]["n"] for i in json.loads(pop_rest[3])["ok"]["items"]] == [1]


def test_hot_actor_calls_are_counted_under_their_route(pair: dict[str, ServerProcess]) -> None:
    with httpx.Client(base_url=pair["true"].url, timeout=30) as c:
        for _ in range(3):
            r = c.put("/actors/QueueActor/ar-m/method/Stats", headers=AUTH, content=b"{}")
            assert r.status_code == 200, r.text
        text = c.get("/metrics").text
    labels = re.findall(
        r'^pushpop_http_requests_total\{method="PUT",route="([^"]+)",status="200"\} (\S+)$',
        text, re.M,
    )  # fmt: skip
    counted = {route: float(n) for route, n in labels}
    assert counted.get(ROUTE, 0) >= 3, counted
