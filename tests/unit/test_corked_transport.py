"""CorkedTransport: a response's writes of one loop turn leave as one send."""

from __future__ import annotations

import asyncio
from typing import Any

from api.http_server import CorkedTransport


class Recording(asyncio.Transport):
    """A transport that records what is written to it."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False
        self.aborted = False

    def write(self, data: Any) -> None:
        assert not self.closed, "written after close"
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 1234) if name == "peername" else default


async def test_head_and_body_of_one_turn_leave_in_one_write() -> None:
    raw = Recording()
    corked = CorkedTransport(raw, asyncio.get_running_loop())
    corked.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
    corked.write(b"{}")
    assert raw.writes == []  # held until the turn ends
    await asyncio.sleep(0)
    assert raw.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"]
    corked.write(b"next")  # a later turn's write is its own
    await asyncio.sleep(0)
    assert raw.writes[1:] == [b"next"]


async def test_close_sends_what_is_held_first_and_abort_drops_it() -> None:
    loop = asyncio.get_running_loop()
    raw = Recording()
    corked = CorkedTransport(raw, loop)
    corked.write(b"answer")
    corked.close()
    assert raw.writes == [b"answer"] and raw.closed
    await asyncio.sleep(0)  # the scheduled flush finds nothing left
    assert raw.writes == [b"answer"]

    raw = Recording()
    corked = CorkedTransport(raw, loop)
    corked.write(b"never sent")
    corked.abort()
    await asyncio.sleep(0)
    assert raw.writes == [] and raw.aborted


async def test_everything_else_is_the_wrapped_transports() -> None:
    raw = Recording()
    corked = CorkedTransport(raw, asyncio.get_running_loop())
    assert corked.get_extra_info("peername") == ("127.0.0.1", 1234)
    assert not corked.is_closing()
    raw.close()
    corked.write(b"too late")  # the peer is gone: nothing is written after close
    await asyncio.sleep(0)
    assert raw.writes == []
