"""When the client sends a request again, and when it must not.

On the wire against a scripted HTTP server (it dies before answering, or answers 503 with
``Retry-After``, on cue), then end to end: a real server SIGKILLed and restarted under a
loop of pushes, where every push the client reported done must be stored exactly once.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from pushpop_client import Client, ConnectionFailedError, PushpopError, RetryPolicy
from pushpop_client import errors as e

from supervise.pgserver import PostgresServer
from supervise.ports import free_port
from supervise.server import ServerProcess

QUICK = RetryPolicy(attempts=4, base_delay=0.01, max_backoff=0.05)
DROP = "drop"  # read the request, close the connection without an answer
Answer = tuple[int, dict[str, str], Any] | str


class Scripted:
    """An HTTP server answering from a script, one entry per request (the last repeats)."""

    def __init__(self, script: list[Answer], port: int | None = None) -> None:
        self.script = list(script)
        self.seen: list[tuple[str, str, dict[str, str]]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def answer(self) -> None:
                n = int(self.headers.get("content-length") or 0)
                self.rfile.read(n)
                outer.seen.append(
                    (self.command, self.path, {k.lower(): v for k, v in self.headers.items()})
                )
                step = outer.script.pop(0) if len(outer.script) > 1 else outer.script[0]
                if step == DROP:
                    self.close_connection = True
                    return
                status, headers, body = step
                data = json.dumps(body).encode()
                self.send_response(status)
                for k, v in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_DELETE = do_PUT = answer

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port or 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def scripted() -> Iterator[Any]:
    made: list[Scripted] = []

    def make(*script: Answer) -> Scripted:
        made.append(Scripted(list(script)))
        return made[-1]

    yield make
    for s in made:
        s.close()


def error(status: int, code: str, retry_after: str | None = None) -> Answer:
    headers = {"Retry-After": retry_after} if retry_after else {}
    return (status, headers, {"error": {"code": code, "message": f"{code} (scripted)"}})


PUSHED = (200, {}, {"pushed": 1, "ids": ["0000000000000001"], "depth": 1})
EMPTY = (200, {}, {"items": []})


def test_push_is_retried_with_one_key_and_honours_retry_after(scripted: Any) -> None:
    s = scripted(DROP, error(503, "STORE_UNAVAILABLE", retry_after="1"), PUSHED)
    t0 = time.monotonic()
    with Client(s.url, retry=QUICK) as c:
        r = c.push("q", {"n": 1})
    assert r.ids == ["0000000000000001"]
    assert time.monotonic() - t0 >= 1.0  # the Retry-After, not the 0.01 s backoff
    keys = {h["idempotency-key"] for _, _, h in s.seen}
    assert len(s.seen) == 3 and len(keys) == 1 and all(keys)


def test_each_push_has_its_own_key_unless_given(scripted: Any) -> None:
    s = scripted(PUSHED)
    with Client(s.url, retry=QUICK) as c:
        c.push("q", {"n": 1})
        c.push_many("q", [({"n": 2},)])
        c.push("q", {"n": 3}, idempotency_key="mine")
    keys = [h["idempotency-key"] for _, _, h in s.seen]
    assert len(set(keys[:2])) == 2 and keys[2] == "mine"


def test_plain_pop_that_reached_the_server_is_not_sent_again(scripted: Any) -> None:
    s = scripted(DROP, EMPTY)
    unkeyed = Client(s.url, retry=QUICK, pop_idempotency=False)
    with unkeyed as c, pytest.raises(ConnectionFailedError) as raised:
        c.pop("q")
    assert len(s.seen) == 1 and "not safe" in str(raised.value)
    assert raised.value.status == 0


def test_ack_and_lock_ops_that_reached_the_server_are_not_sent_again(scripted: Any) -> None:
    s = scripted(DROP, (200, {}, {"acknowledged": 1}))
    with Client(s.url, retry=QUICK) as c, pytest.raises(ConnectionFailedError):
        c.acknowledge("q", "lock")
    assert len(s.seen) == 1


@pytest.mark.parametrize(
    "code", ["STORE_UNAVAILABLE", "TOO_MANY_LOCKS", "SHUTTING_DOWN", "INSUFFICIENT_STORAGE"]
)
def test_pop_is_retried_when_the_answer_says_nothing_was_done(scripted: Any, code: str) -> None:
    status = {"TOO_MANY_LOCKS": 429, "INSUFFICIENT_STORAGE": 507}.get(code, 503)
    s = scripted(error(status, code, retry_after="0"), EMPTY)
    with Client(s.url, retry=QUICK) as c:
        assert c.pop("q", require_ack=True).items == []
    assert len(s.seen) == 2


@pytest.mark.parametrize("status, code", [(503, "RUNTIME_UNAVAILABLE"), (502, "OUTCOME_UNKNOWN")])
def test_an_unkeyed_pop_is_not_retried_on_an_ambiguous_answer(
    scripted: Any, status: int, code: str
) -> None:
    s = scripted(error(status, code, retry_after="0"), EMPTY)
    unkeyed = Client(s.url, retry=QUICK, pop_idempotency=False)
    with unkeyed as c, pytest.raises(e.RetryableError) as raised:
        c.pop("q")
    assert len(s.seen) == 1 and raised.value.retry_after == 0 and raised.value.code == code


def test_a_keyed_pop_is_retried_with_its_key_when_the_outcome_is_unknown(scripted: Any) -> None:
    """The default: each pop has a key, so a lost answer (502 OUTCOME_UNKNOWN, a dropped
    connection) is asked again under the same key, and the server answers the same items."""
    s = scripted(error(502, "OUTCOME_UNKNOWN", retry_after="0"), DROP, EMPTY)
    with Client(s.url, retry=QUICK) as c:
        assert c.pop("q", require_ack=True).items == []
    keys = {h["idempotency-key"] for _, _, h in s.seen}
    assert len(s.seen) == 3 and len(keys) == 1 and all(keys)


def test_retries_are_capped_and_the_last_error_raised(scripted: Any) -> None:
    s = scripted(error(503, "STORE_UNAVAILABLE", retry_after="0"))
    with Client(s.url, retry=QUICK) as c, pytest.raises(e.StoreUnavailableError) as raised:
        c.stats("q")
    assert len(s.seen) == QUICK.attempts
    assert (raised.value.status, raised.value.code) == (503, "STORE_UNAVAILABLE")


def test_unknown_codes_map_to_the_base_or_retryable(scripted: Any) -> None:
    s = scripted(error(418, "TEAPOT"), error(503, "NEW_THING", retry_after="0"), (404, {}, "x"))
    with Client(s.url, retry=RetryPolicy(attempts=1)) as c:
        with pytest.raises(PushpopError) as teapot:
            c.stats("q")
        assert type(teapot.value) is PushpopError and teapot.value.code == "TEAPOT"
        with pytest.raises(e.RetryableError) as new:
            c.stats("q")
        assert new.value.code == "NEW_THING" and new.value.status == 503
        with pytest.raises(PushpopError) as bare:  # not the contract's body
            c.stats("q")
        assert bare.value.code == "HTTP_404"


def test_connection_refused_is_retried_even_for_a_plain_pop() -> None:
    port = free_port()
    later: list[Scripted] = []
    timer = threading.Timer(0.5, lambda: later.append(Scripted([EMPTY], port=port)))
    timer.start()
    try:
        with Client(
            f"http://127.0.0.1:{port}", retry=RetryPolicy(attempts=30, max_backoff=0.2)
        ) as c:
            assert c.pop("q").items == []
    finally:
        timer.join()
        for s in later:
            s.close()
    assert len(later[0].seen) == 1


def test_api_key_is_sent(scripted: Any) -> None:
    s = scripted(EMPTY)
    with Client(s.url, api_key="k-123", retry=QUICK) as c:
        c.pop("q")
    assert s.seen[0][2]["authorization"] == "Bearer k-123"


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_pushes_through_sigkill_restarts_store_once(
    store: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """A loop of pushes while the server is SIGKILLed and restarted three times: every push
    the client reported done is stored exactly once, and none twice."""
    if store == "postgres":
        pg: PostgresServer = request.getfixturevalue("pg")
        where: dict[str, Any] = {"database_url": pg.database(f"client_kill_{free_port()}")}
    else:
        where = {"sqlite_path": tmp_path / "kill.sqlite3"}
    server = ServerProcess(store=store, log_path=tmp_path / "server.log", **where).start()
    policy = RetryPolicy(attempts=200, base_delay=0.02, max_backoff=0.2)
    done: list[int] = []
    failed: list[int] = []
    stop = threading.Event()

    def pushes() -> None:
        with Client(server.url, retry=policy, timeout=10) as c:
            n = 0
            while not stop.is_set():
                try:
                    c.push_many("ledger", [({"n": n, "k": k},) for k in range(5)])
                    done.append(n)
                except PushpopError:
                    failed.append(n)
                n += 1

    t = threading.Thread(target=pushes)
    t.start()
    try:
        for _ in range(3):
            time.sleep(0.7)
            server.kill()
            time.sleep(0.2)  # pushes meet a closed port meanwhile
            server.start()
        time.sleep(0.5)
    finally:
        stop.set()
        t.join(60)
    try:
        stored: Counter[tuple[int, int]] = Counter()
        with Client(server.url) as c:
            while got := c.pop("ledger", depth=100).items:
                stored.update((m.item["n"], m.item["k"]) for m in got)
    finally:
        server.stop()
    assert len(done) > 20 and not failed, (len(done), failed)
    twice = [k for k, v in stored.items() if v > 1]
    assert not twice, twice
    missing = [n for n in done if any(stored[(n, k)] != 1 for k in range(5))]
    assert not missing, missing
