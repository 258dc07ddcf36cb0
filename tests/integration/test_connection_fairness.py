"""One client cannot lock everyone out: idle connections are shed first when the server
is full, and one client address holds at most its share of connections.

Real sockets, from distinct loopback addresses (127.0.0.2 is the hog, 127.0.0.3 everyone
else: Linux answers the whole of 127/8).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from http_helpers import err, ok

from supervise.server import ServerProcess

HOG, OTHER = "127.0.0.2", "127.0.0.3"


@pytest.fixture
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServerProcess]:
    env = {"PUSHPOP_READ_TIMEOUT": "30", **request.param}
    with ServerProcess(sqlite_path=tmp_path / "s.sqlite3", env=env,
                       log_path=tmp_path / "s.log") as s:  # fmt: skip
        yield s


def hog_sockets(port: int, n: int, request: bytes = b"") -> list[socket.socket]:
    """``n`` connections from the hog's address, each sending ``request`` (maybe nothing)."""
    out = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(HOG, 0))
        if request:
            s.sendall(request)
        out.append(s)
    time.sleep(0.3)  # the server has accepted them all
    return out


def client_from(address: str, url: str) -> httpx.Client:
    return httpx.Client(
        base_url=url, timeout=5, transport=httpx.HTTPTransport(local_address=address)
    )


def closed_by_server(s: socket.socket) -> bool:
    s.settimeout(0.05)
    try:
        return s.recv(1) == b""
    except TimeoutError:
        return False
    except OSError:
        return True


@pytest.mark.parametrize("server", [{"PUSHPOP_MAX_CONNECTIONS": "20"}], indirect=True)
def test_idle_connections_are_shed_for_a_new_one_when_full(server: ServerProcess) -> None:
    """20 idle sockets (opened, nothing sent, well within their read deadline) fill the
    server: another client is served at once, and it was the hog's idle sockets that went;
    a connection in the middle of a request is never shed."""
    busy = hog_sockets(server.port, 1, b"GET /health HTTP/1.1\r\nHost: x\r\n")  # unfinished
    idle = hog_sockets(server.port, 19)
    for _ in range(5):
        with client_from(OTHER, server.url) as c:
            ok(c.get("/health"))  # each a new connection: one idle socket goes per call
    shed = sum(closed_by_server(s) for s in idle)
    assert 1 <= shed <= 5, shed
    assert not closed_by_server(busy[0])
    busy[0].sendall(b"\r\n")  # the request completes, and is answered
    assert busy[0].recv(100).startswith(b"HTTP/1.1 200")
    for s in busy + idle:
        s.close()


@pytest.mark.parametrize(
    "server",
    [{"PUSHPOP_MAX_CONNECTIONS": "20", "PUSHPOP_MAX_CONNECTIONS_PER_CLIENT": "5"}],
    indirect=True,
)
def test_one_address_holds_at_most_its_share(server: ServerProcess) -> None:
    """Five connections in the middle of a request (nothing to shed) use the hog's share:
    its sixth is answered 503 naming why, and another address is still served."""
    stalled = hog_sockets(server.port, 5, b"GET /health HTTP/1.1\r\nHost: x\r\n")
    with client_from(HOG, server.url) as c:
        r = c.get("/health")
        err(r, 503, "TOO_MANY_CONNECTIONS", "from your address")
        assert r.headers["retry-after"] == "1"
    with client_from(OTHER, server.url) as c:
        ok(c.get("/health"))
    for s in stalled:
        s.close()
    time.sleep(0.3)  # the hog's share is free again once its connections are gone
    with client_from(HOG, server.url) as c:
        ok(c.get("/health"))


@pytest.mark.parametrize("server", [{"PUSHPOP_MAX_CONNECTIONS": "20"}], indirect=True)
def test_by_default_loopback_peers_have_no_share(server: ServerProcess) -> None:
    """The default share (half the cap) applies to remote addresses: a local proxy
    carries every client from one loopback address."""
    stalled = hog_sockets(server.port, 15, b"GET /health HTTP/1.1\r\nHost: x\r\n")
    with client_from(HOG, server.url) as c:
        ok(c.get("/health"))
    for s in stalled:
        s.close()
