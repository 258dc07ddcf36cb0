"""Clients that stall, trickle, disconnect or speak broken HTTP, against live servers.

Stalled uploads (408) and slowloris connections are dropped, a full server answers a JSON
503 and recovers, parser errors, 429s and compressed bodies get the contract's JSON body
and headers, a disconnect logs one line, and shutdown drops stalled uploads at once.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest
from http_helpers import err, ok, push_one, raw_request, read_response

from supervise.server import ServerProcess

READ_TIMEOUT = 2.0
STALLED_UPLOAD = (
    b"POST /queue/q/push HTTP/1.1\r\nHost: x\r\nContent-Length: 10485760\r\n\r\n0123456789"
)


def start(tmp: Path, name: str, **env: str) -> ServerProcess:
    return ServerProcess(
        sqlite_path=tmp / f"{name}.sqlite3",
        log_path=tmp / f"{name}.log",
        log_level="info",
        env={"PUSHPOP_READ_TIMEOUT": str(READ_TIMEOUT), **env},
    ).start()


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = start(tmp_path_factory.mktemp("hostile"), "main")
    yield server
    server.stop()


@pytest.fixture
def c(srv: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=srv.url, timeout=10) as client:
        yield client


def json_error(body: bytes, code: str) -> None:
    import json

    parsed = json.loads(body)
    assert set(parsed) == {"error"} and parsed["error"]["code"] == code, parsed
    assert parsed["error"]["message"].strip(), parsed


def server_connections(server: ServerProcess) -> int:
    """Established TCP connections the server process holds on its port."""
    assert server.pid is not None
    conns = psutil.Process(server.pid).net_connections(kind="tcp")
    return sum(1 for k in conns if k.laddr.port == server.port and k.status == "ESTABLISHED")


def assert_serving(c: httpx.Client, q: str) -> float:
    """/health and a push still answer; returns the slower of the two (seconds)."""
    t = time.monotonic()
    ok(c.get("/health"))
    push_one(c, q, {"still": "serving"})
    return time.monotonic() - t


def test_stalled_upload_gets_408_json_and_its_connection_is_freed(
    srv: ServerProcess, c: httpx.Client, qid: str
) -> None:
    with socket.create_connection(("127.0.0.1", srv.port)) as s:
        s.sendall(STALLED_UPLOAD)
        t = time.monotonic()
        assert assert_serving(c, qid) < 1.0  # others are served during the stall
        status, body = read_response(s, 10 * READ_TIMEOUT)
        took = time.monotonic() - t
        assert status == 408, body
        json_error(body, "REQUEST_TIMEOUT")
        assert READ_TIMEOUT - 0.5 < took < READ_TIMEOUT + 1.5, took
        s.settimeout(2)
        assert s.recv(1) == b"", "the server must close the connection"


def trickle(port: int, stop: threading.Event, outcome: list[str]) -> None:
    """Slowloris: one header byte every 0.2 s, for as long as the server lets us."""
    request = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 1000
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            for byte in request:
                if stop.is_set():
                    outcome.append("still open")
                    return
                s.sendall(bytes([byte]))
                time.sleep(0.2)
            outcome.append("sent everything")
    except OSError:  # reset or broken pipe: the server dropped us
        outcome.append("dropped")


def test_slowloris_connections_are_dropped_while_others_are_served(
    srv: ServerProcess, c: httpx.Client, qid: str
) -> None:
    stop = threading.Event()
    outcome: list[str] = []
    threads = [
        threading.Thread(target=trickle, args=(srv.port, stop, outcome), daemon=True)
        for _ in range(60)
    ]
    for t in threads:
        t.start()
    time.sleep(1.0)
    assert server_connections(srv) >= 60
    assert assert_serving(c, qid) < 1.0
    time.sleep(READ_TIMEOUT + 2.0)  # every trickler has passed its deadline by now
    stop.set()
    for t in threads:
        t.join(10)
    assert outcome.count("dropped") == 60, outcome
    assert server_connections(srv) <= 2  # our keep-alive client at most


def test_connection_cap_answers_json_503_and_recovers(tmp_path: Path, qid: str) -> None:
    server = start(tmp_path, "capped", PUSHPOP_MAX_CONNECTIONS="5")
    try:
        idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(5)]
        for s in idle:
            s.sendall(b"GET /health HTTP/1.1\r\n")  # a request that never finishes
        time.sleep(0.3)
        r = httpx.get(server.url + "/health", timeout=5)
        err(r, 503, "TOO_MANY_CONNECTIONS")
        assert r.headers["retry-after"] == "1"
        time.sleep(READ_TIMEOUT + 0.5)  # the stalled ones are dropped by their deadline
        for s in idle:
            s.close()
        with httpx.Client(base_url=server.url, timeout=5) as client:
            assert_serving(client, qid)
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("request_bytes", "status", "code"),
    [
        (b"GET /" + b"a" * 79_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "URI_TOO_LONG"),
        (b"GET /health HTTP/1.1\r\nHost: x\r\n" + b"X-More: y\r\n" * 8000 + b"\r\n",
         431, "HEADERS_TOO_LARGE"),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 garbage\r\n\r\n", 400, "BAD_REQUEST"),
        (b"POST /queue/q/push HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nabcde",
         400, "BAD_REQUEST"),
    ],
    ids=["79KB-url", "88KB-of-headers", "tls-hello", "two-content-lengths"],
)  # fmt: skip
def test_parser_errors_have_the_json_error_body(
    srv: ServerProcess, c: httpx.Client, request_bytes: bytes, status: int, code: str
) -> None:
    got, body = raw_request(srv.port, request_bytes)
    assert got == status, body
    json_error(body, code)
    ok(c.get("/health", headers={"x-pad": "b" * 8000}))  # big but within the limit: fine


def test_429s_carry_retry_after(tmp_path: Path, qid: str) -> None:
    server = start(tmp_path, "limits", PUSHPOP_MAX_DEPTH="1", PUSHPOP_MAX_LOCKS="1")
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            push_one(client, qid, {"n": 1})
            r = client.post(f"/queue/{qid}/push", json={"item": {"n": 2}})
            err(r, 429, "QUEUE_FULL")
            assert int(r.headers["retry-after"]) >= 1
            ok(client.post(f"/queue/{qid}/pop", params={"require_ack": "true"}))
            push_one(client, qid, {"n": 3})
            r = client.post(f"/queue/{qid}/pop", params={"require_ack": "true"})
            err(r, 429, "TOO_MANY_LOCKS")
            assert int(r.headers["retry-after"]) >= 1
    finally:
        server.stop()


@pytest.mark.parametrize("encoding", ["gzip", "br", "deflate, gzip"])
def test_compressed_bodies_are_415(c: httpx.Client, qid: str, encoding: str) -> None:
    r = c.post(
        f"/queue/{qid}/push",
        content=b'{"item": {"n": 1}}',
        headers={"content-type": "application/json", "content-encoding": encoding},
    )
    err(r, 415, "UNSUPPORTED_MEDIA_TYPE", "Content-Encoding")
    assert ok(c.get(f"/queue/{qid}"))["depth"] == 0


def test_client_disconnects_mid_body_log_one_info_line(tmp_path: Path, qid: str) -> None:
    server = start(tmp_path, "disconnects")
    try:
        for _ in range(30):
            with socket.create_connection(("127.0.0.1", server.port)) as s:
                s.sendall(
                    f"POST /queue/{qid}/push HTTP/1.1\r\nHost: x\r\n"
                    'Content-Length: 1000\r\n\r\n{"item": '.encode()
                )
                time.sleep(0.02)
        with httpx.Client(base_url=server.url, timeout=5) as client:
            assert_serving(client, qid)
    finally:
        server.stop()
    log = server.log_path.read_text()
    assert "Traceback" not in log and " ERROR " not in log, log[-3000:]
    lines = [line for line in log.splitlines() if "client disconnected" in line]
    assert 1 <= len(lines) <= 2, lines  # rate-limited, not one per client
    assert " INFO " in lines[0], lines


def test_shutdown_finishes_in_flight_calls_and_drops_stalled_uploads(
    tmp_path: Path, qid: str
) -> None:
    # a long read deadline: the shutdown, not the deadline, must end the stalled uploads
    server = start(tmp_path, "shutdown", PUSHPOP_READ_TIMEOUT="60", PUSHPOP_REQUEST_TIMEOUT="60")
    stalled = []
    for _ in range(5):
        s = socket.create_connection(("127.0.0.1", server.port))
        s.sendall(STALLED_UPLOAD)
        stalled.append(s)
    big = {"items": [{"item": {"n": i, "pad": "x" * 20_000}} for i in range(1000)]}
    answer: dict[str, httpx.Response] = {}

    def in_flight() -> None:
        answer["r"] = httpx.post(f"{server.url}/queue/{qid}/push", json=big, timeout=30)

    pusher = threading.Thread(target=in_flight)
    pusher.start()
    time.sleep(0.5)  # the 20 MB body is sent; the push is being validated and saved
    assert server.proc is not None
    t = time.monotonic()
    server.proc.terminate()
    server.proc.wait(timeout=15)
    took = time.monotonic() - t
    pusher.join(10)
    assert took < 3.0, f"shutdown took {took:.1f}s"
    assert len(ok(answer["r"])["ids"]) == 1000
    for s in stalled:
        status, body = read_response(s, 2)
        assert status == 503, body
        json_error(body, "SHUTTING_DOWN")
        s.close()
    server.proc = None
    server.start()  # the in-flight push was committed
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            assert ok(client.get(f"/queue/{qid}"))["depth"] == 1000
    finally:
        server.stop()


@pytest.mark.dapr
def test_dapr_mode_has_the_same_read_deadline(dapr_server: ServerProcess) -> None:
    """The launcher builds its uvicorn from the same helper: default 5 s deadline there."""
    with socket.create_connection(("127.0.0.1", dapr_server.port)) as s:
        s.sendall(STALLED_UPLOAD)
        t = time.monotonic()
        status, body = read_response(s, 20)
        assert status == 408, body
        json_error(body, "REQUEST_TIMEOUT")
        assert time.monotonic() - t < 7
