"""Bulk-load queues before pop-heavy scenarios (S2, S5), then verify their depths.

Why it exists: a pop benchmark on an empty queue measures nothing, and loading 100K
items one push at a time would take longer than the test. Items go in bulk pushes of
up to 1000 (the API's limit), queues in parallel, each queue's batches in order, so
message ids are in push order. Priorities are dealt round-robin, so every priority gets
an exact, predictable count, which is what the final check compares against
``GET /queue/{id}`` (``depth`` and ``by_priority``).

Run standalone::

    python -m load_tests.utils.queue_prepopulator --host http://127.0.0.1:8000 \
        --queue demo-1 --queue demo-2 --items 100000 --priorities 0,1,2

The Locust master runs it as a subprocess (asyncio does not mix with gevent's
monkey-patching), passing ``--ids-out`` so that the ledger knows every loaded id.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

MAX_BATCH = 1000  # docs/api.md: items per push 1 ... 1000
MAX_RETRIES = 5


class PrepopulateError(RuntimeError):
    """A push was refused for a reason retrying cannot fix."""


@dataclass(frozen=True)
class Plan:
    """What to load: ``items_per_queue`` items into each queue, priorities round-robin."""

    queues: tuple[str, ...]
    items_per_queue: int
    priorities: tuple[int, ...] = (1,)
    batch: int = MAX_BATCH
    item_bytes: int = 64
    concurrency: int = 4

    def __post_init__(self) -> None:
        if not 1 <= self.batch <= MAX_BATCH:
            raise ValueError(f"batch must be 1..{MAX_BATCH}, got {self.batch}")
        if not self.priorities:
            raise ValueError("at least one priority is needed")
        if self.items_per_queue < 0:
            raise ValueError("items_per_queue must be >= 0")

    def expected_by_priority(self) -> Counter[str]:
        n, k = self.items_per_queue, len(self.priorities)
        out: Counter[str] = Counter()
        for i, p in enumerate(self.priorities):
            out[str(p)] += n // k + (1 if i < n % k else 0)
        return out


@dataclass
class QueueLoad:
    queue: str
    pushed: int = 0
    ids: list[str] = field(default_factory=list)
    depth_before: int = 0
    by_priority_before: dict[str, int] = field(default_factory=dict)
    depth_after: int | None = None
    by_priority_after: dict[str, int] = field(default_factory=dict)
    expected_by_priority: dict[str, int] = field(default_factory=dict)

    @property
    def expected_depth(self) -> int:
        return self.depth_before + self.pushed

    @property
    def ok(self) -> bool:
        if self.depth_after != self.expected_depth:
            return False
        for p, n in self.expected_by_priority.items():
            before = self.by_priority_before.get(p, 0)
            if self.by_priority_after.get(p, 0) != before + n:
                return False
        return True


@dataclass
class Result:
    loads: dict[str, QueueLoad]
    seconds: float

    @property
    def total(self) -> int:
        return sum(q.pushed for q in self.loads.values())

    @property
    def ok(self) -> bool:
        return all(q.ok for q in self.loads.values())

    def to_dict(self, include_ids: bool = False) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "items": self.total,
            "seconds": round(self.seconds, 3),
            "items_per_s": round(self.total / self.seconds, 1) if self.seconds else None,
            "queues": {
                q.queue: {
                    "pushed": q.pushed,
                    "depth_before": q.depth_before,
                    "depth_after": q.depth_after,
                    "expected_depth": q.expected_depth,
                    "by_priority_after": q.by_priority_after,
                    "ok": q.ok,
                    **({"ids": q.ids} if include_ids else {}),
                }
                for q in self.loads.values()
            },
        }


def make_item(seq: int, item_bytes: int) -> dict[str, Any]:
    """A small JSON object of roughly ``item_bytes`` serialized bytes."""
    base = {"seq": seq, "src": "prepopulate"}
    pad = max(0, item_bytes - 40)
    if pad:
        base["pad"] = "x" * pad
    return base


async def _stats(client: httpx.AsyncClient, queue: str) -> dict[str, Any]:
    r = await client.get(f"/queue/{queue}")
    if r.status_code != 200:
        raise PrepopulateError(f"GET /queue/{queue}: {r.status_code} {r.text[:300]}")
    return r.json()


async def _push(client: httpx.AsyncClient, queue: str, entries: list[dict[str, Any]]) -> list[str]:
    for attempt in range(MAX_RETRIES + 1):
        r = await client.post(f"/queue/{queue}/push", json={"items": entries})
        if r.status_code == 200:
            ids = r.json()["ids"]
            if len(ids) != len(entries):
                raise PrepopulateError(f"push to {queue}: sent {len(entries)}, got {len(ids)} ids")
            return ids
        if r.status_code == 503 and attempt < MAX_RETRIES:
            # 503 means nothing was committed (docs/api.md), so a retry cannot duplicate
            await asyncio.sleep(float(r.headers.get("retry-after", "1")))
            continue
        raise PrepopulateError(f"push to {queue}: {r.status_code} {r.text[:300]}")
    raise AssertionError("unreachable")


async def prepopulate(
    base_url: str,
    plan: Plan,
    *,
    progress: bool = True,
    keep_ids: bool = True,
    console: Console | None = None,
) -> Result:
    """Load every queue of ``plan`` and verify the depths; never raises on a depth mismatch
    (the caller decides), only on refused pushes."""
    loads = {q: QueueLoad(queue=q) for q in plan.queues}
    expected = plan.expected_by_priority()
    limits = httpx.Limits(
        max_connections=plan.concurrency, max_keepalive_connections=plan.concurrency
    )
    started = time.perf_counter()
    bar = Progress(
        TextColumn("[bold]prepopulate[/bold] {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console or Console(stderr=True),
        disable=not progress,
    )
    async with httpx.AsyncClient(base_url=base_url, timeout=120, limits=limits) as client:
        for q in plan.queues:
            before = await _stats(client, q)
            loads[q].depth_before = int(before["depth"])
            loads[q].by_priority_before = {k: int(v) for k, v in before["by_priority"].items()}
            loads[q].expected_by_priority = dict(expected)
        sem = asyncio.Semaphore(plan.concurrency)
        total = plan.items_per_queue * len(plan.queues)
        with bar:
            task = bar.add_task(f"{len(plan.queues)} queue(s)", total=total, rate="")

            async def load_queue(q: str) -> None:
                load = loads[q]
                for start in range(0, plan.items_per_queue, plan.batch):
                    n = min(plan.batch, plan.items_per_queue - start)
                    entries = [
                        {
                            "item": make_item(start + i, plan.item_bytes),
                            "priority": plan.priorities[(start + i) % len(plan.priorities)],
                        }
                        for i in range(n)
                    ]
                    async with sem:
                        ids = await _push(client, q, entries)
                    load.pushed += n
                    if keep_ids:
                        load.ids.extend(ids)
                    done = sum(x.pushed for x in loads.values())
                    elapsed = time.perf_counter() - started
                    bar.update(task, completed=done, rate=f"{done / elapsed:,.0f} items/s")

            await asyncio.gather(*(load_queue(q) for q in plan.queues))
        for q in plan.queues:
            after = await _stats(client, q)
            loads[q].depth_after = int(after["depth"])
            loads[q].by_priority_after = {k: int(v) for k, v in after["by_priority"].items()}
    return Result(loads=loads, seconds=time.perf_counter() - started)


def run(base_url: str, plan: Plan, **kwargs: Any) -> Result:
    """Synchronous wrapper for callers outside an event loop."""
    return asyncio.run(prepopulate(base_url, plan, **kwargs))


app = typer.Typer(add_completion=False, help=__doc__)


@app.command()
def main(
    host: Annotated[str, typer.Option(help="base URL of the service")],
    queue: Annotated[list[str], typer.Option(help="queue id (repeat for several)")],
    items: Annotated[int, typer.Option(help="items per queue")] = 10_000,
    priorities: Annotated[str, typer.Option(help="comma-separated, dealt round-robin")] = "1",
    batch: Annotated[int, typer.Option(help="items per push request (<= 1000)")] = MAX_BATCH,
    item_bytes: Annotated[int, typer.Option(help="approximate size of each item")] = 64,
    concurrency: Annotated[int, typer.Option(help="requests in flight")] = 4,
    ids_out: Annotated[Path | None, typer.Option(help="write {queue: [ids]} here")] = None,
    progress: Annotated[bool, typer.Option(help="show a progress bar")] = True,
) -> None:
    """Load QUEUEs with ITEMS each and verify their depths; exit 1 if they do not match."""
    plan = Plan(
        queues=tuple(queue),
        items_per_queue=items,
        priorities=tuple(int(p) for p in priorities.split(",") if p.strip()),
        batch=batch,
        item_bytes=item_bytes,
        concurrency=concurrency,
    )
    try:
        result = run(host, plan, progress=progress, keep_ids=ids_out is not None)
    except (PrepopulateError, httpx.HTTPError) as exc:
        typer.echo(f"prepopulate failed: {exc}", err=True)
        raise typer.Exit(2) from exc
    if ids_out:
        ids_out.write_text(json.dumps({q: load.ids for q, load in result.loads.items()}))
    summary = result.to_dict()
    json.dump(summary, sys.stdout)
    sys.stdout.write("\n")
    if not result.ok:
        for q in result.loads.values():
            if not q.ok:
                typer.echo(
                    f"depth mismatch on {q.queue}: expected {q.expected_depth} "
                    f"{q.expected_by_priority}, found {q.depth_after} {q.by_priority_after}",
                    err=True,
                )
        raise typer.Exit(1)


if __name__ == "__main__":
    app()
