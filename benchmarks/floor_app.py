"""The floor of a durable push and pop in Python on this host: a same-run upper bound.

Why: :mod:`benchmarks.throughput` sets goals as fractions of pgbench (the store's own
two-upsert statement). Any Python server must at least parse HTTP and JSON, write the
queue's meta and segment rows in one group-committed transaction and answer JSON. This
app does that and nothing else (no framework, validation, actor, metrics, coalescing:
pushpop's extras), under ``pushpop serve``'s uvicorn configuration and with pushpop's own
store and settings. Its same-run rate bounds any Python server here: a goal above it is
out of reach. Items live in memory per queue; a pop (depth 1) writes meta + segment even
when it finds nothing (never cheaper than a real pop). ``GET /queue/{id}`` answers the
depth, any other GET 200. Database: ``$PUSHPOP_FLOOR_DATABASE_URL`` (``open`` makes the schema).
"""

from __future__ import annotations

import json
import os
import time
from collections import deque
from typing import Any

from starlette.types import Receive, Scope, Send

from actor_service.actor import ACTOR_TYPE
from actor_service.queue_layout import DEFAULT_SEGMENT_SIZE, META, PoppedItem, format_id, seg_key
from actor_service.stores.base import StateStore, Transaction, actor_key, json_bytes
from api.http_server import read_body
from api.settings import Settings
from api.stores import build_store

DATABASE_URL_ENV = "PUSHPOP_FLOOR_DATABASE_URL"
HEADERS = [(b"content-type", b"application/json")]


class Queue(deque[list[Any]]):
    """One queue's live entries ``[id, item, enqueued_at]``; ``head`` is the first's position."""

    head = 0


class FloorApp:
    """The ASGI app: ``POST /queue/{id}/push``, ``POST /queue/{id}/pop``, ``GET``s."""

    def __init__(self) -> None:
        self.store: StateStore | None = None
        self.queues: dict[str, Queue] = {}

    async def save(self, qid: str, q: Queue, position: int, entries: list[list[Any]]) -> None:
        """A save of pushpop's shape: the meta row and one segment row, in one transaction."""
        tail = q.head + len(q)  # ids are positions + 1, per queue
        first = q[0][2] if q else 0.0
        meta = {"S": DEFAULT_SEGMENT_SIZE, "next_id": tail + 1, "pri": {"1": [q.head, tail, first]}}
        segment = {"start": position, "items": entries}
        key = seg_key(1, position // DEFAULT_SEGMENT_SIZE)
        assert self.store is not None
        await self.store.transact(Transaction(upserts=[
            (actor_key("pushpop", ACTOR_TYPE, qid, META), json_bytes(meta)),
            (actor_key("pushpop", ACTOR_TYPE, qid, key), json_bytes(segment)),
        ]))  # fmt: skip

    async def push(self, qid: str, body: bytes) -> dict[str, Any]:
        request, q, now = json.loads(body), self.queues.setdefault(qid, Queue()), time.time()
        position, items = q.head + len(q), request.get("items") or [request]
        new = [[position + i, r["item"], now] for i, r in enumerate(items, 1)]
        q.extend(new)
        await self.save(qid, q, position, new)
        return {"pushed": len(new), "ids": [format_id(e[0]) for e in new], "depth": len(q)}

    async def pop(self, qid: str) -> dict[str, Any]:
        q = self.queues.setdefault(qid, Queue())
        popped = [q.popleft()] if q else []
        q.head += len(popped)
        await self.save(qid, q, q.head, [q[0]] if q else [])
        return {"items": [PoppedItem(format_id(e[0]), e[1], 1, e[2]).to_dict() for e in popped]}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            return await self.lifespan(receive, send)
        parts, method = scope["path"].strip("/").split("/"), scope["method"]
        op = (method, *parts[::2]) if parts[0] == "queue" and len(parts) <= 3 else ()
        status, answer = 200, {"status": "ok"}
        if op == ("POST", "queue", "push"):
            answer = await self.push(parts[1], await read_body(receive))
        elif op == ("POST", "queue", "pop"):
            answer = await self.pop(parts[1])
        elif op == ("GET", "queue") and len(parts) == 2:
            answer = {"depth": len(self.queues.get(parts[1], ()))}
        elif method != "GET":
            status, answer = 404, {"error": "not found"}
        out = json_bytes(answer)
        headers = [*HEADERS, (b"content-length", b"%d" % len(out))]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": out})

    async def lifespan(self, receive: Receive, send: Send) -> None:
        """Open pushpop's store (its ``open`` creates the schema); close it at shutdown."""
        while message := await receive():
            if message["type"] == "lifespan.startup":
                url = os.environ[DATABASE_URL_ENV]
                self.store = build_store(Settings.from_env(store="postgres", database_url=url))
                await self.store.open()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.store.close()  # type: ignore[union-attr]
                await send({"type": "lifespan.shutdown.complete"})
                return


app = FloorApp()
