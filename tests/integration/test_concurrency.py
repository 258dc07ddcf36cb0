"""8 pushers and 8 poppers on one queue, every runtime: exactly-once, per-producer FIFO."""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict

import httpx
from server_helpers import Served

PRODUCERS = 8
CONSUMERS = 8
ITEMS = 5000
BULK = 25  # items per push request (the service caps a push at 1000)


async def _pusher(c: httpx.AsyncClient, qid: str, producer: int, seqs: list[int]) -> None:
    rng = random.Random(producer)
    for start in range(0, len(seqs), BULK):
        chunk = seqs[start : start + BULK]
        body = {
            "items": [
                {"item": {"p": producer, "seq": s}, "priority": rng.choice([0, 1, 2])}
                for s in chunk
            ]
        }
        r = await c.post(f"/queue/{qid}/push", json=body)
        assert r.status_code == 200, r.text


async def _popper(c: httpx.AsyncClient, qid: str, done: asyncio.Event, got: list[dict]) -> None:
    while True:
        r = await c.post(f"/queue/{qid}/pop", params={"depth": 10})
        assert r.status_code == 200, r.text
        items = r.json()["items"]
        got.extend(items)
        if not items:
            if done.is_set():
                return
            await asyncio.sleep(0.005)


async def _run(server: Served, qid: str) -> list[dict]:
    per_producer = ITEMS // PRODUCERS
    async with server.async_client(timeout=60) as c:
        done = asyncio.Event()
        got: list[dict] = []
        poppers = [asyncio.create_task(_popper(c, qid, done, got)) for _ in range(CONSUMERS)]
        await asyncio.gather(
            *(_pusher(c, qid, p, list(range(per_producer))) for p in range(PRODUCERS))
        )
        done.set()
        await asyncio.gather(*poppers)
        # nothing left behind
        final = (await c.get(f"/queue/{qid}")).json()
        assert final["depth"] == 0 and final["in_flight"] == 0
    return got


def test_every_item_popped_exactly_once_in_producer_order(server: Served, qid: str) -> None:
    got = asyncio.run(_run(server, qid))
    keys = [(i["item"]["p"], i["item"]["seq"]) for i in got]
    assert len(keys) == ITEMS
    assert len(set(keys)) == ITEMS, "an item was delivered twice"
    ids = [i["id"] for i in got]
    assert len(set(ids)) == ITEMS
    # per producer and priority, items come out in the order they were pushed; poppers
    # run concurrently, so order is judged by message id (what each pop returned in)
    streams: dict[tuple[int, int], list[tuple[str, int]]] = defaultdict(list)
    for i in got:
        streams[(i["item"]["p"], i["priority"])].append((i["id"], i["item"]["seq"]))
    for stream in streams.values():
        stream.sort()
        seqs = [seq for _, seq in stream]
        assert seqs == sorted(seqs), "FIFO within a priority broken for one producer"
