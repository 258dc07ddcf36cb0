"""The transport to daprd (actor_service/runtime/dapr/sidecar.py over http1.py), against a
real HTTP/1.1 server on a loopback port that answers as each path asks: keep-alive
reuse, chunked and closing answers, the pool's limit, and the line between a call that
never left (503 RUNTIME_UNAVAILABLE) and one whose answer was lost (OUTCOME_UNKNOWN's
cause, :class:`SidecarLost`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
import pytest_asyncio

from actor_service.errors import RuntimeUnavailable
from actor_service.runtime.dapr.sidecar import SidecarClient, SidecarLost
from supervise.ports import free_port

TOKEN = "transport-token"


@dataclass
class Seen:
    connections: int = 0
    open_now: int = 0
    most_open: int = 0
    requests: list[tuple[bytes, dict[bytes, bytes], bytes]] = field(default_factory=list)


def _answer(body: bytes, extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%b" % (len(body), extra, body)


async def _serve(seen: Seen, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    seen.connections += 1
    seen.open_now += 1
    seen.most_open = max(seen.most_open, seen.open_now)
    try:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            line, *lines = head.decode("latin-1").split("\r\n")
            headers = {
                k.strip().lower().encode(): v.strip().encode()
                for k, _, v in (h.partition(":") for h in lines if h)
            }
            body = await reader.readexactly(int(headers.get(b"content-length", b"0")))
            target = line.split(" ")[1].encode()
            seen.requests.append((target, headers, body))
            path = target.decode()
            if path.endswith("/hang"):
                await asyncio.sleep(5)
                return
            if path.endswith("/drop"):
                return  # closed with no answer
            if path.endswith("/slow"):
                await asyncio.sleep(0.05)
            if path.endswith("/chunked"):
                writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                             b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")  # fmt: skip
            elif path.endswith("/close"):
                writer.write(_answer(b"bye", b"Connection: close\r\n"))
                await writer.drain()
                return
            elif path.endswith("/hangup"):  # a keep-alive answer, then the server leaves
                writer.write(_answer(b"later"))
                await writer.drain()
                return
            elif path.endswith("/missing"):
                writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
            else:
                writer.write(_answer(b'{"echo":%b}' % (body or b"null")))
            await writer.drain()
    finally:
        seen.open_now -= 1
        writer.close()


@pytest_asyncio.fixture(loop_scope="function")  # the tests' loop, not the session's
async def daprd() -> AsyncIterator[tuple[int, Seen]]:
    seen = Seen()
    server = await asyncio.start_server(lambda r, w: _serve(seen, r, w), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield port, seen
        server.close()


async def _client(port: int, **kwargs: object) -> SidecarClient:
    client = SidecarClient(port, TOKEN, **kwargs)  # type: ignore[arg-type]
    await client.open()
    return client


async def test_keep_alive_reuses_one_connection_and_sends_token_and_body(
    daprd: tuple[int, Seen],
) -> None:
    port, seen = daprd
    client = await _client(port)
    base = client.actors_base
    for n in range(3):
        status, body = await client.request("POST", f"{base}/QueueActor/q-1/method/Push", b"%d" % n)
        assert (status, body) == (200, b'{"echo":%d}' % n)
    status, body = await client.request("GET", f"{base}/QueueActor/q-1/state/meta")
    assert (status, body) == (200, b'{"echo":null}')
    assert seen.connections == 1
    target, headers, sent = seen.requests[0]
    assert target == b"/v1.0/actors/QueueActor/q-1/method/Push" and sent == b"0"
    assert headers[b"dapr-api-token"] == TOKEN.encode()
    assert headers[b"content-type"] == b"application/json"
    assert headers[b"content-length"] == b"1"
    await client.close()


async def test_a_path_with_unsafe_characters_is_escaped(daprd: tuple[int, Seen]) -> None:
    port, seen = daprd
    client = await _client(port)
    await client.request("GET", f"{client.actors_base}/QueueActor/q/state/l:a b%")
    assert seen.requests[-1][0] == b"/v1.0/actors/QueueActor/q/state/l:a%20b%25"
    await client.close()


async def test_chunked_closing_and_error_answers(daprd: tuple[int, Seen]) -> None:
    port, seen = daprd
    client = await _client(port)
    assert await client.request("GET", f"{client.base}/chunked") == (200, b"abcde")
    assert await client.request("GET", f"{client.base}/close") == (200, b"bye")
    assert await client.request("GET", f"{client.base}/missing") == (404, b"")
    assert await client.request("GET", f"{client.base}/ok") == (200, b'{"echo":null}')
    assert seen.connections == 2  # a new one after the server closed the first
    await client.close()


async def test_no_answer_in_time_is_lost_and_the_connection_never_reused(
    daprd: tuple[int, Seen],
) -> None:
    port, seen = daprd
    client = await _client(port)
    with pytest.raises(SidecarLost, match=r"within 0\.2s"):
        await client.request("POST", f"{client.base}/hang", b"{}", deadline=0.2)
    with pytest.raises(SidecarLost, match="dropped the call"):
        await client.request("POST", f"{client.base}/drop", b"{}")
    assert await client.request("GET", f"{client.base}/ok") == (200, b'{"echo":null}')
    assert seen.connections == 3
    await client.close()


async def test_nothing_listening_is_unavailable_not_lost() -> None:
    client = await _client(free_port())
    with pytest.raises(RuntimeUnavailable) as caught:
        await client.request("POST", f"{client.base}/actors/QueueActor/q/method/Push", b"{}")
    assert not isinstance(caught.value, SidecarLost)
    await client.close()
    with pytest.raises(RuntimeUnavailable, match="not started"):
        await client.request("GET", f"{client.base}/healthz")


async def test_the_pool_never_opens_more_than_its_size(daprd: tuple[int, Seen]) -> None:
    port, seen = daprd
    client = await _client(port, pool_size=2)
    calls = [client.request("POST", f"{client.base}/slow", b"%d" % i) for i in range(6)]
    answers = await asyncio.gather(*calls)
    assert [a[1] for a in answers] == [b'{"echo":%d}' % i for i in range(6)]
    assert seen.most_open <= 2 and seen.connections == 2
    await client.close()


async def test_large_bodies_both_ways(daprd: tuple[int, Seen]) -> None:
    port, seen = daprd
    client = await _client(port)
    body = b'"' + b"x" * 300_000 + b'"'  # past the one-write size, past a socket buffer
    status, answer = await client.request("PUT", f"{client.base}/big", body)
    assert status == 200 and answer == b'{"echo":%b}' % body
    assert seen.requests[-1][2] == body
    assert await client.request("GET", f"{client.base}/ok") == (200, b'{"echo":null}')
    assert seen.connections == 1
    await client.close()


async def test_a_connection_the_server_closed_while_idle_is_not_reused(
    daprd: tuple[int, Seen],
) -> None:
    port, seen = daprd
    client = await _client(port)
    assert await client.request("GET", f"{client.base}/hangup") == (200, b"later")
    await asyncio.sleep(0.05)  # the close reaches the client while the connection idles
    assert await client.request("POST", f"{client.base}/ok", b"1") == (200, b'{"echo":1}')
    assert seen.connections == 2
    await client.close()
