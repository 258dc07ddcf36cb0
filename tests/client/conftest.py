"""Fixtures of the Python client's tests: clients of the ``pushpop_client`` package on the
session's servers (every runtime), sync and async behind one blocking face.

``api`` is parametrised over both client classes: a test written once runs against
``Client`` and against ``AsyncClient`` (each coroutine run to completion on a loop of its
own), so the two cannot drift apart.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pushpop_client import AsyncClient, Client, RetryPolicy
from server_helpers import Served

FAST_RETRY = RetryPolicy(attempts=5, base_delay=0.05, max_backoff=0.5)


class Blocking:
    """An ``AsyncClient`` with blocking methods: each call runs on this object's loop."""

    def __init__(self, client: AsyncClient) -> None:
        self.client = client
        self.loop = asyncio.new_event_loop()

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self.client, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            return self.loop.run_until_complete(method(*args, **kwargs))

        return call

    def iter_queues(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        async def collect() -> list[Any]:
            return [q async for q in self.client.iter_queues(*args, **kwargs)]

        return iter(self.loop.run_until_complete(collect()))

    def close(self) -> None:
        self.loop.run_until_complete(self.client.aclose())
        self.loop.close()


@pytest.fixture(params=["sync", "async"])
def api(request: pytest.FixtureRequest, server: Served) -> Iterator[Any]:
    """A client of ``server`` (every runtime of tests/conftest.py's ``server``; in this
    process through its transport where the app is)."""
    if request.param == "sync":
        c: Any = Client(server.url, retry=FAST_RETRY, transport=server.transport())
    else:
        transport = server.async_transport()
        c = Blocking(AsyncClient(server.url, retry=FAST_RETRY, transport=transport))
    try:
        yield c
    finally:
        c.close()


@pytest.fixture
def q() -> str:
    """A queue id no other test uses."""
    return f"c-{uuid.uuid4().hex[:12]}"
