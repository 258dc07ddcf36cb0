"""Access control (``PUSHPOP_API_KEYS``) and the per-queue limits.

Keys and limits are tested on the real app in this process, built with the settings
they need (no app of the session is reconfigured); binding to loopback when serving
``--host 0.0.0.0`` without keys is ``pushpop serve``'s own, tested on a child process.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from asgi_helpers import AppThread, app_thread
from http_helpers import ok
from server_helpers import pg_database

from actor_service.errors import QueueFull, TooManyLocks
from api.settings import Settings
from supervise.pgserver import PostgresServer
from supervise.server import ServerProcess

# Distinctive keys: grep-able in the server log, unlikely to appear there by chance.
RUN = uuid.uuid4().hex[:10]
ORDERS_KEY = f"orders-key-{RUN}-Zq7"
READER_KEY = f"reader-key-{RUN}-Xw3"
ADMIN_KEY = f"admin-key-{RUN}-Vb9"
WRONG_KEYS = [f"wrong-key-{RUN}-Kp2", f"{ADMIN_KEY}x", ADMIN_KEY[:-1], ADMIN_KEY.upper()]
KEYS = [
    {"key": ORDERS_KEY, "prefixes": ["orders-"], "operations": ["push", "pop"]},
    {"key": READER_KEY, "prefixes": [""], "operations": ["pop"]},
    {"key": ADMIN_KEY, "prefixes": [""], "operations": ["push", "pop", "admin"]},
]


def no_auth_env() -> dict[str, str]:
    """Make sure nothing in the test runner's environment configures keys by accident."""
    return {"PUSHPOP_API_KEYS": "", "PUSHPOP_API_KEYS_FILE": "", "PUSHPOP_ALLOW_OPEN": ""}


