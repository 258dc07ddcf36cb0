"""The floor of a durable push and pop in Python on this host: a same-run upper bound.

A bare ASGI app doing only what any durable push or pop must (HTTP, JSON, the meta +
segment write through pushpop's group-committed store), under ``pushpop serve``'s
uvicorn set-up; :mod:`benchmarks.throughput` calls a goal above its rate out of reach.
``python -m benchmarks.floor_app`` serves its Dapr form (placement, scheduler and daprd
as children; each operation an actor call). How both work: docs/benchmarks.md.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import time
from collections import deque
from itertools import islice
from pathlib import Path
from types import FrameType
from typing import Any

import uvicorn
from starlette.types import Receive, Scope, Send

from actor_service.actor import ACTOR_TYPE
from actor_service.errors import RuntimeUnavailable
from actor_service.queue_layout import DEFAULT_SEGMENT_SIZE, META, PoppedItem, format_id, seg_key
from actor_service.runtime.dapr.sidecar import SidecarClient, SidecarError
from actor_service.stores.base import StateStore, Transaction, actor_key, json_bytes
from actor_service.stores.factory import build_store
from api.request_body import read_body
from api.settings import Settings
from supervise.dapr_processes import (
    COMPONENTS_DIR,
    Placement,
    Scheduler,
    Sidecar,
    ensure_dapr_built,
)

DATABASE_URL_ENV = "PUSHPOP_FLOOR_DATABASE_URL"
DAPR_PORT_ENV = "PUSHPOP_FLOOR_DAPR_HTTP_PORT"  # set: the Dapr form's gateway calls daprd there
DAPR_STATE_ENV = "PUSHPOP_FLOOR_DAPR_STATE"  # the Dapr form: component or direct (default)
STATE_DEADLINE = 10.0  # seconds a state transaction through daprd may take
APP_ID = "pushpop-floor"
OPERATIONS = (("POST", "queue", "push"), ("POST", "queue", "pop"))
HEADERS = [(b"content-type", b"application/json")]


class Queue(deque[list[Any]]):
    """One queue's live entries ``[id, item, enqueued_at]``; ``head`` is the first's position."""

    head = 0


class FloorApp:
    """The ASGI app: ``POST /queue/{id}/push``, ``POST /queue/{id}/pop``, ``GET``s."""

    def __init__(self) -> None:
        self.store: StateStore | None = None
        self.queues: dict[str, Queue] = {}
        self.sidecar: SidecarClient | None = None  # the Dapr form's way to the actors
        self.component_state = False  # the Dapr form: state through daprd's state API
        self.actor_calls = 0  # calls daprd made into this app

    async def forward(self, qid: str, op: str, body: bytes) -> tuple[int, bytes]:
        """The Dapr form's gateway: the operation as an actor call through daprd."""
        assert self.sidecar is not None
        url = f"{self.sidecar.actors_base}/{ACTOR_TYPE}/{qid}/method/{op}"
        try:
            return await self.sidecar.request("POST", url, body)
        except RuntimeUnavailable as exc:  # daprd not up (yet): what start_floor polls for
            return 503, json_bytes({"error": exc.message})

    @staticmethod
    def segment(q: Queue, k: int) -> dict[str, Any]:
        """Segment ``k`` as pushpop's layout stores it: all its live entries, so that no
        write drops an item an earlier one stored (a push rewrites its tail segment)."""
        s = DEFAULT_SEGMENT_SIZE
        lo, hi = max(q.head, k * s), min(q.head + len(q), (k + 1) * s)
        return {"start": lo, "items": list(islice(q, lo - q.head, max(lo, hi) - q.head))}

    async def save(self, qid: str, q: Queue, k: int) -> None:
        """A save of pushpop's shape: the meta row and segment ``k``, in one transaction."""
        tail = q.head + len(q)  # ids are positions + 1, per queue
        first = q[0][2] if q else 0.0
        meta = {"S": DEFAULT_SEGMENT_SIZE, "next_id": tail + 1, "pri": {"1": [q.head, tail, first]}}
        segment, key = self.segment(q, k), seg_key(1, k)
        if self.component_state:
            assert self.sidecar is not None
            ops = [{"operation": "upsert", "request": {"key": name, "value": value}}
                   for name, value in ((META, meta), (key, segment))]  # fmt: skip
            url = f"{self.sidecar.actors_base}/{ACTOR_TYPE}/{qid}/state"
            status, out = await self.sidecar.request("PUT", url, json_bytes(ops), STATE_DEADLINE)
            if status // 100 != 2:
                raise SidecarError.from_body(status, out).to_pushpop("save")
            return
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
        await self.save(qid, q, (q.head + len(q) - 1) // DEFAULT_SEGMENT_SIZE)  # the last
        return {"pushed": len(new), "ids": [format_id(e[0]) for e in new], "depth": len(q)}

    async def pop(self, qid: str) -> dict[str, Any]:
        q = self.queues.setdefault(qid, Queue())
        popped = [q.popleft()] if q else []
        q.head += len(popped)
        await self.save(qid, q, q.head // DEFAULT_SEGMENT_SIZE)
        return {"items": [PoppedItem(format_id(e[0]), e[1], 1, e[2]).to_dict() for e in popped]}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            return await self.lifespan(receive, send)
        parts, method = scope["path"].strip("/").split("/"), scope["method"]
        op = (method, *parts[::2]) if parts[0] == "queue" and len(parts) <= 3 else ()
        if method == "PUT" and parts[0] == "actors" and len(parts) == 5:  # daprd's call
            op, parts = ("POST", "queue", parts[4]), ["queue", parts[2]]
            self.actor_calls += 1
        elif self.sidecar is not None and op in OPERATIONS:
            status, out = await self.forward(parts[1], parts[2], await read_body(receive))
            return await self.answer(send, status, out)
        status, answer = 200, {"status": "ok"}
        if op == ("POST", "queue", "push"):
            answer = await self.push(parts[1], await read_body(receive))
        elif op == ("POST", "queue", "pop"):
            answer = await self.pop(parts[1])
        elif op == ("GET", "queue") and len(parts) == 2:
            answer = {"depth": len(self.queues.get(parts[1], ()))}
        elif scope["path"] == "/floor":  # for the test that the Dapr form went through daprd
            answer = {"actor_calls": self.actor_calls}
        elif scope["path"] == "/dapr/config":
            answer = {"entities": [ACTOR_TYPE]}
        elif method not in ("GET", "DELETE"):  # DELETE: daprd deactivating an actor
            status, answer = 404, {"error": "not found"}
        await self.answer(send, status, json_bytes(answer))

    @staticmethod
    async def answer(send: Send, status: int, out: bytes) -> None:
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
                if port := os.environ.get(DAPR_PORT_ENV):
                    self.sidecar = SidecarClient(int(port), None)
                    await self.sidecar.open()
                    self.component_state = os.environ.get(DAPR_STATE_ENV) == "component"
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.sidecar is not None:
                    await self.sidecar.close()
                await self.store.close()  # type: ignore[union-attr]
                await send({"type": "lifespan.shutdown.complete"})
                return


app = FloorApp()


class _Server(uvicorn.Server):
    """uvicorn that does not re-raise SIGTERM when it returns, so daprd, scheduler and
    placement are stopped in order rather than killed with us."""

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.should_exit = True


def serve_dapr() -> None:
    """The Dapr form: placement, scheduler and daprd as our children, uvicorn as the
    plain floor runs it (uvloop, httptools, no access log) on ``$PUSHPOP_PORT``.

    daprd starts once uvicorn listens (it asks ``/dapr/config`` first) and stops before
    the app; everything is stopped when uvicorn returns (SIGTERM, SIGINT).
    """
    bin_dir = ensure_dapr_built()
    port = int(os.environ["PUSHPOP_PORT"])
    run_dir = Path(tempfile.mkdtemp(prefix="pushpop-floor-dapr-"))
    common: dict[str, Any] = {"bin_dir": bin_dir, "log_level": "warn", "die_with_parent": True}
    placement, scheduler = Placement(run_dir, **common), Scheduler(run_dir, **common)
    sidecar = Sidecar(
        APP_ID, port, COMPONENTS_DIR / "postgres", COMPONENTS_DIR / "config.yaml",
        {"PUSHPOP_DATABASE_URL": os.environ[DATABASE_URL_ENV], "DAPR_HOST_IP": "127.0.0.1"},
        placement.address, scheduler.address, log_dir=run_dir, **common,
    )  # fmt: skip
    os.environ[DAPR_PORT_ENV] = str(sidecar.http_port)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, loop="uvloop", http="httptools",
                            access_log=False, lifespan="on", log_level="warning")  # fmt: skip
    server = _Server(config)

    async def main() -> None:
        serving = asyncio.create_task(server.serve())
        while not server.started and not serving.done():  # noqa: ASYNC110 - uvicorn has no event
            await asyncio.sleep(0.05)
        sidecar.start()
        try:
            await serving
        finally:
            await asyncio.to_thread(sidecar.stop)

    try:
        for proc in (placement, scheduler):
            proc.start().wait_ready()
        # uvicorn's loop (uvloop), as pushpop serve --runtime dapr runs: asyncio.run
        # would run the floor on the standard library's loop
        with asyncio.Runner(loop_factory=config.get_loop_factory()) as runner:
            runner.run(main())
    finally:
        for proc in (sidecar, scheduler, placement):
            proc.stop()


if __name__ == "__main__":
    serve_dapr()