@contextmanager
def log_to(path: Path, *names: str) -> Iterator[None]:
    """Everything loggers ``names`` log at debug level, appended to ``path``, while it runs."""
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    loggers = [logging.getLogger(name) for name in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.removeHandler(handler)
            lg.setLevel(level)
        handler.close()


@pytest.fixture(scope="module")
def keyed_log(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Everything this process logs while the module runs, at debug level (the most the
    server ever logs, for the no-key check)."""
    path = tmp_path_factory.mktemp("keyed") / "keyed.log"
    with log_to(path, ""):
        yield path


@pytest.fixture(scope="module")
def keyed(keyed_log: Path) -> Iterator[AppThread]:
    """The app with API keys (and /metrics protected), in this process; its ``url`` is it
    on a port of this process, for requests that should cross uvicorn too (whose loggers
    do not propagate: they log to ``keyed_log`` once uvicorn has configured them)."""
    settings = Settings(
        store="sqlite",
        sqlite_path=str(keyed_log.parent / "keyed.sqlite3"),
        api_keys=json.dumps(KEYS),
        protect_metrics=True,
    )
    app = AppThread(settings, log_level="debug").start()
    try:
        with log_to(keyed_log, "uvicorn"):
            yield app
    finally:
        app.stop()


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def x_api_key(key: str) -> dict[str, str]:
    return {"X-API-Key": key}


def error(r: httpx.Response, status: int, code: str) -> None:
    where = f"{r.request.method} {r.request.url.path}"
    assert r.status_code == status, f"{where}: want {status} {code}, got {r.status_code} {r.text}"
    assert r.headers["content-type"].startswith("application/json"), r.headers
    body = r.json()
    assert set(body) == {"error"} and body["error"]["code"] == code, f"{where}: {body}"
    assert body["error"]["message"].strip()


def every_queue_call(q: str) -> list[tuple[str, str, dict[str, Any]]]:
    """One request per queue endpoint, with a body that would otherwise be valid."""
    lock = {"lock_id": "0" * 32}
    return [
        ("POST", f"/queue/{q}/push", {"json": {"item": {"n": 1}}}),
        ("POST", f"/queue/{q}/pop", {}),
        ("POST", f"/queue/{q}/pop", {"params": {"require_ack": "true"}}),
        ("POST", f"/queue/{q}/acknowledge", {"json": lock}),
        ("POST", f"/queue/{q}/extend-lock", {"json": lock}),
        ("POST", f"/queue/{q}/release", {"json": lock}),
        ("POST", f"/queue/{q}/dead-letter", {"json": lock}),
        ("GET", f"/queue/{q}", {}),
        ("DELETE", f"/queue/{q}", {}),
    ]


# ---------------------------------------------------------------------- authentication
def test_missing_or_wrong_key_is_401(keyed: AppThread) -> None:
    q = f"orders-{uuid.uuid4().hex[:8]}"
    with keyed.client() as c:
        ok(c.post(f"/queue/{q}/push", json={"item": {"keep": 1}}, headers=bearer(ADMIN_KEY)))
        header_sets: list[dict[str, str]] = [
            {},
            {"Authorization": ""},
            {"Authorization": "Bearer"},
            {"Authorization": f"Basic {ADMIN_KEY}"},  # right key, wrong scheme
            {"Authorization": ADMIN_KEY},  # no scheme at all
            {"X-API-Key": ""},
        ]
        header_sets += [bearer(k) for k in WRONG_KEYS] + [x_api_key(k) for k in WRONG_KEYS]
        for headers in header_sets:
            for method, path, kwargs in every_queue_call(q):
                error(c.request(method, path, headers=headers, **kwargs), 401, "UNAUTHENTICATED")
        # authentication comes before validation: an invalid request says nothing either
        error(c.post("/queue/bad%20id/push", json={"item": {}}), 401, "UNAUTHENTICATED")
        error(c.post(f"/queue/{q}/push", content=b"{not json"), 401, "UNAUTHENTICATED")
        error(c.post(f"/queue/{q}/pop", params={"depth": "0"}), 401, "UNAUTHENTICATED")
        stats = ok(c.get(f"/queue/{q}", headers=x_api_key(ADMIN_KEY)))
        assert (stats["depth"], stats["locks"]) == (1, 0), "a refused request touched the queue"


def test_key_not_allowed_here_is_403(keyed: AppThread) -> None:
    orders_q, other_q = f"orders-{uuid.uuid4().hex[:8]}", f"billing-{uuid.uuid4().hex[:8]}"
    with keyed.client() as c:
        ok(c.post(f"/queue/{other_q}/push", json={"item": {"keep": 1}}, headers=bearer(ADMIN_KEY)))
        for auth in (bearer, x_api_key):
            # the orders key on a queue outside its prefix: every operation
            for method, path, kwargs in every_queue_call(other_q):
                error(c.request(method, path, headers=auth(ORDERS_KEY), **kwargs), 403, "FORBIDDEN")
            # ... and the admin operations on its own prefix
            error(c.get(f"/queue/{orders_q}", headers=auth(ORDERS_KEY)), 403, "FORBIDDEN")
            error(c.delete(f"/queue/{orders_q}", headers=auth(ORDERS_KEY)), 403, "FORBIDDEN")
            # the pop-only key may not push, stat or purge anywhere
            for q in (orders_q, other_q):
                error(
                    c.post(f"/queue/{q}/push", json={"item": {}}, headers=auth(READER_KEY)),
                    403,
                    "FORBIDDEN",
                )
                error(c.get(f"/queue/{q}", headers=auth(READER_KEY)), 403, "FORBIDDEN")
                error(c.delete(f"/queue/{q}", headers=auth(READER_KEY)), 403, "FORBIDDEN")
        # "orders-" is a prefix, not a substring or a pattern
        for q in ("xorders-1", "Orders-1", "orders", "orders_1"):
            error(
                c.post(f"/queue/{q}/push", json={"item": {}}, headers=bearer(ORDERS_KEY)),
                403,
                "FORBIDDEN",
            )
        stats = ok(c.get(f"/queue/{other_q}", headers=bearer(ADMIN_KEY)))
        assert (stats["depth"], stats["locks"]) == (1, 0), "a forbidden request touched the queue"


def test_right_key_works_with_both_headers(keyed: AppThread) -> None:
    q = f"orders-{uuid.uuid4().hex[:8]}"
    with keyed.client() as c:
        for auth in (bearer, x_api_key):
            h = auth(ORDERS_KEY)
            ids = ok(c.post(f"/queue/{q}/push", json={"item": {"a": 1}}, headers=h))["ids"]
            ok(c.post(f"/queue/{q}/push", json={"items": [{"item": {"b": 2}}]}, headers=h))
            lk = ok(c.post(f"/queue/{q}/pop", params={"require_ack": "true"}, headers=h))
            assert [i["id"] for i in lk["items"]] == ids
            ok(c.post(f"/queue/{q}/extend-lock", json={"lock_id": lk["lock_id"]}, headers=h))
            ok(c.post(f"/queue/{q}/release", json={"lock_id": lk["lock_id"]}, headers=h))
            lk = ok(c.post(f"/queue/{q}/pop", params={"require_ack": "true"}, headers=h))
            ok(c.post(f"/queue/{q}/dead-letter", json={"lock_id": lk["lock_id"]}, headers=h))
            lk = ok(c.post(f"/queue/{q}/pop", params={"require_ack": "true"}, headers=h))
            assert ok(
                c.post(f"/queue/{q}/acknowledge", json={"lock_id": lk["lock_id"]}, headers=h)
            ) == {"acknowledged": 1}
            # the pop-only key pops anywhere
            ok(c.post(f"/queue/{q}/push", json={"item": {"c": 3}}, headers=h))
            got = ok(c.post(f"/queue/{q}/pop", headers=auth(READER_KEY)))["items"]
            assert [i["item"] for i in got] == [{"c": 3}]
            # the admin key does everything, on any prefix
            a = auth(ADMIN_KEY)
            assert ok(c.get(f"/queue/{q}", headers=a))["depth"] == 0
            assert ok(c.delete(f"/queue/{q}-deadletter", headers=a)) == {"purged": 1}
        # header names are case-insensitive, the Bearer scheme too (RFC 7235)
        ok(c.get(f"/queue/{q}", headers={"x-api-key": ADMIN_KEY}))
        ok(c.get(f"/queue/{q}", headers={"authorization": f"bearer {ADMIN_KEY}"}))


def test_health_is_open_and_metrics_need_the_admin_key(keyed: AppThread) -> None:
    with keyed.client() as c:
        assert ok(c.get("/health")) == {"status": "ok"}
        assert ok(c.get("/health", headers=bearer(WRONG_KEYS[0]))) == {"status": "ok"}
        error(c.get("/metrics"), 401, "UNAUTHENTICATED")
        error(c.get("/metrics", headers=bearer(WRONG_KEYS[0])), 401, "UNAUTHENTICATED")
        error(c.get("/metrics", headers=bearer(ORDERS_KEY)), 403, "FORBIDDEN")
        error(c.get("/metrics", headers=x_api_key(READER_KEY)), 403, "FORBIDDEN")
        for auth in (bearer, x_api_key):
            r = c.get("/metrics", headers=auth(ADMIN_KEY))
            assert r.status_code == 200 and "pushpop_" in r.text, r.text[:200]


def test_keys_never_reach_the_log_or_a_response(keyed: AppThread, keyed_log: Path) -> None:
    """After successful and refused requests with every key: no key in log, bodies, metrics.

    Over the port (uvicorn logs too), the log being everything this process logged."""
    q = f"orders-{uuid.uuid4().hex[:8]}"
    bodies: list[str] = []
    with httpx.Client(base_url=keyed.url, timeout=30) as c:
        for key in [ORDERS_KEY, READER_KEY, ADMIN_KEY, *WRONG_KEYS]:
            for auth in (bearer, x_api_key):
                for method, path, kwargs in every_queue_call(q) + every_queue_call("billing-1"):
                    bodies.append(c.request(method, path, headers=auth(key), **kwargs).text)
                bodies.append(c.get("/metrics", headers=auth(key)).text)
                # a broken request with a key: errors are where secrets tend to leak
                bodies.append(c.post(f"/queue/{q}/push", content=b"\xff", headers=auth(key)).text)
                bodies.append(c.post("/queue/bad%20id/pop", headers=auth(key)).text)
        # the same key presented twice, and inside other headers
        r = c.get(
            f"/queue/{q}",
            headers={
                **bearer(ADMIN_KEY),
                "X-API-Key": WRONG_KEYS[0],
                "User-Agent": f"ua {WRONG_KEYS[1]}",
            },
        )
        bodies.append(r.text)
        bodies.append(c.get("/metrics", headers=bearer(ADMIN_KEY)).text)
    log = keyed_log.read_text(errors="replace")
    for key in [ORDERS_KEY, READER_KEY, ADMIN_KEY, *WRONG_KEYS]:
        assert key not in log, f"an API key appears in the server log {keyed_log}"
        assert key.lower() not in log.lower()
        for body in bodies:
            assert key not in body, f"an API key appears in a response: {body[:200]}"
    assert RUN not in log, "part of a key appears in the server log"
    assert "API key(s) required" in log, "the debug log lacks the start-up line: checked nothing"


def test_open_server_on_all_interfaces_binds_loopback_only(tmp_path: Path) -> None:
    """No keys and ``--host 0.0.0.0``: the server binds 127.0.0.1 and says why in its log."""
    server = ServerProcess(
        store="sqlite",
        sqlite_path=tmp_path / "open.sqlite3",
        log_path=tmp_path / "open.log",
        env={**no_auth_env(), "PUSHPOP_HOST": "0.0.0.0"},
    ).start()
    try:
        assert server.pid is not None
        listening = [
            conn.laddr
            for conn in psutil.Process(server.pid).net_connections(kind="inet")
            if conn.status == psutil.CONN_LISTEN
        ]
        assert listening, "the server listens nowhere"
        assert all(addr.ip == "127.0.0.1" for addr in listening), listening
        assert {addr.port for addr in listening} == {server.port}, listening
        log = Path(server.log_path).read_text()
        assert "127.0.0.1" in log and "0.0.0.0" in log and "PUSHPOP_API_KEYS" in log, log
        assert httpx.get(server.url + "/health", timeout=10).status_code == 200
    finally:
        server.stop()


# ---------------------------------------------------------------------- limits
MAX_DEPTH = 5
MAX_LOCKS = 2


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def limited(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AppThread]:
    """The app with ``PUSHPOP_MAX_DEPTH`` and ``PUSHPOP_MAX_LOCKS``, in this process."""
    limits = {"max_depth": MAX_DEPTH, "max_locks": MAX_LOCKS}
    if request.param == "postgres":
        pg: PostgresServer = request.getfixturevalue("pg")
        with app_thread(database_url=pg_database(pg, "pushpop_limited"), **limits) as app:
            yield app
    else:
        tmp = tmp_path_factory.mktemp("limited")
        with app_thread(tmp / "limited.sqlite3", **limits) as app:
            yield app


def contents(c: httpx.Client, q: str) -> list[tuple[str, dict, int]]:
    """The queued items in pop order, taken under a lock and given back (max 100)."""
    r = ok(c.post(f"/queue/{q}/pop", params={"depth": 100, "require_ack": "true"}))
    if r["items"]:
        ok(c.post(f"/queue/{q}/release", json={"lock_id": r["lock_id"]}))
    return [(i["id"], i["item"], i["priority"]) for i in r["items"]]


def test_max_depth_refuses_whole_pushes_and_touches_nothing(limited: AppThread) -> None:
    q = f"lim-{uuid.uuid4().hex[:8]}"
    with limited.client() as c:
        first = ok(
            c.post(
                f"/queue/{q}/push",
                json={
                    "items": [
                        {"item": {"n": 0}, "priority": 2},
                        {"item": {"n": 1}, "priority": 0},
                        {"item": {"n": 2}, "priority": 1},
                    ]
                },
            )
        )
        assert first["depth"] == 3
        before = contents(c, q)
        # a bulk push that would pass the limit: refused whole
        for n in (3, 10, 1000):
            body = {"items": [{"item": {"bulk": k}, "priority": 0} for k in range(n)]}
            error(c.post(f"/queue/{q}/push", json=body), 429, QueueFull.code)
            assert ok(c.get(f"/queue/{q}"))["depth"] == 3
            assert contents(c, q) == before, "a refused bulk push changed the queue"
        # exactly up to the limit is fine; one more is not
        ok(c.post(f"/queue/{q}/push", json={"items": [{"item": {"n": 3}}, {"item": {"n": 4}}]}))
        r = c.post(f"/queue/{q}/push", json={"item": {"n": 5}, "priority": 0})
        error(r, 429, QueueFull.code)
        assert str(MAX_DEPTH) in r.json()["error"]["message"], r.text
        s = ok(c.get(f"/queue/{q}"))
        assert s["depth"] == MAX_DEPTH and s["by_priority"] == {"0": 1, "1": 3, "2": 1}, s
        # in-flight items do not count towards the depth: a lock makes room
        lk = ok(c.post(f"/queue/{q}/pop", params={"depth": 2, "require_ack": "true"}))
        after = ok(c.post(f"/queue/{q}/push", json={"item": {"n": 6}}))
        assert after["depth"] == MAX_DEPTH - 1
        ok(c.post(f"/queue/{q}/release", json={"lock_id": lk["lock_id"]}))
        # the refused pushes left no trace: everything pops in order, ids increasing
        items = ok(c.post(f"/queue/{q}/pop", params={"depth": 100}))["items"]
        assert [(i["priority"], i["item"]["n"]) for i in items] == [
            (0, 1),
            (1, 2),
            (1, 3),
            (1, 4),
            (1, 6),
            (2, 0),
        ]
        ids = [i["id"] for i in sorted(items, key=lambda i: i["item"]["n"])]
        assert ids == sorted(ids) and len(set(ids)) == len(ids)
        assert all("bulk" not in i["item"] for i in items)


def test_max_locks_refuses_a_further_lock_and_keeps_existing_ones(
    limited: AppThread,
) -> None:
    q = f"lim-{uuid.uuid4().hex[:8]}"
    ack = {"require_ack": "true", "ttl_seconds": 300}
    with limited.client() as c:
        ok(c.post(f"/queue/{q}/push", json={"items": [{"item": {"n": n}} for n in range(5)]}))
        locks = [ok(c.post(f"/queue/{q}/pop", params=ack)) for _ in range(MAX_LOCKS)]
        r = c.post(f"/queue/{q}/pop", params={**ack, "depth": 2})
        error(r, 429, TooManyLocks.code)
        s = ok(c.get(f"/queue/{q}"))
        assert (s["depth"], s["locks"], s["in_flight"]) == (3, MAX_LOCKS, MAX_LOCKS), s
        # plain pops are not locks
        assert [i["item"] for i in ok(c.post(f"/queue/{q}/pop"))["items"]] == [{"n": 2}]
        # the existing locks still work: extend, release, ack
        ok(c.post(f"/queue/{q}/extend-lock", json={"lock_id": locks[0]["lock_id"]}))
        assert ok(c.post(f"/queue/{q}/release", json={"lock_id": locks[0]["lock_id"]})) == {
            "released": 1
        }
        # a released lock frees its slot
        again = ok(c.post(f"/queue/{q}/pop", params=ack))
        assert [i["item"] for i in again["items"]] == [{"n": 0}]
        error(c.post(f"/queue/{q}/pop", params=ack), 429, TooManyLocks.code)
        assert ok(c.post(f"/queue/{q}/acknowledge", json={"lock_id": locks[1]["lock_id"]})) == {
            "acknowledged": 1
        }
        last = ok(c.post(f"/queue/{q}/pop", params={**ack, "depth": 10}))
        assert [i["item"] for i in last["items"]] == [{"n": 3}, {"n": 4}]
        for lk in (again, last):
            ok(c.post(f"/queue/{q}/acknowledge", json={"lock_id": lk["lock_id"]}))
        s = ok(c.get(f"/queue/{q}"))
        assert (s["depth"], s["locks"], s["in_flight"]) == (0, 0, 0), s
